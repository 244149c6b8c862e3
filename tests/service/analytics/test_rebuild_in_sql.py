"""The rebuild replays a page of the deals' history in SQL (``rebuild_store.rebuild_page``):
on generated histories with every odd case ``domain.replay`` knows (back and forth,
same-moment runs in any order, a loss reason before its status, a type change with the
new process's first stage, runs holding one field twice, managers, clients and amounts
changing, NULLs), it writes exactly the transitions and deals' rows that the Python
replay writes (``replay_page``), with the summaries ``domain.summed`` gives."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, text

from services.analytics import domain, rebuild_store, store
from services.analytics.models import DealState, Transition

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KINDS = {"new": "open", "talks": "open", "proposal": "open", "won": "won", "lost": "lost"}
STAGES = ["brief", "design", "build", None]
REASONS = ["Цена", "Нет бюджета", None]
DEAL_COLUMNS = ("id", "name", "client_id", "client_name", "manager_id", "type_id", "status",
                "stage", "amount", "currency", "created_at", "closed_at", "version",
                "loss_reason_id", "loss_reason", "history_count")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _change(now: dict[str, Any], history: list[dict[str, Any]], field: str, new: Any,
            moment: datetime) -> None:
    history.append({"field": field, "old_value": now.get(field), "new_value": new,
                    "changed_at": _iso(moment)})
    if field in now:
        now[field] = new


def generated(seed: int, count: int, first_id: int = 1) -> list[dict[str, Any]]:
    """Deals as ``history_columns`` tells them (one dict each, history oldest first)."""
    rng = random.Random(seed)
    deals = []
    for deal_id in range(first_id, first_id + count):
        now = {"status": rng.choice(["new", "talks"]), "stage": rng.choice(STAGES),
               "manager_id": rng.choice(["7", "8", None]), "type_id": rng.choice(["1", None]),
               "client_id": rng.choice(["501", "502"]),
               "amount": rng.choice(["1000.00", "250.50", "0.00"])}
        created = at = T0 + timedelta(minutes=rng.randrange(10_000),
                                      microseconds=rng.choice([0, 0, 250_000, 123_457]))
        history: list[dict[str, Any]] = []
        change = partial(_change, now, history)
        for _ in range(rng.randrange(0, 9)):
            at += timedelta(hours=rng.choice([0, 1, 5, 30]), seconds=rng.randrange(60))
            kind = rng.randrange(12)
            status = rng.choice(list(KINDS))
            if kind == 0:  # status with its loss reason after it, same moment
                change("status", status, at)
                change("loss_reason", rng.choice(REASONS), at)
            elif kind == 1:  # a loss reason before the status, same moment (dropped)
                change("loss_reason", rng.choice(REASONS), at)
                change("status", status, at)
            elif kind == 2:  # status and stage in one run, either order
                pair = [("status", status), ("stage", rng.choice(STAGES))]
                rng.shuffle(pair)
                for field, value in pair:
                    change(field, value, at)
            elif kind == 3:  # a new type: its process's first stage at the same moment
                change("type_id", rng.choice(["1", "2", None]), at)
                change("stage", rng.choice(STAGES), at)
                if rng.random() < 0.3:
                    change("status", status, at)
            elif kind == 4:  # a stage alone
                change("stage", rng.choice(STAGES), at)
            elif kind == 5:  # a run holding one field twice (replayed in Python)
                change("status", status, at)
                twice = rng.choice(["status", "loss_reason", "stage"])
                change(twice, rng.choice(["won", "lost"] if twice == "status"
                                         else [*REASONS, *STAGES]), at)
                change("status", rng.choice(list(KINDS)), at)
            elif kind == 6:
                change("manager_id", rng.choice(["7", "8", "9", None]), at)
            elif kind == 7:
                change("client_id", rng.choice(["501", "502", "503"]), at)
            elif kind == 8:
                change("amount", rng.choice(["1500.00", "99.99", "", None]), at)
            elif kind == 9:  # a loss reason alone (dropped)
                change("loss_reason", rng.choice(REASONS), at)
            else:  # back and forth
                change("status", status, at)
                at += timedelta(minutes=rng.randrange(1, 90))
                change("status", rng.choice(list(KINDS)), at)
            if rng.random() < 0.15:  # a manager or amount change inside the same moment
                field = rng.choice(["manager_id", "amount"])
                change(field, "7" if field == "manager_id" else "10.00", at)
        closed = KINDS[now["status"]] != "open"
        deals.append({
            "id": deal_id, "name": rng.choice([f"Сделка\t{deal_id}", "", None]),
            "client_id": int(now["client_id"]) if now["client_id"] else None,
            "client_name": rng.choice(["ООО «Альфа»", None]),
            "manager_id": int(now["manager_id"]) if now["manager_id"] else None,
            "type_id": int(now["type_id"]) if now["type_id"] else None,
            "status": now["status"], "stage": now["stage"],
            "amount": now["amount"] or "0.00", "currency": "RUB",
            "created_at": _iso(created), "closed_at": _iso(at) if closed else None,
            "version": len(history) + 1 + rng.randrange(3), "loss_reason_id": None,
            "loss_reason": rng.choice(REASONS) if now["status"] == "lost" else None,
            "history": history})
    return deals


def page_of(deals: list[dict[str, Any]]) -> dict[str, Any]:
    """The same deals in ``history_columns``' columns."""
    columns: dict[str, list[Any]] = {name: [] for name in DEAL_COLUMNS}
    history: dict[str, list[Any]] = {n: [] for n in ("field", "old_value", "new_value",
                                                     "changed_at")}
    for deal in deals:
        for name in DEAL_COLUMNS[:-1]:
            columns[name].append(deal[name])
        columns["history_count"].append(len(deal["history"]))
        for change in deal["history"]:
            for name in history:
                history[name].append(change[name])
    return {"deals": columns, "history": history, "next_after": None}


def written(session: Any) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    with session.begin():
        moves = [tuple(r) for r in session.execute(
            select(*Transition.__table__.columns).order_by(Transition.deal_id, Transition.seq))]
        deals = [{c.name: getattr(d, c.name) for c in DealState.__table__.columns
                  if c.name != "updated_at"}
                 for d in session.scalars(select(DealState).order_by(DealState.deal_id))]
    return moves, deals


def _cleared(session: Any) -> None:
    with session.begin():
        session.execute(text("TRUNCATE transitions, deals"))


def _sql_rebuild(session: Any, pages: list[list[dict[str, Any]]]) -> None:
    for page in pages:
        with session.begin():
            rebuild_store.rebuild_page(session, page_of(page), KINDS)


def _python_rebuild(session: Any, pages: list[list[dict[str, Any]]]) -> None:
    for page in pages:
        with session.begin():
            rebuild_store.replay_page(session, domain.page_deals(page_of(page)), KINDS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_replay_writes_the_rows_the_python_replay_writes(session_of, seed):
    _same_rows_both_ways(session_of("analytics"), generated(seed, 120))


def status_changes_only(seed: int, count: int) -> list[dict[str, Any]]:
    """Deals whose history is status changes alone (what most deals' is): none, one or
    many, back and forth, some created in another status than "new", a change recorded
    with a wrong status before it, and now and then two in a row at one moment (a run: not
    a plain deal)."""
    rng = random.Random(seed)
    deals = generated(seed, count)
    for deal in deals:
        at = datetime.fromisoformat(deal["created_at"])
        status = "talks" if rng.random() < 0.25 else "new"
        history = []
        for _ in range(rng.choice([0, 1, 2, 3, 5, 8])):
            if rng.random() > 0.1:
                at += timedelta(hours=rng.choice([1, 5, 30]), seconds=rng.randrange(60))
            after = rng.choice([c for c in KINDS if c != status])
            # now and then a change recorded with another status before it than the last
            # change set (the replay goes by the changes, not by what each one recorded)
            recorded = "proposal" if history and rng.random() < 0.1 else status
            history.append({"field": "status", "old_value": recorded, "new_value": after,
                            "changed_at": _iso(at)})
            status = after
        deal.update(history=history, status=status or "new",
                    version=len(history) + 1 + rng.randrange(2))
    return deals


def test_deals_with_status_changes_only_are_moved_as_the_others(session_of):
    """Most deals' history is status changes alone, which the rebuild moves without the
    runs' statement (``_plain_split``): the rows equal the Python replay's, and the
    split is what it says (a run of one moment is not plain)."""
    deals = status_changes_only(6, 150)
    page = page_of(deals)
    plain, steps, others = rebuild_store._plain_split(page["deals"], page["history"])
    runs = {d["id"] for d in deals if any(
        a["changed_at"] == b["changed_at"] for a, b in zip(d["history"], d["history"][1:],
                                                       strict=False))}
    assert set(plain[0]) == {d["id"] for d in deals} - runs and runs
    assert set(others[0]) == runs
    assert any(not d["history"] for d in deals if d["id"] in plain[0])
    assert any(d["history"] and d["history"][0]["old_value"] == "talks" for d in deals
               if d["id"] in plain[0])
    assert len(steps[0]) == sum(len(d["history"]) for d in deals if d["id"] in plain[0])
    _same_rows_both_ways(session_of("analytics"), deals)


def _same_rows_both_ways(session: Any, deals: list[dict[str, Any]]) -> None:
    pages = [deals[i:i + 25] for i in range(0, len(deals), 25)]
    _sql_rebuild(session, pages)
    in_sql = written(session)
    _sql_rebuild(session, pages)  # again, over the rows it wrote: the same rows
    assert written(session) == in_sql
    _cleared(session)
    _python_rebuild(session, pages)
    in_python = written(session)
    assert len(in_sql[0]) > 2 * len(deals)
    assert in_sql[0] == in_python[0]
    assert in_sql[1] == in_python[1]
    # the rebuild's own summing up (from the staged moves) writes what the live
    # projection's (``store.SUMMARIZE_ALL``, from the transitions) writes, to the bit
    assert any(len(set(row["path"])) < len(row["path"]) for row in in_sql[1])
    with session.begin():
        session.execute(text(store.SUMMARIZE_ALL))
    assert written(session) == in_python
    # the summaries are those ``domain.summed`` makes of ``domain.replay``'s moves
    replayed = {d["id"]: domain.replay(d) for d in domain.page_deals(page_of(deals))}
    for row in in_sql[1]:
        moves = replayed[row["deal_id"]]
        expected = domain.summed([(m["to_status"], datetime.fromisoformat(str(m["at"])),
                                   m["loss_reason"]) for m in moves])
        got = domain.Summed(row["path"], row["seconds_codes"], row["seconds_values"],
                            row["last_at"], row["last_loss_reason"])
        assert got._replace(seconds_values=[]) == expected._replace(seconds_values=[])
        assert got.seconds_values == pytest.approx(expected.seconds_values, abs=1e-6)
        assert row["entered_at"] == expected.last_at


def test_the_generated_histories_hold_every_odd_case():
    """The equality above means something only if the cases are there."""
    deals = generated(1, 120)
    runs = [(d["id"], [h["field"] for h in d["history"]]) for d in deals]
    assert any(f[i:i + 2] == ["loss_reason", "status"] for _, f in runs for i in range(len(f)))
    assert any(f[i:i + 2] == ["type_id", "stage"] for _, f in runs for i in range(len(f)))
    assert any(f[i:i + 3] == ["status", "status", "status"] for _, f in runs
               for i in range(len(f)))
    assert any(h["new_value"] is None for d in deals for h in d["history"]
               if h["field"] == "stage")


def test_only_the_odd_deals_are_replayed_in_python(session_of, monkeypatch):
    """Deals whose runs hold no field twice are replayed by the SQL alone."""
    deals = generated(4, 60)
    asked: list[int] = []
    real = rebuild_store.replayed_moves

    def spying(chosen: Any) -> list[tuple[Any, ...]]:
        chosen = list(chosen)
        asked.extend(int(d["id"]) for d in chosen)
        return real(chosen)

    monkeypatch.setattr(rebuild_store, "replayed_moves", spying)
    session = session_of("analytics")
    _sql_rebuild(session, [deals])
    assert sorted(asked) == [d["id"] for d in deals if _holds_a_field_twice(d)]
    assert 0 < len(asked) < len(deals) / 2


def _holds_a_field_twice(deal: dict[str, Any]) -> bool:
    """A run (consecutive status/stage/loss reason changes of one moment) with a field
    twice."""
    run: list[dict[str, Any]] = []
    for change in deal["history"]:
        if change["field"] not in ("status", "stage", "loss_reason"):
            run = []
            continue
        if run and run[-1]["changed_at"] != change["changed_at"]:
            run = []
        if change["field"] in {c["field"] for c in run}:
            return True
        run.append(change)
    return False


@pytest.mark.parametrize("unseen", [False, True])
def test_moves_arriving_meanwhile_are_kept_and_summed_up(session_of, monkeypatch, unseen):
    """A live move above the page's version stays, and the summary counts it; also when
    the deal's row came after the page looked for rows (``unseen``): the plain insert
    finds it and the page is upserted instead."""
    if unseen:
        monkeypatch.setattr(rebuild_store, "_ANY_ROW", text("SELECT false"))
    deal = {"id": 1, "name": "Сделка", "client_id": 501, "client_name": "", "manager_id": 7,
            "type_id": None, "status": "talks", "stage": None, "amount": "100.00",
            "currency": "RUB", "created_at": _iso(T0), "closed_at": None, "version": 2,
            "loss_reason_id": None, "loss_reason": None,
            "history": [{"field": "status", "old_value": "new", "new_value": "talks",
                         "changed_at": _iso(T0 + timedelta(hours=1))}]}
    session = session_of("analytics")
    with session.begin():
        session.execute(text(
            "INSERT INTO deals (deal_id, version, rebuilt_version, name, client_name, status,"
            " amount, currency) VALUES (1, 3, 0, 'Сделка', '', 'won', 100, 'RUB')"))
        session.execute(text(
            "INSERT INTO transitions (deal_id, seq, from_status, to_status, at, amount)"
            " VALUES (1, 3, 'talks', 'won', :at, 100)"), {"at": T0 + timedelta(hours=3)})
    _sql_rebuild(session, [[deal]])
    moves, rows = written(session)
    assert [m[1] for m in moves] == [1, 2, 3]
    assert rows[0]["status"] == "won" and rows[0]["rebuilt_version"] == 2
    assert rows[0]["path"] == ["new", "talks", "won"]
    assert rows[0]["seconds_values"] == [3600.0, 7200.0, 0.0]
    assert rows[0]["amount"] == Decimal("100.00") and rows[0]["version"] == 3


def counted(session: Any) -> list[tuple[Any, ...]]:
    """What the triggers keep (the counts with the moves not folded yet)."""
    return [tuple(r) for r in session.execute(text(
        "SELECT status, stage, manager_key, type_key, sum(deals), sum(amount)"
        " FROM (SELECT * FROM deal_counts UNION ALL SELECT * FROM deal_count_moves) AS c"
        " GROUP BY 1, 2, 3, 4 HAVING sum(deals) <> 0 OR sum(amount) <> 0 ORDER BY 1, 2, 3, 4"))]


def counted_from_the_deals(session: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in session.execute(text(
        "SELECT coalesce(status, ''), coalesce(stage, ''), coalesce(manager_id, -1),"
        " coalesce(type_id, -1), count(*), sum(amount) FROM deals GROUP BY 1, 2, 3, 4"
        " ORDER BY 1, 2, 3, 4"))]


def test_the_counts_and_client_groups_after_a_rebuild_are_the_deals_own(session_of):
    """The insert triggers run once per statement (a page's deals at once): the counts
    they keep equal the deals counted, after a first rebuild (plain inserts), live
    moves, a second rebuild over the rows (upserts) and folds midway; a deal takes its
    client's group when inserted, and a client moving group moves its deals."""
    deals = generated(5, 90)
    pages = [deals[i:i + 30] for i in range(0, len(deals), 30)]
    session = session_of("analytics")
    with session.begin():
        session.execute(text("INSERT INTO client_group_members (client_id, client_group_id,"
                             " version) VALUES (501, 77, 1)"))
    _sql_rebuild(session, pages[:2])
    with session.begin():
        store.compact_counts(session)
    _sql_rebuild(session, pages[2:])
    with session.begin():
        assert counted(session) == counted_from_the_deals(session)
        groups = dict(session.execute(text("SELECT deal_id, client_group_id FROM deals")).all())
    assert {groups[d["id"]] for d in deals if d["client_id"] == 501} == {77}
    assert {groups[d["id"]] for d in deals if d["client_id"] != 501} == {None}
    # live events: a deal created (the projection's insert), others moved and reassigned
    with session.begin():
        store.deal_created(session, {
            "deal_id": 1000, "client_id": 501, "manager_id": 9, "type_id": None,
            "amount": "10.00", "name": "Новая", "status": "new", "stage": None,
            "version": 1, "created_at": _iso(T0)}, _iso(T0))
        for deal in deals[:20]:
            store.status_changed(session, {
                "deal_id": deal["id"], "client_id": 502, "manager_id": 9, "type_id": None,
                "amount": "5.00", "from_status": deal["status"], "to_status": "won",
                "to_status_kind": "won", "from_stage": None, "to_stage": None,
                "version": deal["version"] + 1, "changed_at": _iso(T0 + timedelta(days=30)),
                "loss_reason": None}, _iso(T0 + timedelta(days=30)))
        assert counted(session) == counted_from_the_deals(session)
        store.compact_counts(session)
    _sql_rebuild(session, pages)
    with session.begin():
        assert counted(session) == counted_from_the_deals(session)
        store.compact_counts(session)
        assert counted(session) == counted_from_the_deals(session)
        assert session.execute(text("SELECT count(*) FROM deal_count_moves")).scalar() == 0
        groups = dict(session.execute(text("SELECT deal_id, client_group_id FROM deals")).all())
        assert groups[1000] == 77
        assert {groups[d["id"]] for d in deals[:20]} == {None}  # moved to client 502
        # a group written by hand is the client's all the same; a client's move moves it
        session.execute(text(
            "INSERT INTO deals (deal_id, version, rebuilt_version, name, client_id,"
            " client_name, status, amount, currency, client_group_id) VALUES"
            " (1001, 1, 0, '', 501, '', 'new', 1, 'RUB', 5),"
            " (1002, 1, 0, '', 503, '', 'new', 1, 'RUB', 5)"))
        session.execute(text("UPDATE client_group_members SET client_group_id = 78, version = 2"
                             " WHERE client_id = 501"))
        groups = dict(session.execute(text("SELECT deal_id, client_group_id FROM deals")).all())
        assert groups[1001] == 78 and groups[1002] is None and groups[1000] == 78
        assert counted(session) == counted_from_the_deals(session)


def _index_names(session: Any) -> set[str]:
    with session.begin():
        return set(session.execute(text(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('deals', 'transitions')"
            " AND indexname NOT LIKE 'pk_%'")).scalars())


def _deals_service(deals: list[dict[str, Any]], during: Any) -> Any:
    """``call`` as the deals service answers the rebuild: ``during(after)`` is called as each
    page is asked."""
    def call(service: str, method: str, **kwargs: Any) -> Any:
        assert service == "deals"
        if method == "list_statuses":
            return [{"code": code, "kind": kind} for code, kind in KINDS.items()]
        assert method == "history_columns"
        after, limit = kwargs["after"] or 0, kwargs["limit"]
        during(after)
        chosen = [d for d in deals if d["id"] > after][:limit]
        page = page_of(chosen)
        page["next_after"] = chosen[-1]["id"] if len(chosen) == limit else None
        return page
    return call


def test_a_rebuild_from_empty_builds_the_indexes_at_its_end_and_always_leaves_them(session_of):
    """From an empty read model the secondary indexes are built after the last page (the
    rows are those of a rebuild with them); a rebuild over rows keeps them throughout; one
    that fails midway puts them back, and so does the next one after a kill."""
    from sqlalchemy.orm import sessionmaker

    from services.analytics import rebuild

    session = session_of("analytics")
    factory = sessionmaker(bind=session.get_bind())
    every = {str(index.name) for index in rebuild_store.DEFERRED_INDEXES}
    assert every >= {"ix_transitions_at", "ix_deals_client", "ix_deals_created"}
    assert _index_names(session) >= every
    deals = generated(4, 60)
    seen: list[set[str]] = []
    watch = _deals_service(deals, lambda after: seen.append(_index_names(session)))

    assert rebuild.rebuild(watch, factory, page=20) == 60
    assert seen and not any(names & every for names in seen)  # none while the pages came
    assert _index_names(session) >= every
    bulk = written(session)
    _cleared(session)
    _sql_rebuild(session, [deals[:20], deals[20:40], deals[40:]])
    assert written(session)[0] == bulk[0]
    assert [{k: v for k, v in d.items() if k != "rebuilt_version"} for d in written(session)[1]] \
        == [{k: v for k, v in d.items() if k != "rebuilt_version"} for d in bulk[1]]

    seen.clear()
    assert rebuild.rebuild(watch, factory, page=20) == 60  # over the rows: kept
    assert all(names >= every for names in seen)

    def broken(after: int) -> None:
        if after:
            raise RuntimeError("the deals service went away")

    _cleared(session)
    with pytest.raises(RuntimeError):
        rebuild.rebuild(_deals_service(deals, broken), factory, page=20)
    assert _index_names(session) >= every

    rebuild_store.defer_indexes(factory)  # as a rebuild killed midway leaves them
    assert not _index_names(session) & every
    assert rebuild.rebuild(watch, factory, page=20) == 60
    assert _index_names(session) >= every
