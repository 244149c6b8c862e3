"""Concurrent form submissions stored together (group commit): each stored once with its
own ``lead_received``, each caller answered for its own, a bad one sinking nobody; and the
batch insert storing exactly what the one-lead insert stores."""
from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import sessionmaker

from services.intake import domain, models, part, store
from services.intake.models import Lead
from services.intake.service import IntakeService
from services.kit.errors import NotFound, RemoteFailure, ValidationError, error_from_reply
from tests.service.intake.test_intake import CONSENT, solve
from tests.service.intake.test_intake import stack as stack  # noqa: F401 (a fixture)


@pytest.fixture
def intake(start_service: Any, rpc: Any) -> Any:
    start_service(IntakeService, INTAKE_SECRET="test-secret", DUPLICATES_TICK_SECONDS=60)
    return rpc


def _form(rpc: Any) -> tuple[dict[str, Any], str]:
    form = rpc.call("intake", "save_form", {
        "name": "Группа", "consent_text": CONSENT, "min_fill_seconds": 0,
        "assignee_ids": [11, 12, 13],
        "fields": [{"name": "name", "label": "Имя", "required": True},
                   {"name": "phone", "label": "Телефон", "type": "tel"}]}, user_id=1)
    return form, rpc.call("intake", "public_form", form["public_id"])["token"]


def test_concurrent_submissions_are_stored_together_each_once_with_its_event(
        intake: Any, session_of: Any) -> None:
    form, token = _form(intake)
    part.NEW_LEADS.clear()
    count = 40
    replies = [intake.call_async("intake", "submit_form", form["public_id"], {
        "token": token, "consent": True, "consent_version": 1, "name": f"Гость {i}",
        "phone": f"+7916000{i:04d}"}, remote_addr=f"10.1.0.{i}", timeout=30)
        for i in range(count)]
    assert [r.result(float("inf")) for r in replies] == [{"status": "ok"}] * count
    [group] = part.NEW_LEADS.values()
    assert group.batches < count  # shared, not one transaction each

    db = session_of("intake")
    leads = {lead.id: lead for lead in db.scalars(select(Lead))}
    assert sorted(lead.name for lead in leads.values()) == sorted(
        f"Гость {i}" for i in range(count))
    events = db.execute(text("SELECT data FROM outbox WHERE type = 'lead_received'")).all()
    assert sorted(int(e.data["lead_id"]) for e in events) == sorted(leads)
    for (data,) in events:
        lead = leads[int(data["lead_id"])]
        assert data["assignee_id"] == lead.assignee_id == [11, 12, 13][lead.id % 3]
        assert data["who"] == lead.name and data["source"] == "form"
        assert lead.respond_by - lead.received_at == timedelta(
            minutes=domain.DEFAULT_SETTINGS["response_minutes"])
        assert lead.consent_text == CONSENT and lead.status == "new"


def _provider(url: str) -> Any:
    engine = create_engine(url)
    return SimpleNamespace(factory=sessionmaker(bind=engine, expire_on_commit=False),
                           outbox=models.outbox, wake_relay=lambda: None, engine=engine)


def _row(i: int, **more: Any) -> dict[str, Any]:
    return {"source": "form", "source_ref": "1", "source_name": "Группа",
            "external_id": None, "name": f"Гость {i}", "phone": "", "email": "",
            "company": "", "inn": "", "message": "", "phone_e164": None,
            "hidden": False, "status": "new", "reject_reason": None,
            "consent_version": 1, "consent_text": CONSENT, "utm": {}, "extra": {},
            "pool": [5, 6], "respond_in": timedelta(minutes=15),
            "event": {"source": "form", "source_name": "Группа", "who": f"Гость {i}"},
            "call_id": f"call-{i}", **more}


def test_a_lead_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_stored(
        intake: Any, db_url: Any, session_of: Any) -> None:
    provider = _provider(db_url("intake"))
    rows = [_row(i) for i in range(5)]
    rows[2]["name"] = "NUL \x00 is no text"  # PostgreSQL refuses it: this row alone fails
    answers = part.store_new_leads(rows, provider)
    assert isinstance(answers[2], Exception)
    stored = [a for i, a in enumerate(answers) if i != 2]
    assert [a["who"] for a in stored] == [f"Гость {i}" for i in (0, 1, 3, 4)]
    db = session_of("intake")
    assert sorted(db.scalars(select(Lead.id))) == sorted(a["lead_id"] for a in stored)
    outbox = db.execute(text("SELECT data, call_id FROM outbox")).all()
    assert sorted((int(d["lead_id"]), c) for d, c in outbox) == sorted(
        (a["lead_id"], f"call-{i}") for i, a in zip((0, 1, 3, 4), stored, strict=True))
    provider.engine.dispose()


def test_the_batch_insert_stores_what_the_one_lead_insert_stores(
        intake: Any, db_url: Any) -> None:
    provider = _provider(db_url("intake"))
    rng = random.Random(7)
    rows = []
    for i in range(30):
        pool = rng.sample(range(1, 20), rng.randint(0, 4))
        rows.append({**_row(i, pool=pool, respond_in=domain.response_time(rng.randint(1, 90))),
                     "phone": rng.choice(["", "+7 916 555-00-11"]),
                     "utm": rng.choice([{}, {"utm_source": "ya"}]),
                     "extra": rng.choice([{}, {"Город": "Тверь"}]),
                     "page_url": rng.choice(["", "https://example.ru/?a=1"])})
    session = provider.factory()
    batch = store.insert_new_leads(session, [
        {k: v for k, v in r.items() if k not in ("event", "call_id")} for r in rows])
    singles = [store.insert_lead(session, {k: v for k, v in r.items()
                                           if k not in ("event", "call_id", "pool",
                                                        "respond_in")},
                                 r["pool"], r["respond_in"]) for r in rows]
    columns = [c.key for c in Lead.__table__.columns if c.key not in ("id", "received_at",
                                                                      "respond_by",
                                                                      "assignee_id")]

    def stored(lead_id: int) -> Lead:
        return session.get(Lead, lead_id, populate_existing=True)

    for row, made, single in zip(rows, batch, singles, strict=True):
        assert single is not None
        grouped, alone = stored(made["id"]), stored(single.id)
        assert {c: getattr(grouped, c) for c in columns} == \
            {c: getattr(alone, c) for c in columns}
        for lead in (grouped, alone):
            pool = row["pool"]
            assert lead.assignee_id == (pool[lead.id % len(pool)] if pool else None)
            assert lead.respond_by - lead.received_at == row["respond_in"]
        assert (made["assignee_id"], made["respond_by"]) == (grouped.assignee_id,
                                                             grouped.respond_by)
    session.rollback()
    session.close()
    provider.engine.dispose()


def test_an_error_in_one_submission_is_that_callers_own(intake: Any) -> None:
    form, token = _form(intake)
    good = [intake.call_async("intake", "submit_form", form["public_id"], {
        "token": token, "consent": True, "consent_version": 1, "name": f"Гость {i}",
        "phone": "+79160001122"}, remote_addr="10.2.0.1", timeout=30) for i in range(6)]
    bad = intake.call_async("intake", "submit_form", form["public_id"], {
        "token": token, "consent": True, "consent_version": 1, "name": "NUL \x00",
        "phone": "+79160001122"},
        remote_addr="10.2.0.2", timeout=30)
    assert [r.result(float("inf")) for r in good] == [{"status": "ok"}] * 6
    with pytest.raises(RemoteFailure, match="NUL"):
        bad.result(float("inf"))
    assert intake.call("intake", "bench_counts") == {"form": 6}


def test_rate_counters_counted_in_one_statement_count_as_if_one_after_another(
        intake: Any, db_url: Any) -> None:
    engine = create_engine(db_url("intake"))
    rng = random.Random(3)
    batched, alone = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    keys = [f"ip:10.0.0.{i}" for i in range(4)]
    store.counters([[(k, batched, True), (k, alone, True)] for k in keys[:2]], engine)
    asks = [[(k, rng.random() < 0.7) for k in rng.sample(keys, rng.randint(1, 3))]
            for _ in range(40)]
    together = store.counters([[(k, batched, add) for k, add in ask] for ask in asks], engine)
    one_by_one = [store.counters([[(k, alone, add) for k, add in ask if add]], engine)[0]
                  for ask in asks]
    for ask, mine, serial in zip(asks, together, one_by_one, strict=True):
        for key, add in ask:
            if add:  # the n-th hit in the batch is the n-th hit one after another
                assert mine[(key, batched)] == serial[(key, alone)]
            else:  # a read sees the row as the batch found it
                assert mine[(key, batched)] == (1 if key in keys[:2] else 0)
    engine.dispose()


def test_the_failure_count_and_the_rate_hits_in_one_statement_are_what_two_give(
        intake: Any, db_url: Any) -> None:
    engine = create_engine(db_url("intake"))
    db = SimpleNamespace(provider=SimpleNamespace(engine=engine))
    rng = random.Random(5)
    for _ in range(30):  # the same steps on two sets of keys: one way, then the other
        fail, keys = rng.choice(["a", "b"]), rng.sample(["ip", "form", "x"], rng.randint(0, 3))
        if rng.random() < 0.3:
            store.hits(db, [f"one:fail:{fail}", f"two:fail:{fail}"], domain.CAPTCHA_WINDOW)
        failures, hits, _ = store.count_and_hit(db, f"one:fail:{fail}", domain.CAPTCHA_WINDOW,
                                                [f"one:{k}" for k in keys], 60)
        alone = store.count(db, f"two:fail:{fail}", domain.CAPTCHA_WINDOW)
        separately = store.hits(db, [f"two:{k}" for k in keys], 60) if keys else {}
        assert failures == alone
        assert {k.removeprefix("one:"): n for k, n in hits.items()} == {
            k.removeprefix("two:"): n for k, n in separately.items()}
    engine.dispose()


def test_a_submission_asked_for_a_captcha_is_not_counted_against_the_rate_limits(
        intake: Any) -> None:
    intake.call("intake", "set_settings", {"captcha_after": 1, "form_ip_per_minute": 2})
    form, token = _form(intake)
    person = {"token": token, "consent": True, "consent_version": form["consent_version"],
              "name": "Ольга", "phone": "+79161234567"}
    with pytest.raises(ValidationError) as refused:  # a person's mistake: one failure
        intake.call("intake", "submit_form", form["public_id"], {**person, "consent": False},
                    remote_addr="10.3.0.1")
    assert refused.value.details["field"] == "consent"
    for _ in range(3):  # asked for the captcha, not answered: not a rate hit
        with pytest.raises(ValidationError) as asked:
            intake.call("intake", "submit_form", form["public_id"], person,
                        remote_addr="10.3.0.1")
        assert asked.value.details["field"] == "captcha"
    question = asked.value.details["params"]["captcha"]
    answered = {"captcha_token": question["token"],
                "captcha_answer": solve(question["question"])}
    # two hits of this address in the minute (the refused consent, this one): within 2
    assert intake.call("intake", "submit_form", form["public_id"], {**person, **answered},
                       remote_addr="10.3.0.1") == {"status": "ok"}
    assert intake.call("intake", "bench_counts") == {"form": 1}  # none hidden as ip_rate


def test_concurrent_mail_senders_are_looked_up_together_each_message_with_its_outcome(
        stack: Any) -> None:
    first = stack.call("intake", "receive_mail", {
        "message_id": "<known-0@shop.example>", "from": "known@shop.example",
        "subject": "Заказ", "text": "Хочу 10 штук", "headers": {}})
    deal_id = stack.call("intake", "accept_lead", first["lead_id"], user_id=1)["deal_id"]
    part.SENDER_MATCHES.clear()
    senders = ["known@shop.example" if i % 3 == 0 else f"stranger-{i}@mail.example"
               for i in range(12)]
    replies = [stack.call_async("intake", "receive_mail", {
        "message_id": f"<batch-{i}@mail.example>", "from": sender, "subject": f"№{i}",
        "text": "Ещё", "headers": {}}, timeout=30) for i, sender in enumerate(senders)]
    outcomes = [r.result(float("inf")) for r in replies]
    for sender, outcome in zip(senders, outcomes, strict=True):
        if sender.startswith("known"):
            assert outcome == {"outcome": "feed", "deal_id": deal_id}
        else:
            assert outcome["outcome"] == "lead"
    leads = {o["lead_id"] for o in outcomes if o["outcome"] == "lead"}
    assert len(leads) == 8
    [group] = part.SENDER_MATCHES.values()
    assert group.batches < len(senders)


def test_one_message_delivered_twice_at_once_is_one_lead(stack: Any) -> None:
    mail = {"message_id": "<twice@mail.example>", "from": "twice@mail.example",
            "subject": "Дважды", "text": "Одно письмо", "headers": {}}
    replies = [stack.call_async("intake", "receive_mail", mail, timeout=30) for _ in range(4)]
    outcomes = [r.result(float("inf"))["outcome"] for r in replies]
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "lead"]
    assert stack.call("intake", "bench_counts") == {"email": 1}


def test_a_batch_of_submissions_answers_each_as_submit_form_would(
        intake: Any, session_of: Any) -> None:
    """``submit_forms`` (the gateway's batch): each item judged alone, in order — a
    person's lead stored with its event, a mistake answered with its own error (and
    counted as that address's failure), a bot answered "ok" and kept hidden, an unknown
    form not found — and none of them sinks another."""
    form, token = _form(intake)
    person = {"token": token, "consent": True, "consent_version": 1, "name": "Гость",
              "phone": "+79160001122"}
    items = [
        {"public_id": form["public_id"], "values": person, "remote_addr": "10.3.0.1"},
        {"public_id": form["public_id"], "values": {**person, "consent": False},
         "remote_addr": "10.3.0.2"},
        {"public_id": form["public_id"], "values": {**person, "website": "http://spam"},
         "remote_addr": "10.3.0.3"},
        {"public_id": "no-such-form", "values": person, "remote_addr": "10.3.0.4"},
        {"public_id": form["public_id"], "values": {**person, "name": "NUL \x00"},
         "remote_addr": "10.3.0.5"},
        "not an item",
        {"public_id": form["public_id"], "values": {**person, "name": "Второй"},
         "remote_addr": "10.3.0.1"},
    ]
    answers = intake.call("intake", "submit_forms", items, timeout=30)
    assert [a.get("result") for a in answers] == [
        {"status": "ok"}, None, {"status": "ok"}, None, None, None, {"status": "ok"}]
    errors = [error_from_reply(a["error"]) if a.get("error") else None for a in answers]
    assert isinstance(errors[1], ValidationError) and errors[1].field == "consent"
    assert isinstance(errors[3], NotFound)
    assert isinstance(errors[4], RemoteFailure)  # a bug's 500 is that caller's alone
    assert isinstance(errors[5], ValidationError) and errors[5].field == "items"

    db = session_of("intake")
    visible = db.execute(select(Lead.name, Lead.hidden)).all()
    assert sorted(visible) == [("", True), ("Второй", False), ("Гость", False)]
    events = db.execute(text("SELECT data FROM outbox WHERE type = 'lead_received'")).all()
    assert sorted(e.data["who"] for e in events) == ["Второй", "Гость"]
    # the refused person's mistake counts towards the captcha like submit_form's does
    assert store.count(SimpleNamespace(provider=SimpleNamespace(engine=db.get_bind())),
                       f"fail:{form['id']}:10.3.0.2", domain.CAPTCHA_WINDOW) == 1


def test_an_empty_or_malformed_batch_is_refused_naming_the_field(intake: Any) -> None:
    for items in ([], "junk"):
        with pytest.raises(ValidationError) as refused:
            intake.call("intake", "submit_forms", items)
        assert refused.value.field == "items"


def test_a_burst_of_leads_gets_its_duplicates_within_a_tick_or_two(
        start_service: Any, rpc: Any, session_of: Any) -> None:
    """A burst of website submissions: every lead's duplicates looked up within about
    one tick, a batch after another (at one batch of 50 a tick, 450 leads took nine)."""
    from services.clients.service import ClientsService

    start_service(ClientsService)
    start_service(IntakeService, INTAKE_SECRET="test-secret", DUPLICATES_TICK_SECONDS=1)
    form, token = _form(rpc)
    for start in range(0, 450, 90):
        answers = rpc.call("intake", "submit_forms", [
            {"public_id": form["public_id"], "remote_addr": f"10.4.{i // 200}.{i % 200}",
             "values": {"token": token, "consent": True, "consent_version": 1,
                        "name": f"Гость {i}", "phone": f"+7916{i:07d}"}}
            for i in range(start, start + 90)], timeout=30)
        assert all(a.get("result") == {"status": "ok"} for a in answers), answers
    db = session_of("intake")

    def pending() -> int:
        db.rollback()
        return int(db.scalar(select(func.count()).select_from(Lead)
                             .where(Lead.duplicates.is_(None))) or 0)

    deadline = time.monotonic() + 3.5  # one tick's wait, its work, and a tick's slack
    while pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pending() == 0
    assert db.scalar(select(func.count()).select_from(Lead)) == 450

