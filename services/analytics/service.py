"""Analytics service: the sales funnel and lost deals (MISSION A1–A4, A6), from a read
model fed only by the events deals and payments publish.  Entry points only (the other
parts' in their own files, inherited)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import func, select

from services.analytics import (
    domain,
    models,
    store,
)
from services.analytics.managers import ManagersEntrypoints
from services.analytics.pipeline import PipelineEntrypoints
from services.analytics.rfm_bcg import RfmBcgEntrypoints
from services.kit import clock
from services.kit.batch import consumes_batch
from services.kit.dependencies import CallLog, Permissions, Remote, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.kit.service import HealthCheck

LAYER_DEALS_LIMIT = 500
MODES = ("cohort", "now", "lost")

# statuses and types rarely change: asked from deals at most every REFERENCE_TTL_SECONDS
_reference: dict[str, tuple[float, Any]] = {}


class AnalyticsService(PipelineEntrypoints, ManagersEntrypoints, RfmBcgEntrypoints,
                       HealthCheck):
    """The funnel's entry points here; the other parts' in pipeline.py (win probability,
    weighted pipeline), managers.py (manager performance) and rfm_bcg.py (RFM, the client
    dimension, the BCG matrix)."""

    name = "analytics"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    deals = Remote("deals")
    may = Permissions()

    # ------------------------------------------------------------------ events in
    # deals' events come many to a transaction (the kit's consumes_batch): the projection
    # keeps up with a burst of moves on the board
    @consumes_batch("deals", "deal_created")
    def on_deal_created(self, events: list[Envelope]) -> None:
        store.deals_created(self.db.session, events)

    @consumes_batch("deals", "deal_status_changed")
    def on_deal_status_changed(self, events: list[Envelope]) -> None:
        store.statuses_changed(self.db.session, events)

    @consumes_batch("deals", "deal_updated")
    def on_deal_updated(self, events: list[Envelope]) -> None:
        store.deals_updated(self.db.session, events)

    @timer(interval=2.0)
    def compact_counts(self) -> None:
        """Fold the moves of the deals now in each status into their counts (the snapshot
        reads both, so this only keeps the moves few)."""
        store.compact_counts(self.db.session)
        self.db.commit()

    # a burst of receipts (a bank statement reconciled) is one statement and one commit
    @consumes_batch("payments", "payment_received")
    def on_payment_received(self, events: list[Envelope]) -> None:
        store.payments_received(self.db.session, [event.data for event in events])

    # --------------------------------------------------------------------- helpers
    @property
    def tz(self) -> ZoneInfo:
        return clock.business_zone(self.config)

    def _cached(self, key: str, fetch: Any) -> Any:
        ttl = float(self.config.get("REFERENCE_TTL_SECONDS", 30))
        hit = _reference.get(key)
        if hit is None or time.monotonic() - hit[0] > ttl:
            hit = (time.monotonic(), fetch())
            _reference[key] = hit
        return hit[1]

    def _statuses(self) -> list[dict[str, Any]]:
        return self._cached("statuses", self.deals.list_statuses)  # type: ignore[no-any-return]

    def _types(self) -> list[dict[str, Any]]:
        return self._cached("types", lambda: self.deals.list_deal_types(True))  # type: ignore[no-any-return]

    def _request(self, filters: dict[str, Any] | None, viewer: dict[str, Any] | None,
                 people: dict[str, Any] | None
                 ) -> tuple[domain.Filters, set[int] | None, list[domain.Layer],
                            dict[str, str], bool, dict[str, Any]]:
        """Check the filters, apply the viewer's rights, pick the layers."""
        departments = {int(k): str(v or "") for k, v in (people or {}).items()}
        types = self._types()
        parsed = domain.parse_filters(
            filters, clock.now(self.tz).date(), type_ids=[t["id"] for t in types],
            manager_ids=list(departments) if departments else None,
            departments={d for d in departments.values() if d})
        parsed = domain.visible_manager(parsed, viewer)
        managers = ({m for m, d in departments.items() if d == parsed.department}
                    if parsed.department else None)
        stages = None
        chosen = next((t for t in types if t["id"] == parsed.type_id), None)
        if chosen and chosen.get("stages"):
            stages = chosen["stages"]
        layers, kinds = domain.funnel_layers(self._statuses(), stages)
        context: dict[str, Any] = {
            "type": {"id": chosen["id"], "name": chosen["name"]} if chosen else None,
                   "by_stage": stages is not None}
        return parsed, managers, layers, kinds, stages is not None, context

    def _figures(self, parsed: domain.Filters, managers: set[int] | None,
                 layers: list[domain.Layer], kinds: dict[str, str], by_stage: bool
                 ) -> tuple[list[domain.LayerFigures], int]:
        now = store.utcnow()
        if not by_stage:
            # status mode: aggregates over the deals' summary rows
            return store.figures(self.db.session, parsed, self.tz, managers, layers, kinds,
                                  now, beside=self.db.provider.factory)
        cohort = [p for _, p in store.paths(self.db.session, parsed, self.tz, managers,
                                               by_stage)]
        return domain.funnel(cohort, layers, kinds, now), len(cohort)

    def _summarised_items(self, deals: list[Any], layer: str, kinds: dict[str, str],
                          now: datetime) -> list[dict[str, Any]]:
        """``_items`` of summarised deals (status mode)."""
        items = []
        for deal in deals:
            spent = domain.seconds_in(deal.seconds_codes or (), deal.seconds_values or (),
                                      deal.path[-1] if deal.path else None, deal.last_at,
                                      kinds, now)
            in_layer = spent.get(layer)
            items.append({
                "deal_id": deal.deal_id, "name": deal.name, "client_id": deal.client_id,
                "client_name": deal.client_name, "manager_id": deal.manager_id,
                "amount": deal.amount, "status": deal.status, "stage": deal.stage,
                "loss_reason": deal.last_loss_reason,
                "days_in_status": (store.days_since(deal.entered_at, now) if in_layer is None
                                   else (Decimal(in_layer) / 86400).quantize(Decimal("0.1")))})
        return items

    def _reached(self, parsed: domain.Filters, managers: set[int] | None,
                 layers: list[domain.Layer], kinds: dict[str, str], index: int,
                 now: datetime) -> list[dict[str, Any]]:
        """The biggest deals that reached layer ``index`` (status mode)."""
        deals = store.summarised(self.db.session, parsed, self.tz, managers,
                                  reaching=domain.reaching(layers, index),
                                  limit=LAYER_DEALS_LIMIT)
        return self._summarised_items(deals, layers[index].code, kinds, now)

    def _funnel(self, parsed: domain.Filters, managers: set[int] | None,
                layers: list[domain.Layer], kinds: dict[str, str], by_stage: bool,
                context: dict[str, Any],
                figures: tuple[list[domain.LayerFigures], int] | None = None
                ) -> dict[str, Any]:
        """The ``funnel`` answer; ``figures``: the cohort's, when already computed."""
        rows, deals = figures or self._figures(parsed, managers, layers, kinds, by_stage)
        domain.snapshot(rows, store.now_in_layers(self.db.session, parsed, managers,
                                                   by_stage))
        previous = None
        if parsed.compare:
            previous, previous_deals = self._figures(parsed.previous(), managers, layers,
                                                     kinds, by_stage)
        margin = Decimal(str(self.config.get("BOTTLENECK_DROP_POINTS", 10)))
        domain.mark_bottlenecks(rows, previous, margin)
        return {"filters": parsed.as_dict(), **context, "deals": deals,
                "revenue": store.revenue(self.db.session, parsed, self.tz, managers),
                "margin_points": margin,
                "previous": ({"start": parsed.previous().start, "end": parsed.previous().end,
                              "deals": previous_deals} if previous is not None else None),
                "layers": [asdict(r) for r in rows]}

    @staticmethod
    def _items(picked: Sequence[tuple[Any, domain.Summary | None]], layer: str,
               now: datetime) -> list[dict[str, Any]]:
        items = []
        for deal, summary in picked:
            in_layer = (summary.seconds_in.get(layer) if summary else None)
            items.append({
                "deal_id": deal.deal_id, "name": deal.name, "client_id": deal.client_id,
                "client_name": deal.client_name, "manager_id": deal.manager_id,
                "amount": deal.amount, "status": deal.status, "stage": deal.stage,
                "loss_reason": summary.loss_reason if summary else None,
                "days_in_status": (store.days_since(deal.entered_at, now) if in_layer is None
                                   else (Decimal(in_layer) / 86400).quantize(Decimal("0.1")))})
        return items

    # ------------------------------------------------------------------------ RPC
    @rpc
    def funnel(self, filters: dict[str, Any] | None = None,
               viewer: dict[str, Any] | None = None,
               people: dict[str, Any] | None = None) -> dict[str, Any]:
        """The funnel of a slice: per layer reached/amount/conversions/drop-off/median
        days/lost at (cohort) and deals now in it (snapshot), bottlenecks called out."""
        parsed, managers, layers, kinds, by_stage, context = self._request(
            filters, viewer, people)
        return self._funnel(parsed, managers, layers, kinds, by_stage, context)

    @rpc
    def funnel_export(self, filters: dict[str, Any] | None = None,
                      viewer: dict[str, Any] | None = None,
                      people: dict[str, Any] | None = None) -> dict[str, Any]:
        """What an export needs in one pass over the cohort: the ``funnel`` answer plus
        ``layer_deals`` {layer code: the deals that reached it, as ``layer_deals`` with
        ``mode=cohort`` lists them}."""
        parsed, managers, layers, kinds, by_stage, context = self._request(
            filters, viewer, people)
        now = store.utcnow()
        if not by_stage:
            answer = self._funnel(parsed, managers, layers, kinds, by_stage, context)
            return {**answer, "layer_deals": {
                layer.code: self._reached(parsed, managers, layers, kinds, i, now)
                for i, layer in enumerate(layers)}}
        cohort = [(deal, path, domain.summarize(path, layers, kinds, now))
                  for deal, path in store.paths(self.db.session, parsed, self.tz, managers,
                                                 by_stage)]
        rows = domain.funnel([p for _, p, _ in cohort], layers, kinds, now)
        answer = self._funnel(parsed, managers, layers, kinds, by_stage, context,
                              (rows, len(cohort)))
        biggest = sorted(cohort, key=lambda c: c[0].amount, reverse=True)
        per_layer: dict[str, list[dict[str, Any]]] = {}
        for i, layer in enumerate(layers):
            picked = [(deal, summary) for deal, _, summary in biggest
                      if domain.belongs(summary, "cohort", i, layer.code)][:LAYER_DEALS_LIMIT]
            per_layer[layer.code] = self._items(picked, layer.code, now)
        return {**answer, "layer_deals": per_layer}

    @rpc
    def layer_deals(self, layer: str, mode: str = "cohort",
                    filters: dict[str, Any] | None = None,
                    viewer: dict[str, Any] | None = None,
                    people: dict[str, Any] | None = None,
                    reason: str | None = None) -> dict[str, Any]:
        """The deals behind one layer: those that reached it (``cohort``), sit in it now
        (``now``) or were lost at it (``lost``, optionally for one ``reason``)."""
        parsed, managers, layers, kinds, by_stage, context = self._request(
            filters, viewer, people)
        codes = [x.code for x in layers]
        if str(mode) not in MODES:
            raise ValidationError(f"Неизвестный режим: «{mode}».", field="mode",
                                  key="filter.unknown_value",
                                  params={"field": "mode", "value": str(mode)})
        if layer not in codes:
            raise ValidationError(f"Неизвестный этап воронки: «{layer}».", field="layer",
                                  key="filter.unknown_value",
                                  params={"field": "layer", "value": str(layer)})
        now = store.utcnow()
        name = next(x.name for x in layers if x.code == layer)
        answer = {"layer": {"code": layer, "name": name}, "mode": mode, "reason": reason,
                  "filters": parsed.as_dict(), **context}
        if mode != "now" and not by_stage:
            if mode == "cohort":
                items = self._reached(parsed, managers, layers, kinds, codes.index(layer),
                                      now)
            else:
                lost = domain.lost_paths(store.groups(self.db.session, parsed, self.tz,
                                                       managers), layers, kinds, layer, reason)
                items = self._summarised_items(store.summarised(
                    self.db.session, parsed, self.tz, managers, paths=lost, reason=reason,
                    limit=LAYER_DEALS_LIMIT), layer, kinds, now)
            return {**answer, "deals": items}
        if mode == "now":
            picked: list[tuple[Any, domain.Summary | None]] = [
                (d, None) for d in store.current_in(self.db.session, parsed, managers, layer,
                                                     by_stage, LAYER_DEALS_LIMIT)]
        else:
            picked = []
            for deal, path in store.paths(self.db.session, parsed, self.tz, managers,
                                           by_stage):
                summary = domain.summarize(path, layers, kinds, now)
                if domain.belongs(summary, mode, codes.index(layer), layer, reason):
                    picked.append((deal, summary))
            picked.sort(key=lambda pair: pair[0].amount, reverse=True)
            picked = picked[:LAYER_DEALS_LIMIT]
        return {**answer, "deals": self._items(picked, layer, now)}

    @rpc
    def lost_deals(self, filters: dict[str, Any] | None = None,
                   viewer: dict[str, Any] | None = None,
                   people: dict[str, Any] | None = None) -> dict[str, Any]:
        """A6: lost deals by the status they were lost at and the reason, with amounts."""
        parsed, managers, layers, kinds, by_stage, context = self._request(
            filters, viewer, people)
        names = {x.code: x.name for x in layers}
        if by_stage:
            rows = domain.lost_breakdown(
                [p for _, p in store.paths(self.db.session, parsed, self.tz, managers,
                                            by_stage)], layers, kinds, store.utcnow())
        else:
            rows = domain.lost_of_groups(store.groups(self.db.session, parsed, self.tz,
                                                       managers), layers, kinds)
        for row in rows:
            row["status_name"] = names.get(row["status"] or "", "—")
        return {"filters": parsed.as_dict(), **context, "rows": rows,
                "total": {"count": sum(r["count"] for r in rows),
                          "amount": sum((r["amount"] for r in rows), Decimal("0.00"))}}

    @rpc
    def projection_status(self) -> dict[str, Any]:
        """How much the read model holds (the rebuild step asks whether it is empty)."""
        deals = self.db.scalar(select(func.count()).select_from(models.DealState))
        transitions = self.db.scalar(select(func.count()).select_from(models.Transition))
        last = self.db.scalar(select(func.max(models.Transition.at)))
        return {"deals": deals, "transitions": transitions,
                "last_transition_at": last if isinstance(last, (datetime, date)) else None}
