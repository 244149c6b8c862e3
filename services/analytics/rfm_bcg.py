"""Entry points of client loyalty (RFM), the client dimension it slices by, and the BCG
matrix (MISSION A7): rules in loyalty.py and bcg.py, queries in loyalty_store.py and
clients_dim.py."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.analytics import (
    bcg,
    clients_dim,
    domain,
    loyalty,
    loyalty_store,
    models,
    schemas,
    store,
)
from services.analytics.parts import AnalyticsPart
from services.kit import clock
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Forbidden, ValidationError
from services.kit.parse import choice as parse_choice
from services.kit.parse import identifier as parse_identifier
from services.kit.timer import every


class RfmBcgEntrypoints(AnalyticsPart):
    @consumes("deals", "calculation_saved")
    def on_calculation_saved(self, event: Envelope) -> None:
        loyalty_store.save_lines(self.db.session, event.data)

    def _rfm_run(self) -> dict[str, Any]:
        """Recompute and publish the moves (``client_segments_changed``, through the outbox
        in the scores' transaction: the clients' copy never misses or doubles a move)."""
        now = store.utcnow()
        result = loyalty_store.recompute(self.db.session, now.astimezone(self.tz).date(), now)
        for payload in loyalty.segment_events(result.pop("changes"), now):
            self.db.emit("client_segments_changed", payload)
        return result

    @every("RFM_TICK_SECONDS", 300)
    def rfm_nightly(self) -> None:
        """Recompute RFM once a night: the replica that claims the job's row runs it, the
        others skip it (SKIP LOCKED); the claim and the scores commit together."""
        now = store.utcnow()
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
        now = store.utcnow()
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
        return {str(cid): schemas.score_dict(s)
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
        return {"score": schemas.score_dict(score) if score else None,
                "history": [schemas.segment_move_dict(h)
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


