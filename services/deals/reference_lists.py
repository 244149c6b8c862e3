"""Entrypoints of the reference lists an administrator edits: statuses, loss reasons, deal
types with their processes (the gateway lets only administrators call the writes; the
lists' revision is in reference.py)."""
from __future__ import annotations

import uuid
from typing import Any

from services.deals import domain, reference, store
from services.deals.base import DealsBase
from services.deals.models import DealType, LossReason, Status
from services.deals.schemas import reason_dict, status_dict, type_dict
from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ValidationError


class ReferenceListsEntrypoints(DealsBase):
    """Statuses, loss reasons and deal types with their processes (D4, D5)."""

    # ------------------------------------------------------- reference lists
    @rpc
    def reference_lists(self, reference_revision: int | None = None) -> dict[str, Any]:
        """``reference_revision`` (the current one) and, unless the caller's is already
        that, the statuses, active process types with their stages and active loss
        reasons (services/deals/reference.py)."""
        return self._reference(reference_revision)

    def with_reference(self, answer: dict[str, Any],
                       reference: dict[str, Any] | None) -> dict[str, Any]:
        """A board page's answer with, when asked (``reference`` = ``{"revision": n}``, n
        the revision the caller holds or None), what ``reference_lists(n)`` would answer
        under ``reference``: the page's data and its lists in one call, not two."""
        if reference is None:
            return answer
        if not isinstance(reference, dict):
            raise ValidationError("reference: expected an object {revision}", field="reference",
                                  key="object.invalid")
        return {**answer, "reference": self._reference(reference.get("revision"))}

    def _reference(self, known: object) -> dict[str, Any]:
        current = reference.revision(self.db)  # before the lists: see reference.revision
        if reference.is_current(known, current):
            return {"reference_revision": current}
        return {"reference_revision": current,
                "statuses": [status_dict(s) for s in store.statuses(self.db)],
                "types": store.types(self.db), "loss_reasons": store.reasons(self.db)}

    @rpc
    def list_statuses(self) -> list[dict[str, Any]]:
        return [status_dict(s) for s in store.statuses(self.db)]

    @rpc
    def save_status(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        """Create (no ``id``) or rename/recolour a status; deals refer to its id, so a
        rename never loses one.  Changing ``kind`` of a status in use is refused."""
        cleaned = domain.validate_status(data)
        status_id = domain.identifier(data.get("id"), "id", required=False)
        if status_id is None:
            code = cleaned.pop("code", None) or ""
            if code and store.code_count(self.db, code):
                raise ValidationError(f"code: '{code}' is taken", field="code",
                                      key="status.code_taken", params={"code": code})
            # a unique placeholder until the id names it: two statuses created at once
            # must not both hold "" under the unique constraint
            status = Status(position=store.next_position(self.db, Status.position),
                            code=code or f"new-{uuid.uuid4().hex}")
            self.db.add(status)
        else:
            status = self.db.get(Status, status_id)
            if status is None:
                raise NotFound(f"status {status_id} not found", entity="status", id=status_id)
            cleaned.pop("code", None)  # the code is what API clients name; it stays
            if cleaned["kind"] != status.kind and store.deals_in_status(self.db, status.id):
                raise ValidationError("kind: deals are in this status; the kind cannot change",
                                      field="kind", key="status.kind_in_use",
                                      params={"kind": status.kind})
        for key, value in cleaned.items():
            setattr(status, key, value)
        status.updated_by = user_id
        self.db.flush()
        if status.code.startswith("new-"):
            status.code = f"status_{status.id}"
        if store.code_count(self.db, status.code) > 1:
            raise ValidationError(f"code: '{status.code}' is taken", field="code",
                                  key="status.code_taken", params={"code": status.code})
        if status_id is None:
            # in the same transaction: the new column never shows after the outcomes
            self._renumber(domain.order_before_closed(
                [(s.id, s.kind) for s in store.statuses(self.db, lock=True)], status.id),
                user_id)
        return status_dict(status)

    def _renumber(self, order: list[int] | None, user_id: int | None) -> None:
        if order is None:
            return
        statuses = {s.id: s for s in store.statuses(self.db)}
        for position, status_id in enumerate(order, 1):
            statuses[status_id].position = position * 10
            statuses[status_id].updated_by = user_id
        self.db.flush()

    @rpc
    def reorder_statuses(self, status_ids: list[int], user_id: int | None = None
                         ) -> list[dict[str, Any]]:
        statuses = {s.id: s for s in store.statuses(self.db, lock=True)}
        self._renumber(domain.check_order(status_ids, statuses), user_id)
        return [status_dict(s) for s in store.statuses(self.db)]

    @rpc
    def delete_status(self, status_id: int, user_id: int | None = None) -> None:
        status = self.db.get(Status, domain.identifier(status_id, "status_id"))
        if status is None:
            raise NotFound(f"status {status_id} not found", entity="status", id=status_id)
        domain.check_status_removal(status.kind, *store.status_removal_counts(self.db, status))
        self.db.delete(status)

    @rpc
    def list_loss_reasons(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        return store.reasons(self.db, include_inactive)

    @rpc
    def save_loss_reason(self, data: dict[str, Any], user_id: int | None = None
                         ) -> dict[str, Any]:
        """Create, rename or retire (``active`` false) a loss reason."""
        if not isinstance(data, dict):
            raise ValidationError("loss_reason: expected an object", field="loss_reason",
                                  key="deal.object_expected", params={"field": "loss_reason"})
        reason = store.listed_row(self.db, LossReason,
                                  domain.identifier(data.get("id"), "id", required=False),
                                  "loss_reason")
        reason.name = domain.text(data.get("name"), "name", limit=200)
        if "active" in data:
            reason.active = bool(data["active"])
        reason.updated_by = user_id
        self.db.flush()
        return reason_dict(reason)

    @rpc
    def list_deal_types(self, include_inactive: bool = False) -> list[dict[str, Any]]:
        return store.types(self.db, include_inactive)

    @rpc
    def save_deal_type(self, data: dict[str, Any], user_id: int | None = None
                       ) -> dict[str, Any]:
        """Create or replace a deal type with its process.  Stages are matched by ``id``;
        a stage that deals are in cannot be dropped."""
        kinds = {s.id: s.kind for s in store.statuses(self.db)}
        cleaned = domain.validate_deal_type(data, kinds)
        deal_type = store.listed_row(self.db, DealType,
                                     domain.identifier(data.get("id"), "id", required=False),
                                     "deal_type")
        if "active" in data:
            deal_type.active = bool(data["active"])
        for key in ("name", "simple", "description", "documents"):
            setattr(deal_type, key, cleaned[key])
        deal_type.updated_by = user_id
        store.replace_stages(self.db, deal_type, cleaned["stages"])
        return type_dict(self.db.get(DealType, deal_type.id))
