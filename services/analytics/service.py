"""Analytics service: the sales funnel and lost deals (MISSION A1–A4, A6), from a read
model fed only by the events deals and payments publish.  Entry points only."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import func, select

from services.analytics import (
    activity,
    bcg,
    clients_dim,
    domain,
    forecast,
    loyalty,
    loyalty_store,
    models,
    probability,
    projection,
    report,
    winrate,
)
from services.analytics.batching import batch_consumes
from services.kit import clock, parse, permissions
from services.kit.dependencies import CallLog, Permissions, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Forbidden, ValidationError
from services.kit.parse import choice as parse_choice
from services.kit.parse import identifier as parse_identifier
from services.kit.service import HealthCheck
from services.kit.timer import every

LAYER_DEALS_LIMIT = 500
MODES = ("cohort", "now", "lost")

# statuses and types rarely change: asked from deals at most every REFERENCE_TTL_SECONDS
_reference: dict[str, tuple[float, Any]] = {}


class AnalyticsService(HealthCheck):
    name = "analytics"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    deals = Remote("deals")

    # ------------------------------------------------------------------ events in
    # deals' events come many to a transaction (batching.py): the projection keeps up
    @batch_consumes("deals", "deal_created", deferring=projection.summaries_deferred)
    def on_deal_created(self, event: Envelope) -> None:
        projection.deal_created(self.db.session, event.data, event.occurred_at)

    @batch_consumes("deals", "deal_status_changed", deferring=projection.summaries_deferred)
    def on_deal_status_changed(self, event: Envelope) -> None:
        projection.status_changed(self.db.session, event.data, event.occurred_at)

    @batch_consumes("deals", "deal_updated")
    def on_deal_updated(self, event: Envelope) -> None:
        projection.deal_updated(self.db.session, event.data)

    @timer(interval=2.0)
    def compact_counts(self) -> None:
        """Fold the moves of the deals now in each status into their counts (the snapshot
        reads both, so this only keeps the moves few)."""
        projection.compact_counts(self.db.session)
        self.db.commit()

    @consumes("payments", "payment_received")
    def on_payment_received(self, event: Envelope) -> None:
        projection.payment_received(self.db.session, event.data)

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
        now = report.utcnow()
        if not by_stage:
            # status mode: aggregates over the deals' summary rows
            return report.figures(self.db.session, parsed, self.tz, managers, layers, kinds,
                                  now)
        cohort = [p for _, p in report.paths(self.db.session, parsed, self.tz, managers,
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
                "days_in_status": (report.days_since(deal.entered_at, now) if in_layer is None
                                   else (Decimal(in_layer) / 86400).quantize(Decimal("0.1")))})
        return items

    def _reached(self, parsed: domain.Filters, managers: set[int] | None,
                 layers: list[domain.Layer], kinds: dict[str, str], index: int,
                 now: datetime) -> list[dict[str, Any]]:
        """The biggest deals that reached layer ``index`` (status mode)."""
        deals = report.summarised(self.db.session, parsed, self.tz, managers,
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
        domain.snapshot(rows, report.now_in_layers(self.db.session, parsed, managers,
                                                   by_stage))
        previous = None
        if parsed.compare:
            previous, previous_deals = self._figures(parsed.previous(), managers, layers,
                                                     kinds, by_stage)
        margin = Decimal(str(self.config.get("BOTTLENECK_DROP_POINTS", 10)))
        domain.mark_bottlenecks(rows, previous, margin)
        return {"filters": parsed.as_dict(), **context, "deals": deals,
                "revenue": report.revenue(self.db.session, parsed, self.tz, managers),
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
                "days_in_status": (report.days_since(deal.entered_at, now) if in_layer is None
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
        now = report.utcnow()
        if not by_stage:
            answer = self._funnel(parsed, managers, layers, kinds, by_stage, context)
            return {**answer, "layer_deals": {
                layer.code: self._reached(parsed, managers, layers, kinds, i, now)
                for i, layer in enumerate(layers)}}
        cohort = [(deal, path, domain.summarize(path, layers, kinds, now))
                  for deal, path in report.paths(self.db.session, parsed, self.tz, managers,
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
        now = report.utcnow()
        name = next(x.name for x in layers if x.code == layer)
        answer = {"layer": {"code": layer, "name": name}, "mode": mode, "reason": reason,
                  "filters": parsed.as_dict(), **context}
        if mode != "now" and not by_stage:
            if mode == "cohort":
                items = self._reached(parsed, managers, layers, kinds, codes.index(layer),
                                      now)
            else:
                lost = domain.lost_paths(report.groups(self.db.session, parsed, self.tz,
                                                       managers), layers, kinds, layer, reason)
                items = self._summarised_items(report.summarised(
                    self.db.session, parsed, self.tz, managers, paths=lost, reason=reason,
                    limit=LAYER_DEALS_LIMIT), layer, kinds, now)
            return {**answer, "deals": items}
        if mode == "now":
            picked: list[tuple[Any, domain.Summary | None]] = [
                (d, None) for d in report.current_in(self.db.session, parsed, managers, layer,
                                                     by_stage, LAYER_DEALS_LIMIT)]
        else:
            picked = []
            for deal, path in report.paths(self.db.session, parsed, self.tz, managers,
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
                [p for _, p in report.paths(self.db.session, parsed, self.tz, managers,
                                            by_stage)], layers, kinds, report.utcnow())
        else:
            rows = domain.lost_of_groups(report.groups(self.db.session, parsed, self.tz,
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

    # ------------------------------------------------- win probability (MISSION A5)
    # (probability.py: the estimator; winrate.py: its tables)
    def _open_order(self) -> tuple[dict[str, str], list[str]]:
        statuses = self._statuses()
        return ({str(s["code"]): str(s["kind"]) for s in statuses},
                winrate.open_order(statuses))

    @consumes("deals", "deal_status_changed")
    def learn_outcome(self, event: Envelope) -> None:
        """A move into won or lost teaches the estimator at once; out of them, unteaches."""
        kinds, order = self._open_order()
        winrate.learn(self.db.session, event.data, kinds, order, event.occurred_at)

    @consumes("intake", "lead_accepted")
    def on_lead_accepted(self, event: Envelope) -> None:
        """How the deal arrived (form, call, e-mail, API): one of the estimator's features."""
        if event.data.get("deal_id") and event.data.get("source"):
            winrate.record_facts(self.db.session, int(event.data["deal_id"]),
                                 source=probability.source_of(event.data["source"]))

    @consumes("deals", "deal_created")
    def on_deal_facts(self, event: Envelope) -> None:
        """How the deal arrived (``source``), its planned close date, and the client's
        kind and group when the deal's event carries them: features of the estimate and
        the weighted pipeline's month."""
        data = event.data
        winrate.record_facts(self.db.session, int(data["deal_id"]),
                             source=probability.source_of(data.get("source")),
                             client_kind=data.get("client_kind"),
                             client_group_id=data.get("client_group_id"))
        if data.get("planned_close_on"):
            winrate.set_planned_close(self.db.session, int(data["deal_id"]),
                                      winrate.day_of(data["planned_close_on"]),
                                      int(data.get("version") or 1))

    @consumes("clients", "client_created")
    def on_client_created(self, event: Envelope) -> None:
        clients_dim.client_seen(self.db.session, event.data, event.occurred_at)

    @consumes("clients", "client_updated")
    def on_client_updated(self, event: Envelope) -> None:
        clients_dim.client_seen(self.db.session, event.data, event.occurred_at)

    @consumes("deals", "deal_updated")
    def on_manual_probability(self, event: Envelope) -> None:
        """A manager set (or cleared) the probability by hand: shown beside the estimate,
        and it is what the weighted pipeline uses.  Also a new client kind or group."""
        data, changes = event.data, event.data.get("changes") or {}
        change = changes.get("probability")
        if change is not None:
            winrate.set_manual(self.db.session, int(data["deal_id"]), change.get("to"))
        planned = changes.get("planned_close_on")
        if planned is not None:
            to = planned.get("to") if isinstance(planned, dict) else None
            winrate.set_planned_close(self.db.session, int(data["deal_id"]),
                                      winrate.day_of(to), int(data.get("version") or 0))
        group = (changes.get("client_group_id") or {}).get("to", data.get("client_group_id"))
        kind = (changes.get("client_kind") or {}).get("to", data.get("client_kind"))
        winrate.record_facts(self.db.session, int(data["deal_id"]), client_kind=kind,
                             client_group_id=group)

    def _estimates(self, deal_ids: list[int]) -> dict[int, dict[str, Any]]:
        kinds, _ = self._open_order()
        names = {str(t["id"]): t["name"] for t in self._types()}
        found = winrate.estimates(self.db.session, deal_ids, kinds, report.utcnow())
        for answer in found.values():
            for factor in answer["factors"]:
                factor["value_name"] = (names.get(factor["value"])
                                        if factor["feature"] == "type" else None)
        return found

    @rpc
    def win_probability(self, deal_id: int) -> dict[str, Any]:
        """One open deal's estimate: {deal_id, percent (1–99, None: see reason), model
        (type|pooled|none), examples, reason, factors [{feature, value, value_name,
        points}] (the top three, biggest first), manual (set by hand, None: not set)}."""
        ident = parse.identifier(deal_id, "deal_id")
        return {"deal_id": ident, **self._estimates([ident])[ident]}

    @rpc
    def win_probabilities(self, deal_ids: list[int]) -> dict[str, dict[str, Any]]:
        """The estimates of many deals at once (a kanban page): {str(deal_id): estimate}."""
        if not isinstance(deal_ids, list) or len(deal_ids) > MAX_BATCH:
            raise ValidationError(f"Не больше {MAX_BATCH} сделок за раз.", field="deal_ids",
                                  key="deal_ids.too_many", params={"max": MAX_BATCH})
        ids = [parse.identifier(i, "deal_ids") for i in deal_ids]
        return {str(k): v for k, v in self._estimates(ids).items()}

    @rpc
    def rebuild_probability(self) -> dict[str, Any]:
        """Recount the estimator from every learnt outcome now (learning first the closed
        deals of the read model it never heard closing)."""
        kinds, order = self._open_order()
        outcomes = winrate.recount(self.db.session, kinds, order)
        return {"outcomes": outcomes}

    @every("PROBABILITY_REBUILD_TICK_SECONDS", 600)
    def nightly_probability(self) -> None:
        """Once a night, after ``PROBABILITY_REBUILD_HOUR`` (local time), one replica
        recounts; the others find the night claimed and do nothing."""
        now = clock.now(self.tz)
        if now.hour < int(self.config.get("PROBABILITY_REBUILD_HOUR", 3)):
            return
        if winrate.claim_night(self.db.session, now.date()):
            kinds, order = self._open_order()
            winrate.note_night(self.db.session, now.date(),
                               winrate.recount(self.db.session, kinds, order))
        self.db.commit()

    @rpc
    def weighted_pipeline(self, filters: dict[str, Any] | None = None,
                          viewer: dict[str, Any] | None = None,
                          people: dict[str, Any] | None = None) -> dict[str, Any]:
        """Σ amount × probability of the open deals by expected close month, overall, per
        manager and per department (forecast.py); ``filters``: ``manager_id``,
        ``department``, ``months`` (1–24, default 6).  Anyone but a head or an
        administrator sees only their own deals."""
        filters, departments, department = _slice(filters, people,
                                                  ("manager_id", "department", "months"))
        months = 6
        if filters.get("months") not in (None, ""):
            months = parse.identifier(filters["months"], "months")
            if months > MAX_MONTHS:
                raise ValidationError(f"Не больше {MAX_MONTHS} месяцев.", field="months",
                                      key="months.too_many", params={"max": MAX_MONTHS})
        manager = (parse.identifier(filters["manager_id"], "manager_id")
                   if filters.get("manager_id") not in (None, "") else None)
        if not domain.HEAD_ROLES & set((viewer or {}).get("roles") or []):
            manager = int((viewer or {}).get("user_id") or 0)
        kinds, _ = self._open_order()
        now = report.utcnow()
        rows = winrate.open_estimates(
            self.db.session, [c for c, k in kinds.items() if k == "open"], now, manager,
            [m for m, d in departments.items() if d == department] if department else None)
        deals = [forecast.OpenDeal(r["deal_id"], r["manager_id"], r["type_id"], r["amount"],
                                   r["created_at"], r["percent"], r["manual"],
                                   r["planned_close_on"]) for r in rows]
        cycles = winrate.typical_cycles(self.db.session,
                                        [c for c, k in kinds.items() if k == "won"])
        answer = forecast.pipeline(deals, cycles, clock.now(self.tz).date(), departments,
                                   months, listed=PIPELINE_DEALS)
        named = {r["deal_id"]: (r["name"], r["client_name"]) for r in rows}
        for row in answer["deals"]:
            row["name"], row["client_name"] = named[row["deal_id"]]
        return {**answer, "filters": {"manager_id": manager, "department": department,
                                      "months": months}}

    # ------------------------------------------------- manager performance (MISSION A7)
    may = Permissions()

    @consumes("deals", "reminder_created")
    def on_task_created(self, event: Envelope) -> None:
        activity.task_created(self.db.session, event.data)

    @consumes("deals", "reminder_completed")
    def on_task_completed(self, event: Envelope) -> None:
        activity.task_completed(self.db.session, event.data)

    @consumes("telephony", "call_finished")
    def on_call_finished(self, event: Envelope) -> None:
        activity.call_seen(self.db.session, event.data)

    @consumes("telephony", "call_updated")
    def on_call_updated(self, event: Envelope) -> None:
        activity.call_seen(self.db.session, event.data)

    @rpc
    def manager_performance(self, filters: dict[str, Any] | None = None,
                            viewer: dict[str, Any] | None = None,
                            people: dict[str, Any] | None = None) -> dict[str, Any]:
        """Per manager over a period (performance.py), ranked; heads and administrators
        only.  ``filters``: ``start``, ``end`` (dates, whole days in ``TIMEZONE``; default
        the last 30 days), ``department`` (its members only)."""
        permissions.require_roles(self.may.actor, domain.HEAD_ROLES, "manager performance")
        if viewer is not None and not domain.HEAD_ROLES & set(viewer.get("roles") or []):
            raise Forbidden("manager performance: only for admin, head",
                            key="permission.heads_only")
        filters, departments, department = _slice(filters, people,
                                                  ("start", "end", "department",
                                                   "client_group_id"))
        group = parse_identifier(filters.get("client_group_id") or None, "client_group_id",
                                 required=False)
        today = clock.now(self.tz).date()
        end_day = parse.day(filters.get("end") or today.isoformat(), "end")
        start_day = parse.day(filters.get("start")
                              or (end_day - timedelta(days=29)).isoformat(), "start")
        if end_day < start_day:
            raise ValidationError("Конец периода раньше начала.", field="end",
                                  key="period.end_before_start",
                                  params={"start": start_day.isoformat(),
                                          "end": end_day.isoformat()})
        if (end_day - start_day).days + 1 > domain.MAX_PERIOD_DAYS:
            raise ValidationError("Период длиннее пяти лет.", field="start",
                                  key="period.too_long", params={"max_years": 5})
        managers = ({m for m, d in departments.items() if d == department}
                    if department else None)
        start = datetime.combine(start_day, datetime.min.time(), self.tz)
        end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), self.tz)
        kinds, _ = self._open_order()
        rows = activity.figures(self.db.session, kinds, start, end, report.utcnow(), managers,
                                group)
        return {"filters": {"start": start_day, "end": end_day, "department": department,
                            "client_group_id": group},
                "managers": rows}

    # ------------------------------------------------ client loyalty (RFM) and BCG
    # (rules in loyalty.py and bcg.py, queries in loyalty_store.py)
    @consumes("deals", "calculation_saved")
    def on_calculation_saved(self, event: Envelope) -> None:
        loyalty_store.save_lines(self.db.session, event.data)

    def _rfm_run(self) -> dict[str, Any]:
        """Recompute and publish the moves (``client_segments_changed``, through the outbox
        in the scores' transaction: the clients' copy never misses or doubles a move)."""
        now = report.utcnow()
        result = loyalty_store.recompute(self.db.session, now.astimezone(self.tz).date(), now)
        for payload in loyalty.segment_events(result.pop("changes"), now):
            self.db.emit("client_segments_changed", payload)
        return result

    @every("RFM_TICK_SECONDS", 300)
    def rfm_nightly(self) -> None:
        """Recompute RFM once a night: the replica that claims the job's row runs it, the
        others skip it (SKIP LOCKED); the claim and the scores commit together."""
        now = report.utcnow()
        job = loyalty_store.claim_due(self.db.session, loyalty_store.RFM_JOB, now,
                                      loyalty.next_night(now, self.tz))
        if job is None:
            self.db.commit()
            return
        result = self._rfm_run()
        job.due_at = loyalty.next_night(now, self.tz)
        job.last_run_at, job.last_result = now, f"{result['clients']} clients"
        self.db.commit()

    @rpc
    def recompute_rfm(self) -> dict[str, Any]:
        """On demand (the administrator's button): waits for a run in progress, then
        recomputes; {`clients`, `moved`, `computed_at`, `segments` {code: count}}."""
        now = report.utcnow()
        job = loyalty_store.lock_job(self.db.session, loyalty_store.RFM_JOB,
                                     loyalty.next_night(now, self.tz))
        result = self._rfm_run()
        job.last_run_at, job.last_result = now, f"{result['clients']} clients"
        return result

    @rpc
    def rfm_rules(self, client_group_id: int | None = None) -> dict[str, Any]:
        """The segment rule table as the administrator sees it, the last run, and how many
        clients each segment holds (``segments``; of one group of companies when given)."""
        group = parse_identifier(client_group_id, "client_group_id", required=False)
        job = self.db.get(models.ScheduledJob, loyalty_store.RFM_JOB)
        return {"rules": loyalty.rules_table(),
                "last_run_at": job.last_run_at if job else None,
                "next_run_at": job.due_at if job else None,
                "client_group_id": group,
                "segments": loyalty_store.segment_counts(self.db.session, group)}

    @rpc
    def client_segments(self, client_ids: list[int]) -> dict[str, Any]:
        """One batch for a page of clients: {client id: score} for those that paid
        (a client without a receipt is absent)."""
        if not isinstance(client_ids, list) or len(client_ids) > 1000:
            raise ValidationError("Не больше 1000 клиентов за раз.", "client_ids",
                                  key="rfm.too_many_clients", params={"max": 1000})
        ids = [parse_identifier(c, "client_ids") for c in client_ids]
        return {str(cid): loyalty_store.score_dict(s)
                for cid, s in loyalty_store.segments_of(self.db.session, ids).items()}

    @rpc
    def segment_clients(self, segment: str, limit: int = 5000,
                        client_group_id: int | None = None) -> list[int]:
        """Ids of the clients in a segment (the client list's filter), optionally of one
        group of companies only."""
        code = parse_choice(segment, "segment", loyalty.SEGMENTS)
        group = parse_identifier(client_group_id, "client_group_id", required=False)
        return loyalty_store.clients_in(self.db.session, code, max(1, min(int(limit), 50000)),
                                        group)

    @consumes("clients", "client_group_changed")
    def on_client_group_changed(self, event: Envelope) -> None:
        clients_dim.client_seen(self.db.session, event.data, event.occurred_at)

    @rpc
    def client_loyalty(self, client_id: int) -> dict[str, Any]:
        """The client page: {`score` (or null), `history` [{`previous, segment,
        changed_at`}], newest first}."""
        cid = parse_identifier(client_id, "client_id")
        score = loyalty_store.segments_of(self.db.session, [cid]).get(cid)
        return {"score": loyalty_store.score_dict(score) if score else None,
                "history": [{"previous": h.previous, "segment": h.segment,
                             "changed_at": h.changed_at}
                            for h in loyalty_store.history_of(self.db.session, cid)]}

    @rpc
    def bcg_matrix(self, filters: dict[str, Any] | None = None,
                   viewer: dict[str, Any] | None = None) -> dict[str, Any]:
        """BCG over our own sales: won deals closed in the period (`start`, `end`; default
        the last 90 days) against the previous period of the same length, by product line
        (by deal type when no won deal has catalogue lines).  Heads and administrators."""
        if viewer is not None and not domain.HEAD_ROLES & set(viewer.get("roles") or ()):
            raise Forbidden("heads and administrators only")
        raw = dict(filters or {})
        threshold = raw.pop("growth", None)
        types = self._types()
        parsed = domain.parse_filters(raw, clock.now(self.tz).date(),
                                      type_ids=[t["id"] for t in types], manager_ids=None,
                                      departments=())
        growth = bcg.growth_threshold(threshold)
        won = [s["code"] for s in self._statuses() if s.get("kind") == "won"]
        previous = parsed.previous()
        sales = loyalty_store.won_sales(self.db.session, parsed.start, parsed.end,
                                        previous.start, self.tz, won)
        lines, by_type = sales["current"]
        lines_before, by_type_before = sales["previous"]
        by_lines = any(k != loyalty_store.NO_LINE for k in {**lines, **lines_before})
        if by_lines:
            current, before = lines, lines_before
        else:
            names = {str(t["id"]): t["name"] for t in types}

            def named(by: dict[str, Decimal]) -> dict[str, Decimal]:
                return {names.get(k, loyalty_store.NO_TYPE): v for k, v in by.items()}
            current, before = named(by_type), named(by_type_before)
        rows = bcg.matrix(current, before, growth)
        return {"start": parsed.start, "end": parsed.end, "previous_start": previous.start,
                "previous_end": previous.end, "by": "product_line" if by_lines else "deal_type",
                "growth_threshold": growth, "quadrants": bcg.QUADRANTS,
                "total": sum(current.values(), Decimal("0.00")),
                "rows": [{"key": r.key, "sales": r.sales, "previous": r.previous,
                          "share": r.share, "relative_share": r.relative_share,
                          "growth": r.growth, "quadrant": r.quadrant,
                          "quadrant_name": bcg.QUADRANTS[r.quadrant]} for r in rows]}


MAX_BATCH = 500
PIPELINE_DEALS = 200  # the biggest weighted deals listed under the forecast, with their basis


def _slice(filters: dict[str, Any] | None, people: dict[str, Any] | None,
           known: tuple[str, ...]) -> tuple[dict[str, Any], dict[int, str], str | None]:
    """The filters of a pipeline or performance request checked: unknown names refused,
    the department one of ``people``'s.  Returns (filters, {user: department}, department)."""
    filters = dict(filters or {})
    unknown = set(filters) - set(known)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(f"Неизвестный фильтр: «{name}».", field=name,
                              key="filter.unknown", params={"field": name})
    departments = {int(k): (v or "") for k, v in (people or {}).items()}
    department = str(filters.get("department") or "") or None
    if department and department not in set(departments.values()):
        raise ValidationError(f"Неизвестный отдел: «{department}».", field="department",
                              key="filter.unknown_value",
                              params={"field": "department", "value": department})
    return filters, departments, department
MAX_MONTHS = 24
