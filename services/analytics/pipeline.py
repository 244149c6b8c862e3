"""Entry points of the win probability (MISSION A5) and the weighted pipeline: what
teaches the estimator, the estimates, the recounts, the forecast (probability.py: the
estimator; winrate.py: its tables; forecast.py: the pipeline's rules)."""
from __future__ import annotations

from typing import Any

from services.analytics import clients_dim, domain, pipeline_store, probability, store, winrate
from services.analytics.parts import AnalyticsPart, slice_filters
from services.kit import clock, parse
from services.kit.batch import consumes_batch
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.kit.timer import every

MAX_BATCH = 500
MAX_MONTHS = 24
PIPELINE_DEALS = 200  # the biggest weighted deals listed under the forecast, with their basis


class PipelineEntrypoints(AnalyticsPart):
    # deals' events come many to a transaction (the kit's consumes_batch), as the funnel's
    # own handlers take them: one commit per event here would cap the whole process
    @consumes_batch("deals", "deal_status_changed")
    def learn_outcome(self, events: list[Envelope]) -> None:
        """A move into won or lost teaches the estimator at once; out of them, unteaches."""
        kinds, order = self._open_order()
        winrate.learn_all(self.db.session, [(e.data, e.occurred_at) for e in events],
                          kinds, order)

    @consumes("intake", "lead_accepted")
    def on_lead_accepted(self, event: Envelope) -> None:
        """How the deal arrived (form, call, e-mail, API): one of the estimator's features."""
        if event.data.get("deal_id") and event.data.get("source"):
            winrate.record_facts(self.db.session, int(event.data["deal_id"]),
                                 source=probability.source_of(event.data["source"]))
            winrate.correct_sources(self.db.session, [int(event.data["deal_id"])],
                                    self._open_order()[1])

    @consumes_batch("deals", "deal_created")
    def on_deal_facts(self, events: list[Envelope]) -> None:
        """How the deal arrived (``source``), its planned close date, and the client's
        kind and group when the deal's event carries them: features of the estimate and
        the weighted pipeline's month."""
        winrate.facts_created(self.db.session, events)
        _, order = self._open_order()
        winrate.correct_sources(self.db.session, [int(e.data["deal_id"]) for e in events],
                                order)

    @consumes("clients", "client_created")
    def on_client_created(self, event: Envelope) -> None:
        clients_dim.client_seen(self.db.session, event.data, event.occurred_at)

    @consumes("clients", "client_updated")
    def on_client_updated(self, event: Envelope) -> None:
        clients_dim.client_seen(self.db.session, event.data, event.occurred_at)

    @consumes_batch("deals", "deal_updated")
    def on_manual_probability(self, events: list[Envelope]) -> None:
        """A manager set (or cleared) the probability by hand: shown beside the estimate,
        and it is what the weighted pipeline uses.  Also a new client kind or group."""
        winrate.facts_updated(self.db.session, events)

    def _estimates(self, deal_ids: list[int]) -> dict[int, dict[str, Any]]:
        kinds, _ = self._open_order()
        names = {str(t["id"]): t["name"] for t in self._types()}
        found = winrate.estimates(self.db.session, deal_ids, kinds, store.utcnow())
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
        filters, departments, department = slice_filters(filters, people,
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
        # summed in the database per manager and month (pipeline_store.py); the reference
        # over every open deal is winrate.open_estimates with forecast.pipeline
        answer = pipeline_store.weighted_pipeline(
            self.db.session, [c for c, k in kinds.items() if k == "open"],
            [c for c, k in kinds.items() if k == "won"], store.utcnow(),
            clock.now(self.tz).date(), departments, months, PIPELINE_DEALS, manager,
            [m for m, d in departments.items() if d == department] if department else None)
        return {**answer, "filters": {"manager_id": manager, "department": department,
                                      "months": months}}

