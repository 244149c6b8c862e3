"""Deals service: deals, their processes, contacts, feed, reminders, orders, calculator and
environment (MISSION D1–D12).  Entry points only: load (store.py), ask the rules
(domain.py), apply, emit.  The class holds the deal's own entrypoints; each other part's
are in its own module (reference_lists.py, contacts.py, feed.py, reminders.py, orders.py,
products.py), steps they share in base.py."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config

from services.deals import board, domain, models, store
from services.deals.contacts import ContactsEntrypoints
from services.deals.feed import FeedEntrypoints
from services.deals.history import HistoryEntrypoints
from services.deals.models import Deal, DealContact, LossReason, Status
from services.deals.orders import OrdersEntrypoints
from services.deals.products import ProductsEntrypoints
from services.deals.reference_lists import ReferenceListsEntrypoints
from services.deals.reminders import RemindersEntrypoints
from services.deals.schemas import deal_dict, reason_dict
from services.deals.store import now as _now
from services.kit.dependencies import CallLog, Permissions, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.kit.service import HealthCheck

# a deal's number as people type it in the header search
DEAL_NUMBER = re.compile(r"^[#№]?\s*(\d{1,12})$")


class DealsService(ReferenceListsEntrypoints, ContactsEntrypoints, FeedEntrypoints,
                   RemindersEntrypoints, OrdersEntrypoints, ProductsEntrypoints,
                   HistoryEntrypoints, HealthCheck):
    name = "deals"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    clients = Remote("clients")
    payments = Remote("payments")
    may = Permissions()

    # ----------------------------------------------------------------- deals
    @rpc
    def create_deal(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        cleaned = domain.validate_new_deal(data)
        process = domain.Process()
        if cleaned["type_id"] is not None:
            process = store.process_of(self.db,
                                       store.active_type(self.db, cleaned["type_id"]).id)
        if cleaned["status"]:
            status = store.status_by_code(self.db, cleaned["status"])
        elif process.stages:
            status = self.db.get(Status, process.stages[0].status_id)
        else:
            status = next(s for s in store.statuses(self.db) if s.kind == "open")
        stage = domain.stage_for_status(process, None, status.id, status.name)
        self.may.check("deals", [cleaned["manager_id"] or self.may.user_id or user_id],
                       "a new deal")
        client = self._client(cleaned["client_id"])
        expected = cleaned["expected_amount"] or Decimal("0.00")
        deal = Deal(name=cleaned["name"], client_id=client["id"], client_name=client["name"],
                    status=status, type_id=cleaned["type_id"],
                    manager_id=cleaned["manager_id"] or user_id, created_by=user_id,
                    updated_by=user_id, expected_amount=expected, amount=expected,
                    planned_close_on=cleaned["planned_close_on"], source=cleaned["source"],
                    source_detail=cleaned["source_detail"],
                    closed_at=None if status.kind == "open" else _now())
        deal.contacts = [DealContact(**c, added_by=user_id)
                         for c in domain.copied_contacts(client.get("contacts") or [])]
        self.db.add(deal)
        self.db.flush()
        store.add_history(self.db, deal, "created", None, deal.name, user_id)
        self.db.emit("deal_created", {
            "deal_id": deal.id, "name": deal.name, "client_id": deal.client_id,
            "client_name": deal.client_name, "manager_id": deal.manager_id,
            "status": status.code, "stage": stage.code if stage else None,
            "type_id": deal.type_id, "amount": deal.amount, "currency": deal.currency,
            "user_id": user_id, "version": deal.version, "created_at": deal.created_at,
            "planned_close_on": deal.planned_close_on, "source": deal.source,
            "source_detail": deal.source_detail})
        self._enter_stage(deal, stage, user_id)
        return deal_dict(deal)

    @rpc
    def get_deal(self, deal_id: int) -> dict[str, Any]:
        return deal_dict(self._deal(deal_id, contacts=True))

    @rpc
    def deal_page(self, deal_id: int, reference_revision: int | None = None
                  ) -> dict[str, Any]:
        """Everything the deal page shows from this service, in one answer; the reference
        lists (statuses, types, loss reasons) only when ``reference_revision`` is not the
        current one (services/deals/reference.py)."""
        deal = self._deal(deal_id, contacts=True)
        result = {**deal_dict(deal), **store.page_parts(self.db, deal)}
        result["history"] = store.history_of(self.db, deal.id, 300)
        result.update(self._reference(reference_revision))
        result["loss_reason"] = (reason_dict(self.db.get(LossReason, deal.loss_reason_id))
                                 if deal.loss_reason_id else None)
        return result

    @rpc
    def deal_history(self, deal_id: int, limit: int = 500) -> list[dict[str, Any]]:
        return store.history_of(self.db, self._deal(deal_id).id, min(int(limit), 5000))

    @rpc
    def list_deals(self, manager_id: int | None = None, status: str | None = None,
                   client_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        status_id = store.status_by_code(self.db, status).id if status else None
        return [deal_dict(d) for d in store.deals(self.db, manager_id, status_id, client_id,
                                                  limit)]

    @rpc
    def deals_with_history(self, after: int | None = None, limit: int = 500
                           ) -> dict[str, Any]:
        """A keyset page (by id) of deals with the history a projection replays."""
        after_id = domain.identifier(after, "after", required=False) or 0
        return store.deals_with_history(self.db, after_id, max(1, min(int(limit), 5000)))

    @rpc
    def board(self, filters: dict[str, Any] | None = None, per_column: int = 20,
              reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """The kanban's first screen: every column's count, sum and first page; with
        ``reference`` also the reference lists (``with_reference``)."""
        return self.with_reference(board.board(self.db.session, domain.parse_filter(filters),
                                               store.statuses(self.db), self.tz, per_column),
                                   reference)

    @rpc
    def board_column(self, status: str, filters: dict[str, Any] | None = None,
                     after: int | None = None, limit: int = 20) -> dict[str, Any]:
        return board.column_page(self.db.session, domain.parse_filter(filters),
                                 store.statuses(self.db), self.tz,
                                 store.status_by_code(self.db, status),
                                 domain.identifier(after, "after", required=False), limit)

    @rpc
    def search_deals(self, filters: dict[str, Any] | None = None, after: int | None = None,
                     limit: int = 50, sort: str | None = None,
                     reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """The table mode: a keyset page of deals matching ``filters``, newest first or in
        the ``sort`` order (``domain.SORT_KEYS``, ``-`` for descending); with ``reference``
        also the reference lists (``with_reference``)."""
        return self.with_reference(
            board.table_page(self.db.session, domain.parse_filter(filters),
                             store.statuses(self.db), self.tz,
                             domain.identifier(after, "after", required=False), limit,
                             domain.parse_sort(sort)), reference)

    @rpc
    def find_deals(self, text: str, limit: int = 5) -> dict[str, Any]:
        """The header search in one call: the deal whose number ``text`` is ("123", "#123",
        "№ 123") first, then the newest deals whose name or client contains ``text``."""
        number = DEAL_NUMBER.match(str(text).strip())
        return board.find_page(self.db.session, domain.parse_filter({"q": text}),
                               int(number.group(1)) if number else None,
                               store.statuses(self.db), self.tz, limit)

    @rpc
    def update_deal(self, deal_id: int, changes: dict[str, Any], user_id: int | None = None,
                    version: int | None = None) -> dict[str, Any]:
        """Edit name, client, manager, type, expected amount; every changed field goes to
        the history and one ``deal_updated`` event."""
        cleaned = domain.validate_deal_changes(changes)
        deal = self._locked_current(deal_id, version)
        if self._apply_changes(deal, cleaned, user_id):
            self.db.flush()
            self.db.expire(deal)
        return deal_dict(self._deal(deal.id))

    # ----------------------------------------------------------------- moves
    def _move_checked(self, deal: Deal, new: Status, target: domain.Stage | None,
                      user_id: int | None, loss_reason_id: int | None,
                      loss_comment: str | None) -> dict[str, Any]:
        reason = store.loss_reason(self.db, new.kind, loss_reason_id)
        self._move(deal, new, target, user_id, reason,
                   domain.text(loss_comment, "loss_comment", required=False, limit=2000) or None)
        return deal_dict(deal)

    @rpc
    def change_status(self, deal_id: int, status: str, user_id: int | None = None,
                      version: int | None = None, loss_reason_id: int | None = None,
                      loss_comment: str | None = None) -> dict[str, Any]:
        """Move a deal to a common status (a kanban drop); its process picks the stage and
        may refuse the move (``MoveRefused`` as a ValidationError naming ``status``)."""
        deal = self._locked_current(deal_id, version)
        new = store.status_by_code(self.db, status)
        process = store.process_of(self.db, deal.type_id)
        current = process.stage(deal.stage_id)
        target = domain.stage_for_status(process, current, new.id, new.name)
        if new.id == deal.status_id and target == current:
            return deal_dict(deal)
        if target is not None:
            domain.check_stage_move(process, current, target)
        return self._move_checked(deal, new, target, user_id, loss_reason_id, loss_comment)

    @rpc
    def change_stage(self, deal_id: int, stage: str, user_id: int | None = None,
                     version: int | None = None, loss_reason_id: int | None = None,
                     loss_comment: str | None = None) -> dict[str, Any]:
        """Move a deal to a stage (by code) of its type's process."""
        deal = self._locked_current(deal_id, version)
        process = store.process_of(self.db, deal.type_id)
        target = process.by_code(str(stage))
        if target is None:
            raise ValidationError(f"stage: the deal's process has no stage '{stage}'",
                                  field="stage", key="deal.stage_unknown",
                                  params={"stage": str(stage)})
        current = process.stage(deal.stage_id)
        if target == current:
            return deal_dict(deal)
        domain.check_stage_move(process, current, target)
        return self._move_checked(deal, self.db.get(Status, target.status_id), target,
                                  user_id, loss_reason_id, loss_comment)

    # ------------------------------------------------------- events consumed
    @consumes("payments", "budget_changed")
    def on_budget_changed(self, event: Envelope) -> None:
        deal = self._event_deal(event.data["deal_id"], "budget")
        revision = int(event.data["revision"])
        if revision <= deal.budget_revision:
            return
        deal.budget_revision = revision
        deal.budget = Decimal(str(event.data["budget"]))
        deal.paid = Decimal(str(event.data.get("paid", "0")))
        deal.outstanding = Decimal(str(event.data.get("outstanding", "0")))
        amount = domain.effective_amount(deal.expected_amount, deal.budget, True)
        if deal.amount != amount:
            user_id = event.data.get("user_id")
            store.add_history(self.db, deal, "amount", deal.amount, amount, user_id)
            change = {"amount": {"from": deal.amount, "to": amount}}
            deal.amount = amount
            deal.version += 1
            self.db.emit("deal_updated", domain.deal_updated(deal, change, user_id,
                                                             version=deal.version))
        if deal.outstanding == 0 and deal.paid > 0:
            self._apply_rule(deal, "fully_paid")

    @consumes("clients", "client_merged")
    def on_client_merged(self, event: Envelope) -> None:
        survivor, merged = int(event.data["survivor_id"]), int(event.data["merged_id"])
        user_id = event.data.get("user_id")
        deals = store.client_deals(self.db, merged)
        if not deals:
            return
        name = self.clients.get_client(survivor)["name"]
        for deal in deals:
            store.add_history(self.db, deal, "client_id", merged, survivor, user_id)
            deal.client_id, deal.client_name = survivor, name
            deal.version += 1
            self.db.emit("deal_updated", domain.deal_updated(
                deal, {"client_id": {"from": merged, "to": survivor}}, user_id,
                version=deal.version))
        store.move_client_rows(self.db, merged, survivor)
