"""The win-probability estimator's tables (the maths is services/analytics/probability.py):
what each closed deal taught, the counts kept current on every won/lost event, the
nightly recount, and the estimates of open deals.

Live updates and the recount never interleave: both take a lock on ``win_counts`` before
reading anything (the live handler ROW EXCLUSIVE, the recount SHARE ROW EXCLUSIVE, which
conflict), so a deal closing during a recount is counted by exactly one of them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import case, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.analytics import clients_dim, forecast, probability
from services.analytics.models import DealFacts, DealState, WinCount, WinOutcome

REBUILD_LOCK = "analytics.probability_rebuild"


def _at(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def open_order(statuses: Sequence[Mapping[str, Any]]) -> list[str]:
    """The open statuses in the funnel's order (what a closed deal counts at)."""
    ordered = sorted(statuses, key=lambda s: (s.get("position") or 0, s.get("id") or 0))
    return [str(s["code"]) for s in ordered if s.get("kind") == "open"]


def record_facts(session: Session, deal_id: int, **facts: Any) -> None:
    """Remember how a deal arrived or its client's kind/group (only the facts given)."""
    given = {k: v for k, v in facts.items() if v is not None}
    return _store_facts(session, deal_id, given)


def set_manual(session: Session, deal_id: int, percent: int | None) -> None:
    """The probability a manager set by hand (None: cleared, the estimate alone counts)."""
    _store_facts(session, deal_id, {"manual_probability": percent})


def _store_facts(session: Session, deal_id: int, given: dict[str, Any]) -> None:
    if not given:
        return
    upsert = insert(DealFacts).values(deal_id=deal_id, **given)
    changes: dict[str, Any] = dict(given)
    if "source" in given:
        # "manual" (the deal's own default) never hides what intake said it came by
        changes["source"] = case((upsert.excluded.source == "manual",
                                  func.coalesce(DealFacts.source, "manual")),
                                 else_=upsert.excluded.source)
    session.execute(upsert.on_conflict_do_update(index_elements=["deal_id"], set_=changes))


def day_of(value: Any) -> date | None:
    """An event's ISO date (None: absent or unreadable; an event is never refused for it,
    which would redeliver it for ever)."""
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def set_planned_close(session: Session, deal_id: int, day: date | None, version: int) -> None:
    """The deal's planned close date (None: cleared), from a newer deal version only."""
    upsert = insert(DealFacts).values(deal_id=deal_id, planned_close_on=day,
                                      planned_version=version)
    session.execute(upsert.on_conflict_do_update(
        index_elements=["deal_id"],
        set_={"planned_close_on": day, "planned_version": version},
        where=DealFacts.planned_version < version))


def _client(fact: DealFacts | _Facts | None, known: clients_dim.Client | None
            ) -> tuple[str | None, int | None]:
    """The client's kind and group for a feature: the client dimension's (clients' own
    events) when it knows the client, else what the deal's events carried."""
    kind = (known.kind if known else None) or (fact.client_kind if fact else None)
    group = known.group_id if known else (fact.client_group_id if fact else None)
    return kind, group


def _features(deal: Any, fact: DealFacts | None,
              clients: Mapping[int, clients_dim.Client], created_at: datetime,
              at: datetime) -> dict[str, str]:
    """The features of a deal (an open one now, a closed one when it closed) as the model
    counts them; ``deal`` is a row with the deal's type, manager, client and amount."""
    kind_of, group_of = _client(fact, clients.get(deal.client_id)
                                if deal.client_id is not None else None)
    return probability.features(
        type_id=deal.type_id, manager_id=deal.manager_id,
        client_kind=kind_of, client_group_id=group_of,
        created_at=created_at, at=at, amount=deal.amount,
        source=fact.source if fact else None)


def _facts(session: Session, deal_ids: Sequence[int]) -> dict[int, DealFacts]:
    rows = session.scalars(select(DealFacts).where(DealFacts.deal_id.in_(deal_ids))).all()
    return {r.deal_id: r for r in rows}


def _outcome(row: WinOutcome) -> probability.Outcome | None:
    if row.won is None or row.closed_at is None:
        return None
    return probability.Outcome(row.deal_id, row.type_id, bool(row.won), row.lost_at,
                               dict(row.values or {}), row.closed_at)


def _apply(session: Session, delta: Mapping[probability.Key, tuple[int, int]]) -> None:
    rows = [{"model": m, "status": s, "feature": f, "value": v[:50], "won": w, "lost": lo}
            for (m, s, f, v), (w, lo) in sorted(delta.items()) if w or lo]
    if not rows:
        return
    upsert = insert(WinCount).values(rows)
    session.execute(upsert.on_conflict_do_update(
        index_elements=["model", "status", "feature", "value"],
        set_={"won": WinCount.won + upsert.excluded.won,
              "lost": WinCount.lost + upsert.excluded.lost}))


class _Facts(NamedTuple):
    """What a deal's facts say while a batch is learnt (its own events' client fields laid
    over the stored row, as if each had been written before the next was read)."""
    source: str | None
    client_kind: str | None
    client_group_id: int | None


def learn(session: Session, data: Mapping[str, Any], kinds: Mapping[str, str],
          order: Sequence[str], occurred_at: str) -> None:
    """A deal moved (``deals.deal_status_changed``): into won or lost it teaches its
    outcome, out of them it takes back what it taught; an older version changes nothing."""
    learn_all(session, [(data, occurred_at)], kinds, order)


def learn_all(session: Session, moves: Sequence[tuple[Mapping[str, Any], str]],
              kinds: Mapping[str, str], order: Sequence[str]) -> None:
    """Many moves ((event data, occurred_at), in delivery order) learnt in one transaction
    with the same outcome as one ``learn`` each in that order: the deals' outcome rows are
    created and locked in two statements (in deal order, so that two batches never wait
    on each other in a cycle), the facts and the client dimension read once, the counts
    changed by the sum of the moves in one upsert.  Most moves are not into or out of
    won/lost and cost only their row's version."""
    if not moves:
        return
    session.execute(text("LOCK TABLE win_counts IN ROW EXCLUSIVE MODE"))
    ids = sorted({int(data["deal_id"]) for data, _ in moves})
    session.execute(insert(WinOutcome).values(
        [{"deal_id": i, "version": 0, "values": {}} for i in ids]).on_conflict_do_nothing())
    rows = {r.deal_id: r for r in session.scalars(
        select(WinOutcome).where(WinOutcome.deal_id.in_(ids)).order_by(WinOutcome.deal_id)
        .with_for_update().execution_options(populate_existing=True))}
    stored = _facts(session, ids)
    facts = {i: _Facts(f.source, f.client_kind, f.client_group_id)
             for i, f in stored.items()}
    clients = clients_dim.of(session, (data.get("client_id") for data, _ in moves))
    told: dict[int, dict[str, Any]] = {}
    delta: dict[probability.Key, list[int]] = {}
    for data, occurred_at in moves:
        deal_id = int(data["deal_id"])
        if data.get("client_group_id") is not None or data.get("client_kind"):
            given = {k: data.get(k) for k in ("client_group_id", "client_kind")
                     if data.get(k) is not None}
            told.setdefault(deal_id, {}).update(given)
            facts[deal_id] = facts.get(deal_id, _Facts(None, None, None))._replace(**given)
        _learn_one(rows[deal_id], data, occurred_at, kinds, order, facts.get(deal_id),
                   clients, delta)
    for deal_id, given in told.items():
        _store_facts(session, deal_id, given)
    _apply(session, {k: (w, lo) for k, (w, lo) in delta.items()})


def _learn_one(row: WinOutcome, data: Mapping[str, Any], occurred_at: str,
               kinds: Mapping[str, str], order: Sequence[str], facts: _Facts | None,
               clients: Mapping[int, clients_dim.Client],
               delta: dict[probability.Key, list[int]]) -> None:
    """One move applied to its deal's locked outcome row, its change of the counts added
    to ``delta``."""
    version = int(data.get("version") or 0)
    if version and version <= row.version:
        return
    kind = data.get("to_status_kind") or kinds.get(str(data.get("to_status")))
    before = _outcome(row)
    if before is not None:
        probability.add(delta, probability.contributions(before, order), sign=-1)
    row.version = version or row.version + 1
    if kind in ("won", "lost"):
        at = _at(data.get("changed_at") or occurred_at)
        client = data.get("client_id")
        kind_of, group_of = _client(facts, clients.get(int(client))
                                    if client is not None else None)
        from_status = data.get("from_status")
        lost_at = (str(from_status) if kinds.get(str(from_status)) == "open"
                   else (before.lost_at if before and not before.won else None))
        values = probability.features(
            type_id=data.get("type_id"), manager_id=data.get("manager_id"),
            client_kind=kind_of, client_group_id=group_of,
            created_at=_at(data.get("created_at") or at), at=at,
            amount=Decimal(str(data.get("amount") or "0")),
            source=facts.source if facts else None)
        row.type_id, row.won = data.get("type_id"), kind == "won"
        row.lost_at = None if kind == "won" else lost_at
        row.values, row.closed_at = values, at
        after = _outcome(row)
        if after is not None:
            probability.add(delta, probability.contributions(after, order))
    else:
        row.won, row.lost_at, row.closed_at = None, None, None


def correct_sources(session: Session, deal_ids: Sequence[int], order: Sequence[str]) -> None:
    """Outcomes already learnt with a source other than the one now told are corrected:
    ``deal_created`` (how the deal arrived) and the move into won or lost come by separate
    queues, so the close may be learnt first, with the default "manual".

    The outcome rows are inserted (when absent) and locked first, as ``learn_all`` does: a
    close being learnt in a concurrent transaction is waited for and then corrected, and
    one that starts later reads the facts stored here."""
    ids = sorted(set(int(i) for i in deal_ids))
    if not ids:
        return
    session.execute(text("LOCK TABLE win_counts IN ROW EXCLUSIVE MODE"))
    session.execute(insert(WinOutcome).values(
        [{"deal_id": i, "version": 0, "values": {}} for i in ids]).on_conflict_do_nothing())
    rows = list(session.scalars(
        select(WinOutcome).where(WinOutcome.deal_id.in_(ids)).order_by(WinOutcome.deal_id)
        .with_for_update().execution_options(populate_existing=True)))
    facts = _facts(session, ids)
    delta: dict[probability.Key, list[int]] = {}
    for row in rows:
        fact = facts.get(row.deal_id)
        value = probability.source_value(fact.source if fact else None)
        before = _outcome(row)
        if before is None or before.values.get("source") == value:
            continue
        probability.add(delta, probability.contributions(before, order), sign=-1)
        row.values = {**row.values, "source": value}
        after = _outcome(row)
        if after is not None:
            probability.add(delta, probability.contributions(after, order))
    _apply(session, {k: (w, lo) for k, (w, lo) in delta.items()})


def facts_created(session: Session, events: Sequence[Any]) -> None:
    """``deals.deal_created`` events, in order: how each deal arrived (``source``), its
    planned close date, its client's kind and group when the event carries them."""
    for event in events:
        data = event.data
        record_facts(session, int(data["deal_id"]),
                     source=probability.source_of(data.get("source")),
                     client_kind=data.get("client_kind"),
                     client_group_id=data.get("client_group_id"))
        if data.get("planned_close_on"):
            set_planned_close(session, int(data["deal_id"]), day_of(data["planned_close_on"]),
                              int(data.get("version") or 1))


def facts_updated(session: Session, events: Sequence[Any]) -> None:
    """``deals.deal_updated`` events, in order: the probability set (or cleared) by hand,
    the planned close date (a newer version only), a new client kind or group."""
    for event in events:
        data, changes = event.data, event.data.get("changes") or {}
        deal_id = int(data["deal_id"])
        change = changes.get("probability")
        if change is not None:
            set_manual(session, deal_id, change.get("to"))
        planned = changes.get("planned_close_on")
        if planned is not None:
            to = planned.get("to") if isinstance(planned, dict) else None
            set_planned_close(session, deal_id, day_of(to), int(data.get("version") or 0))
        group = (changes.get("client_group_id") or {}).get("to", data.get("client_group_id"))
        kind = (changes.get("client_kind") or {}).get("to", data.get("client_kind"))
        record_facts(session, deal_id, client_kind=kind, client_group_id=group)


def load_model(session: Session) -> probability.Model:
    rows = session.execute(select(WinCount.model, WinCount.status, WinCount.feature,
                                  WinCount.value, WinCount.won, WinCount.lost)).all()
    return probability.Model({(m, s, f, v): (w, lo) for m, s, f, v, w, lo in rows})


def estimates(session: Session, deal_ids: Sequence[int], kinds: Mapping[str, str],
              now: datetime) -> dict[int, dict[str, Any]]:
    """The estimate of each deal asked: {deal_id: {percent, model, examples, factors
    [{feature, value, points}], reason}}; ``reason`` "too_little_history", "closed" or
    "unknown" (analytics has not heard of the deal) when ``percent`` is None."""
    ids = sorted({int(i) for i in deal_ids})
    if not ids:
        return {}
    states = session.scalars(select(DealState).where(DealState.deal_id.in_(ids))).all()
    found = estimate_states(session, states, kinds, now)
    return {i: found.get(i) or _empty("unknown") for i in ids}


def estimate_states(session: Session, states: Sequence[DealState], kinds: Mapping[str, str],
                    now: datetime) -> dict[int, dict[str, Any]]:
    """The estimates of deals of the read model (see ``estimates``)."""
    model = load_model(session)
    facts = _facts(session, [s.deal_id for s in states])
    clients = clients_dim.of(session, (s.client_id for s in states))
    answer: dict[int, dict[str, Any]] = {}
    for state in states:
        if state.status is None:
            answer[state.deal_id] = _empty("unknown")
            continue
        if kinds.get(state.status) != "open":
            answer[state.deal_id] = _empty("closed")
            continue
        fact = facts.get(state.deal_id)
        values = _features(state, fact, clients, created_at=state.created_at or now, at=now)
        found = model.estimate(state.status, state.type_id, values)
        answer[state.deal_id] = {"percent": found.percent, "model": found.model,
                                 "examples": found.examples, "reason": found.reason,
                                 "factors": [f._asdict() for f in found.factors],
                                 "manual": fact.manual_probability if fact else None,
                                 "planned_close_on": fact.planned_close_on if fact else None}
    return answer


def _empty(reason: str) -> dict[str, Any]:
    return {"percent": None, "model": "none", "examples": 0, "reason": reason, "factors": [],
            "manual": None, "planned_close_on": None}


def recount(session: Session, kinds: Mapping[str, str], order: Sequence[str]) -> int:
    """Recompute every count from scratch: first learn the closed deals of the funnel's
    read model that were never learnt (closed before this existed), then count every
    outcome again.  Returns how many outcomes were counted."""
    session.execute(text("LOCK TABLE win_counts IN SHARE ROW EXCLUSIVE MODE"))
    closed = [code for code, kind in kinds.items() if kind in ("won", "lost")]
    missing = session.execute(text(
        "SELECT d.deal_id, d.version, d.type_id, d.manager_id, d.client_id, d.status,"
        " d.amount,"
        " d.created_at, d.closed_at,"
        " (SELECT t.from_status FROM transitions t WHERE t.deal_id = d.deal_id"
        "  ORDER BY t.seq DESC LIMIT 1) AS from_status"
        " FROM deals d LEFT JOIN win_outcomes w ON w.deal_id = d.deal_id"
        " WHERE w.deal_id IS NULL AND d.status = ANY(:closed) AND d.closed_at IS NOT NULL"),
        {"closed": closed}).all()
    facts = _facts(session, [m.deal_id for m in missing])
    clients = clients_dim.of(session, (m.client_id for m in missing))
    new_rows = []
    for m in missing:
        fact = facts.get(m.deal_id)
        values = _features(m, fact, clients, created_at=m.created_at or m.closed_at,
                           at=m.closed_at)
        won = kinds.get(m.status) == "won"
        new_rows.append({"deal_id": m.deal_id, "version": m.version, "type_id": m.type_id,
                         "won": won, "values": values, "closed_at": m.closed_at,
                         "lost_at": (None if won or kinds.get(str(m.from_status)) != "open"
                                     else m.from_status)})
    for start in range(0, len(new_rows), 5000):
        session.execute(insert(WinOutcome).values(new_rows[start:start + 5000])
                        .on_conflict_do_nothing())
    outcomes = [o for o in (_outcome(r) for r in session.scalars(
        select(WinOutcome).where(WinOutcome.won.is_not(None)))) if o is not None]
    counts = probability.count(outcomes, order)
    session.execute(delete(WinCount))
    _apply(session, {k: (w, lo) for k, (w, lo) in counts.items()})
    return len(outcomes)


def claim_night(session: Session, day: date) -> bool:
    """True for the one replica that takes tonight's recount (the claim commits with it)."""
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext(:n))"),
                          {"n": REBUILD_LOCK}):
        return False
    claimed = session.execute(text(
        "INSERT INTO probability_rebuilds (day, outcomes) VALUES (:day, 0)"
        " ON CONFLICT DO NOTHING RETURNING day"), {"day": day}).first()
    return claimed is not None


def note_night(session: Session, day: date, outcomes: int) -> None:
    session.execute(text("UPDATE probability_rebuilds SET outcomes = :n, done_at = now()"
                         " WHERE day = :day"), {"n": outcomes, "day": day})


def open_estimates(session: Session, open_statuses: Sequence[str], now: datetime,
                   manager: int | None = None, managers: Sequence[int] | None = None
                   ) -> list[dict[str, Any]]:
    """Every open deal (of ``manager``, or of ``managers``) with its estimate in percent
    (None: too little history), the percent set by hand and the planned close date: the
    weighted pipeline's rows, read in one query (columns only, the facts and the client
    dimension joined) and estimated without the factors a page of deals shows."""
    clauses = ["d.status = ANY(:open)"]
    params: dict[str, Any] = {"open": list(open_statuses)}
    if manager is not None:
        clauses.append("d.manager_id = :manager")
        params["manager"] = manager
    if managers is not None:
        clauses.append("d.manager_id = ANY(:managers)")
        params["managers"] = list(managers)
    rows = session.execute(text(
        "SELECT d.deal_id, d.name, d.client_name, d.manager_id, d.type_id, d.status,"
        " d.amount, d.created_at, f.source, f.manual_probability, f.planned_close_on,"
        " COALESCE(c.kind, f.client_kind) AS client_kind,"
        " CASE WHEN c.client_id IS NOT NULL THEN c.client_group_id"
        "      ELSE f.client_group_id END AS client_group_id"
        " FROM deals d LEFT JOIN deal_facts f ON f.deal_id = d.deal_id"
        " LEFT JOIN client_group_members c ON c.client_id = d.client_id"
        " WHERE " + " AND ".join(clauses)), params).tuples().all()
    model = load_model(session)
    # the deals of a page share few distinct feature values: each estimate is worked out
    # once per distinct (status, values) and looked up for the rest
    known: dict[tuple[Any, ...], int | None] = {}
    out = []
    # plain tuples: a Row's attribute look-ups cost more than the estimate itself here
    for (deal_id, name, client_name, manager_id, type_id, status, amount, created_at,
         source, manual, planned, client_kind, client_group_id) in rows:
        values = probability.features(
            type_id=type_id, manager_id=manager_id, client_kind=client_kind,
            client_group_id=client_group_id, created_at=created_at or now, at=now,
            amount=amount, source=source)
        key = (status, type_id, *values.values())
        if key in known:
            percent = known[key]
        else:
            odds = model.log_odds(status, type_id, values)
            percent = known[key] = None if odds is None else probability.percent(odds)
        out.append({"deal_id": deal_id, "name": name, "client_name": client_name,
                    "manager_id": manager_id, "type_id": type_id, "amount": amount,
                    "created_at": created_at or now, "percent": percent,
                    "manual": manual, "planned_close_on": planned})
    return out


def typical_cycles(session: Session, won_statuses: Sequence[str]) -> dict[int | None, float]:
    """``forecast.typical_cycles`` computed in the database (one grouped median per type
    and one over every won deal) instead of reading every won deal's cycle."""
    rows = session.execute(text(
        "SELECT type_id, GROUPING(type_id) = 1 AS everyone, count(*),"
        " percentile_cont(0.5) WITHIN GROUP"
        "  (ORDER BY extract(epoch FROM closed_at - created_at) / 86400)"
        " FROM deals WHERE status = ANY(:won) AND closed_at IS NOT NULL"
        " AND created_at IS NOT NULL GROUP BY GROUPING SETS ((type_id), ())"),
        {"won": list(won_statuses)}).all()
    cycles: dict[int | None, float] = {}
    for type_id, everyone, count, days in rows:
        if everyone:
            if count >= forecast.MIN_CYCLE_DEALS:
                cycles[None] = float(days)
        elif type_id is not None and count >= forecast.MIN_CYCLE_DEALS:
            cycles[int(type_id)] = float(days)
    cycles.setdefault(None, forecast.DEFAULT_CYCLE_DAYS)
    return cycles
