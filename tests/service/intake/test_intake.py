"""The intake service with the real clients and deals services beside it, on a real
RabbitMQ virtual host and real PostgreSQL databases."""
from __future__ import annotations

from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text

from services.clients.service import ClientsService
from services.deals.service import DealsService
from services.intake.service import IntakeService
from services.kit.errors import Forbidden, ValidationError
from tests.support.infra import wait_until

CONSENT = "Я согласен на обработку персональных данных (152-ФЗ), версия для теста."


@pytest.fixture
def stack(start_service: Any, rpc: Any) -> Any:
    start_service(ClientsService)
    start_service(DealsService)
    start_service(IntakeService, DUPLICATES_TICK_SECONDS=0.2, ACCEPT_RETRY_SECONDS=0.5,
                  OVERDUE_TICK_SECONDS=0.2, INTAKE_SECRET="test-secret")
    return rpc


def make_form(rpc: Any, min_fill: int = 0) -> dict[str, Any]:
    return rpc.call("intake", "save_form", {
        "name": "Заявка с сайта", "consent_text": CONSENT, "min_fill_seconds": min_fill,
        "fields": [{"name": "name", "label": "Имя", "required": True},
                   {"name": "phone", "label": "Телефон", "type": "tel", "required": True},
                   {"name": "comment", "label": "Комментарий", "maps_to": "message"}]},
        user_id=1)


def person(rpc: Any, form: dict[str, Any], **values: Any) -> dict[str, Any]:
    token = rpc.call("intake", "public_form", form["public_id"])["token"]
    return rpc.call("intake", "submit_form", form["public_id"], {
        "token": token, "consent": True, "consent_version": form["consent_version"],
        "website": "", "page_url": "https://example.ru/contacts?utm_source=ya",
        "utm_source": "yandex", **values}, remote_addr="10.0.0.1")


def listed(rpc: Any) -> list[dict[str, Any]]:
    return rpc.call("intake", "list_leads", status=None)["items"]


def test_person_submission_is_listed_with_consent_text_and_utm(stack: Any) -> None:
    form = make_form(stack)
    assert person(stack, form, name="Ольга", phone="8 (916) 123-45-67",
                  comment="Нужен счёт") == {"status": "ok"}
    [lead] = listed(stack)
    assert (lead["source"], lead["name"], lead["phone_e164"]) == ("form", "Ольга",
                                                                  "+79161234567")
    assert lead["message"] == "Нужен счёт"
    assert lead["consent_text"] == CONSENT and lead["consent_version"] == 1
    assert lead["utm"] == {"utm_source": "yandex"}
    assert lead["page_url"].startswith("https://example.ru/contacts")


def test_bot_submissions_answer_ok_but_are_never_listed(stack: Any) -> None:
    form = make_form(stack, min_fill=30)
    public = form["public_id"]
    token = stack.call("intake", "public_form", public)["token"]
    base = {"name": "Bot", "phone": "+79160000000", "consent": True,
            "consent_version": 1}
    honeypot = stack.call("intake", "submit_form", public,
                          {**base, "token": token, "website": "http://spam"})
    too_fast = stack.call("intake", "submit_form", public, {**base, "token": token})
    forged = URLSafeTimedSerializer("not-our-secret", salt="intake.form").dumps(public)
    fake = stack.call("intake", "submit_form", public, {**base, "token": forged})
    assert honeypot == too_fast == fake == {"status": "ok"}
    assert listed(stack) == []
    assert stack.call("intake", "bench_counts") == {"form:hidden": 3}


def test_missing_consent_is_refused_naming_the_field_and_nothing_is_stored(stack: Any) -> None:
    form = make_form(stack)
    token = stack.call("intake", "public_form", form["public_id"])["token"]
    with pytest.raises(ValidationError) as refused:
        stack.call("intake", "submit_form", form["public_id"],
                   {"token": token, "name": "Ольга", "phone": "+79161234567"})
    assert refused.value.details["field"] == "consent"
    with pytest.raises(ValidationError) as bad_phone:
        person(stack, form, name="Ольга", phone="не телефон")
    assert bad_phone.value.details["field"] == "fields.phone"
    assert listed(stack) == []


def test_accepting_a_lead_whose_phone_matches_a_contact_attaches_to_that_client(
        stack: Any) -> None:
    client = stack.call("clients", "create_client", {
        "kind": "person", "name": "Пётр Ромашкин",
        "contacts": [{"name": "Пётр", "phones": ["+7 916 123-45-67"]}]}, user_id=1)
    form = make_form(stack)
    person(stack, form, name="Пётр", phone="89161234567", comment="Ещё партию")
    [lead] = listed(stack)
    found = wait_until(lambda: stack.call("intake", "get_lead", lead["id"])["duplicates"],
                       message="duplicates looked up")
    assert [(d["client_id"], d["reasons"][0]["reason"]) for d in found] == [
        (client["id"], "phone")]
    accepted = stack.call("intake", "accept_lead", lead["id"], user_id=1)
    assert accepted["status"] == "accepted" and accepted["client_id"] == client["id"]
    again = stack.call("intake", "accept_lead", lead["id"], user_id=1)
    assert again["deal_id"] == accepted["deal_id"]
    assert stack.call("clients", "search_clients", "")["total"] == 1
    deals = stack.call("deals", "list_deals", client_id=client["id"])
    assert [d["id"] for d in deals] == [accepted["deal_id"]]
    feed = stack.call("deals", "deal_page", accepted["deal_id"])["feed"]
    assert [(e["kind"], e["text"]) for e in feed] == [("lead", "Ещё партию")]


def test_accepting_a_new_person_creates_client_contact_and_deal(stack: Any) -> None:
    form = make_form(stack)
    person(stack, form, name="Анна Новая", phone="+7 903 555-44-33")
    [lead] = listed(stack)
    accepted = stack.call("intake", "accept_lead", lead["id"], user_id=1)
    client = stack.call("clients", "get_client", accepted["client_id"])
    assert client["contacts"][0]["phones"] == ["+79035554433"]
    deal = stack.call("deals", "get_deal", accepted["deal_id"])
    assert deal["client_id"] == client["id"]
    assert stack.call("intake", "list_leads")["items"] == []  # no longer new


def test_an_accepted_form_lead_gives_the_deal_its_source_and_utm_tags(
        stack: Any, spy: Any) -> None:
    accepted_events = spy("intake", "lead_accepted")
    form = make_form(stack)
    person(stack, form, name="Инна Меткова", phone="+7 903 111-22-33",
           utm_campaign="spring", referrer="https://ads.example/click?id=7")
    [lead] = listed(stack)
    assert lead["referrer"] == "https://ads.example/click?id=7"
    accepted = stack.call("intake", "accept_lead", lead["id"], user_id=1)
    detail = {"utm_source": "yandex", "utm_campaign": "spring",
              "page_url": "https://example.ru/contacts?utm_source=ya",
              "referrer": "https://ads.example/click?id=7", "form_id": str(form["id"]),
              "lead_id": str(lead["id"])}
    [event] = accepted_events.wait_for("lead_accepted")
    assert (event["data"]["source"], event["data"]["utm"], event["data"]["referrer"]) == (
        "form", {"utm_source": "yandex", "utm_campaign": "spring"},
        "https://ads.example/click?id=7")
    deal = stack.call("deals", "get_deal", accepted["deal_id"])
    assert (deal["source"], deal["source_detail"]) == ("web_form", detail)


def test_api_lead_is_idempotent_on_external_id_and_a_revoked_key_is_refused(
        stack: Any) -> None:
    key = stack.call("intake", "create_api_key", "Сайт-партнёр", user_id=1)
    data = {"external_id": "order-77", "name": "Иван", "email": "Ivan@Example.ru"}
    first = stack.call("intake", "submit_api_lead", key["key"], data)
    second = stack.call("intake", "submit_api_lead", key["key"], data)
    assert first["created"] and not second["created"] and first["id"] == second["id"]
    assert first["email"] == "ivan@example.ru"
    with pytest.raises(ValidationError) as bad:
        stack.call("intake", "submit_api_lead", key["key"], {"name": "Без связи"})
    assert bad.value.details["field"] == "phone"
    stack.call("intake", "revoke_api_key", key["id"], user_id=1)
    with pytest.raises(Forbidden):
        stack.call("intake", "submit_api_lead", key["key"], {**data, "external_id": "78"})
    assert len(listed(stack)) == 1


def test_leads_go_round_robin_to_the_duty_managers_and_late_ones_reach_the_head(
        stack: Any, spy: Any, session_of: Any) -> None:
    received, overdue = spy("intake", "lead_received"), spy("intake", "lead_overdue")
    stack.call("intake", "set_settings", {"duty_user_ids": [11, 12], "head_user_ids": [5],
                                          "response_minutes": 1})
    key = stack.call("intake", "create_api_key", "CRM-партнёр", user_id=1)
    for n in range(4):
        stack.call("intake", "submit_api_lead", key["key"], {"phone": f"+7916000000{n}"})
    assignees = sorted(lead["assignee_id"] for lead in listed(stack))
    assert assignees == [11, 11, 12, 12]
    assert {e["data"]["assignee_id"] for e in received.wait_for("lead_received", 4)} == {
        11, 12}
    late = min(lead["id"] for lead in listed(stack))
    with session_of("intake") as db:  # the clock ran out for one lead
        db.execute(text("UPDATE leads SET respond_by = now() - interval '1 minute' "
                        "WHERE id = :id"), {"id": late})
        db.commit()
    [event] = overdue.wait_for("lead_overdue")
    assert (event["data"]["lead_id"], event["data"]["head_ids"]) == (late, [5])


def test_mail_from_a_stranger_is_a_lead_and_a_reply_threads_into_the_deal(stack: Any) -> None:
    made = stack.call("intake", "receive_mail", {
        "message_id": "<first@mail.example>", "from": "buyer@shop.example",
        "from_name": "Покупатель", "subject": "Заказ", "text": "Хочу 10 штук",
        "html": "<p>Хочу <script>alert(1)</script>10 штук</p>", "headers": {}})
    assert made["outcome"] == "lead"
    lead = stack.call("intake", "get_lead", made["lead_id"])
    assert "<script>" not in lead["extra"]["html"]
    accepted = stack.call("intake", "accept_lead", lead["id"], user_id=1)
    reply = stack.call("intake", "receive_mail", {
        "message_id": "<second@mail.example>", "from": "other@shop.example",
        "subject": "Re: Заказ", "text": "И ещё 5", "in_reply_to": "<first@mail.example>"})
    assert reply == {"outcome": "feed", "deal_id": accepted["deal_id"]}
    auto = stack.call("intake", "receive_mail", {
        "message_id": "<away@x.example>", "from": "robot@x.example", "text": "I am away",
        "headers": {"Auto-Submitted": "auto-replied"}})
    assert auto == {"outcome": "auto_reply"}
    feed = stack.call("deals", "deal_page", accepted["deal_id"])["feed"]
    assert sorted(e["data"]["message_id"] for e in feed if e["kind"] == "email") == [
        "<first@mail.example>", "<second@mail.example>"]
    again = stack.call("intake", "receive_mail", {
        "message_id": "<second@mail.example>", "from": "other@shop.example", "text": "x"})
    assert again == {"outcome": "duplicate"}


def test_a_flood_from_one_sender_stops_making_leads(stack: Any, spy: Any) -> None:
    flood = spy("intake", "mail_flood")
    stack.call("intake", "set_settings", {"mail_flood_limit": 3, "admin_user_ids": [1]})
    outcomes = [stack.call("intake", "receive_mail", {
        "message_id": f"<m{n}@spam.example>", "from": "loud@spam.example",
        "text": "buy"})["outcome"] for n in range(5)]
    assert outcomes == ["lead", "lead", "lead", "flood", "flood"]
    assert flood.wait_for("mail_flood")[0]["data"]["sender"] == "loud@spam.example"


def test_an_unknown_inbound_call_becomes_an_inbox_entry_once(stack: Any, amqp_uri: str
                                                             ) -> None:
    from kombu import Connection, Producer

    from services.kit.envelope import Envelope
    from services.kit.messaging import event_exchange

    call = {"id": 501, "provider": "mango", "direction": "inbound", "contact_id": None,
            "other_number": "8 916 222-33-44", "other_e164": "+79162223344",
            "outcome": "missed"}
    envelope = Envelope.new("call_finished", call)
    known = Envelope.new("call_finished", {**call, "id": 502, "contact_id": 9})
    marker = Envelope.new("call_finished", {**call, "id": 503, "other_e164": "+79165556677"})
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.default_channel, exchange=event_exchange("telephony"))
        event_exchange("telephony")(producer.channel).declare()
        for body in (envelope, envelope, known, marker):
            producer.publish(body.to_dict(), routing_key="call_finished", serializer="json")
    leads = wait_until(lambda: len(listed(stack)) == 2 and listed(stack),
                       message="the calls' leads")
    assert sorted((x["source"], x["external_id"]) for x in leads) == [
        ("call", "501"), ("call", "503")]
    [first] = [x for x in leads if x["external_id"] == "501"]
    assert first["phone_e164"] == "+79162223344"


def test_a_questionnaire_from_someone_unknown_is_an_inbox_entry_once(stack: Any) -> None:
    data = {"name": "Мария", "email": "maria@new.example", "message": "Анкета заполнена"}
    first = stack.call("intake", "record_lead", "questionnaire", data, external_id="q-9",
                       source_name="Анкета поставщика")
    again = stack.call("intake", "record_lead", "questionnaire", data, external_id="q-9")
    assert first["created"] and not again["created"] and first["id"] == again["id"]
    assert [x["source_name"] for x in listed(stack)] == ["Анкета поставщика"]


def solve(question: str) -> str:
    """What a person reads and answers: "Сколько будет 7 плюс 4? …"."""
    words = question.split()
    a, op, b = int(words[2]), words[3], int(words[4].rstrip("?"))
    return str(a + b if op == "плюс" else a - b)


def test_after_repeated_failures_an_address_must_answer_a_captcha_once_per_question(
        stack: Any) -> None:
    stack.call("intake", "set_settings", {"captcha_after": 2})
    form = make_form(stack)
    public = form["public_id"]
    assert stack.call("intake", "public_form", public, remote_addr="10.0.0.1")[
        "captcha"] is None
    for _ in range(2):  # a bot's tries from this address (honeypot filled)
        person(stack, form, name="Бот", phone="+79160000000", website="http://spam")
    shown = stack.call("intake", "public_form", public, remote_addr="10.0.0.1")["captcha"]
    assert shown["question"].startswith("Сколько будет")
    # Another address is not bothered.
    assert stack.call("intake", "public_form", public, remote_addr="10.0.0.2")[
        "captcha"] is None
    with pytest.raises(ValidationError) as asked:
        person(stack, form, name="Ольга", phone="+79161234567")
    assert asked.value.details["field"] == "captcha"
    fresh = asked.value.details["params"]["captcha"]
    with pytest.raises(ValidationError) as wrong:
        person(stack, form, name="Ольга", phone="+79161234567",
               captcha_token=fresh["token"], captcha_answer="100")
    assert wrong.value.details["params"]["retry"] is True
    answered = {"captcha_token": fresh["token"], "captcha_answer": solve(fresh["question"])}
    assert person(stack, form, name="Ольга", phone="+79161234567", **answered) == {
        "status": "ok"}
    with pytest.raises(ValidationError) as replayed:  # the same solved question again
        person(stack, form, name="Ольга", phone="+79161234567", **answered)
    assert replayed.value.details["field"] == "captcha"
    forged = URLSafeTimedSerializer("not-our-secret", salt="intake.captcha").dumps(
        {"f": public, "n": "x", "h": "y"})
    with pytest.raises(ValidationError):
        person(stack, form, name="Ольга", phone="+79161234567", captcha_token=forged,
               captcha_answer="5")
    assert [lead["name"] for lead in listed(stack)] == ["Ольга"]


def test_captcha_can_be_turned_off(stack: Any) -> None:
    stack.call("intake", "set_settings", {"captcha_after": 0})
    form = make_form(stack)
    for _ in range(5):
        person(stack, form, name="Бот", phone="+79160000000", website="http://spam")
    assert person(stack, form, name="Ольга", phone="+79161234567") == {"status": "ok"}
