"""The inbox's pure rules: a lead's details, a form's description, bots, round robin,
auto-replies and threading, and reading one message."""
from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from services.intake import domain
from services.intake.mail import POLICY, MalformedMail, parse
from services.kit.errors import ValidationError


def test_a_phone_in_any_format_becomes_e164() -> None:
    assert domain.to_e164("8 (916) 123-45-67") == "+79161234567"
    assert domain.to_e164("+7 916 1234567") == "+79161234567"
    assert domain.to_e164("позвоните") is None


def test_a_lead_needs_a_way_to_answer_and_errors_name_the_field_as_sent() -> None:
    with pytest.raises(ValidationError) as none:
        domain.clean_lead({"name": "Ольга"}, prefix="fields.")
    assert none.value.details["field"] == "fields.phone"
    assert none.value.details["key"] == "lead.no_contact"
    with pytest.raises(ValidationError) as mail:
        domain.clean_lead({"email": "not-an-address"})
    assert mail.value.details["field"] == "email"
    assert domain.clean_lead({"email": "Olga@Example.RU"})["email"] == "olga@example.ru"


def test_a_form_without_consent_text_or_contact_field_is_refused() -> None:
    fields = [{"name": "phone", "label": "Телефон"}]
    with pytest.raises(ValidationError) as consent:
        domain.clean_form({"name": "Форма", "fields": fields, "consent_text": ""})
    assert consent.value.details["field"] == "consent_text"
    with pytest.raises(ValidationError) as contact:
        domain.clean_form({"name": "Форма", "consent_text": "Согласен на обработку данных",
                           "fields": [{"name": "city", "label": "Город"}]})
    assert contact.value.details["field"] == "fields"


def test_submission_maps_fields_and_keeps_unmapped_ones_as_extra() -> None:
    form = domain.clean_form({"name": "Ф", "consent_text": "Согласен на обработку данных",
                              "fields": [{"name": "phone", "label": "Телефон",
                                          "required": True},
                                         {"name": "city", "label": "Город"}]})
    lead, extra = domain.map_submission(form["fields"], {"phone": "+79161234567",
                                                         "city": "Тверь"})
    assert lead == {"phone": "+79161234567"} and extra == {"Город": "Тверь"}
    with pytest.raises(ValidationError) as missing:
        domain.map_submission(form["fields"], {"city": "Тверь"})
    assert missing.value.details["field"] == "fields.phone"


@pytest.mark.parametrize(("honeypot", "seconds", "reason"), [
    ("http://spam", 10.0, "honeypot"), ("", None, "no_token"), ("", 0.5, "too_fast"),
    ("", 5.0, None)])
def test_bots_are_told_from_people(honeypot: str, seconds: float | None,
                                   reason: str | None) -> None:
    verdict = domain.judge_submission(honeypot, seconds, 3)
    assert (verdict.bot, verdict.reason) == (reason is not None, reason)


def test_round_robin_goes_on_after_the_last_and_starts_over_when_they_left() -> None:
    assert domain.next_assignee([3, 5, 9], 5) == 9
    assert domain.next_assignee([3, 5, 9], 9) == 3
    assert domain.next_assignee([3, 5, 9], 42) == 3
    assert domain.next_assignee([], 1) is None


def test_auto_replies_and_lists_are_recognised() -> None:
    assert domain.is_auto_reply({"Auto-Submitted": "auto-replied"})
    assert domain.is_auto_reply({"Precedence": "bulk"})
    assert domain.is_auto_reply({"List-Id": "<news.example>"})
    assert not domain.is_auto_reply({"Auto-Submitted": "no"})
    assert not domain.is_auto_reply({})


def test_thread_ids_are_the_answered_message_first_then_references_latest_first() -> None:
    assert domain.thread_ids("<c@x>", "<a@x> <b@x> <c@x>") == ["<c@x>", "<b@x>", "<a@x>"]


def test_rate_windows_are_fixed() -> None:
    moment = datetime(2026, 1, 1, 10, 0, 59, tzinfo=UTC)
    assert domain.window_start(moment, 60) == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_a_message_is_read_with_its_sender_reply_headers_and_attachment() -> None:
    message = EmailMessage()
    message["From"] = "Олег <Oleg@Shop.example>"
    message["To"] = "sales@crm.example"
    message["Subject"] = "Re: Счёт"
    message["Message-ID"] = "<r1@shop.example>"
    message["In-Reply-To"] = "<out-1@crm.example>"
    message.set_content("Спасибо")
    message.add_alternative("<p>Спасибо</p>", subtype="html")
    message.add_attachment(b"data", maintype="application", subtype="pdf",
                           filename="счёт.pdf")
    parsed = parse(bytes(message), mailbox="sales@crm.example")
    assert parsed.mail["from"] == "oleg@shop.example" and parsed.mail["from_name"] == "Олег"
    assert parsed.mail["in_reply_to"] == "<out-1@crm.example>"
    assert parsed.mail["text"].strip() == "Спасибо"
    assert "<p>" in parsed.mail["html"]
    assert parsed.files == [("счёт.pdf", b"data")]


def test_messages_sharing_headers_are_each_read_as_their_own() -> None:
    # parsed headers are remembered across messages (the listener's hot path); each
    # message must still read its own values, charsets and attachment names
    def message(n: int, charset: str) -> bytes:
        made = EmailMessage()
        made["From"] = f"Клиент {n} <c{n}@shop.example>"
        made["To"] = "sales@crm.example"
        made["Subject"] = f"Заявка №{n}"
        made["Message-ID"] = f"<m{n}@shop.example>"
        made.set_content(f"Текст {n}", charset=charset)
        made.add_attachment(f"файл {n}".encode(), maintype="text", subtype="plain",
                            filename=f"смета-{n}.txt")
        return bytes(made)

    for n, charset in ((1, "utf-8"), (2, "koi8-r"), (1, "utf-8"), (3, "utf-8")):
        parsed = parse(message(n, charset), mailbox="sales@crm.example")
        assert (parsed.mail["from"], parsed.mail["from_name"], parsed.mail["subject"]) == \
            (f"c{n}@shop.example", f"Клиент {n}", f"Заявка №{n}")
        assert parsed.mail["message_id"] == f"<m{n}@shop.example>"
        assert parsed.mail["text"].strip() == f"Текст {n}"
        assert parsed.files == [(f"смета-{n}.txt", f"файл {n}".encode())]
    registry = POLICY.header_factory
    assert registry("Content-Type", "text/plain") is registry("Content-Type", "text/plain")


def test_a_message_without_a_sender_is_malformed() -> None:
    with pytest.raises(MalformedMail):
        parse(b"Subject: hi\r\n\r\nbody")


def test_the_deal_source_of_a_lead_names_its_kind_and_keeps_tags_page_and_ids() -> None:
    lead = {"id": 41, "source": "form", "source_ref": "3", "utm": {"utm_source": "ya"},
            "page_url": "https://site.ru/" + "x" * 600, "referrer": ""}
    source, detail = domain.deal_source(lead)
    assert source == "web_form"
    assert detail == {"utm_source": "ya", "page_url": ("https://site.ru/" + "x" * 600)[:500],
                      "lead_id": "41", "form_id": "3"}
    assert domain.deal_source({"id": 5, "source": "email", "source_ref": "box"}) == (
        "email", {"lead_id": "5"})


def test_marketing_keeps_only_web_addresses_for_page_and_referrer() -> None:
    cleaned = domain.clean_marketing({"page_url": "javascript:alert(1)",
                                      "referrer": " https://ads.example/?q=1 "})
    assert cleaned == {"utm": {}, "page_url": "", "referrer": "https://ads.example/?q=1"}


def test_recent_reads_keep_a_value_per_database_until_forgotten() -> None:
    from types import SimpleNamespace

    from services.intake.store import Recent

    def on(url: str) -> Any:
        return SimpleNamespace(provider=SimpleNamespace(engine=SimpleNamespace(url=url)))

    recent, loads = Recent(60), []

    def load(value: str) -> Any:
        return lambda: loads.append(value) or value

    assert recent.get(on("db1"), "settings", load("a")) == "a"
    assert recent.get(on("db1"), "settings", load("b")) == "a"  # kept
    assert recent.get(on("db2"), "settings", load("c")) == "c"  # another database
    recent.forget()
    assert recent.get(on("db1"), "settings", load("d")) == "d"
    assert loads == ["a", "c", "d"]


def test_recent_reads_refresh_once_while_the_others_keep_the_last_value(monkeypatch: Any
                                                                        ) -> None:
    """When a kept value runs out, one caller reads it again; whoever comes meanwhile (a
    concurrent submission) takes the value of a second ago instead of reading too; a read
    that fails (the form switched off) leaves nothing behind."""
    from types import SimpleNamespace

    from services.intake import store

    now = [100.0]
    monkeypatch.setattr(store.time, "monotonic", lambda: now[0])
    db = SimpleNamespace(provider=SimpleNamespace(engine=SimpleNamespace(url="db1")))
    recent, loads = store.Recent(1.0), []
    assert recent.get(db, "form", lambda: loads.append("a") or "a") == "a"
    now[0] += 1.5  # run out

    def meanwhile() -> str:
        loads.append("b")
        assert recent.get(db, "form", lambda: loads.append("c") or "c") == "a"
        return "b"

    assert recent.get(db, "form", meanwhile) == "b"
    assert recent.get(db, "form", lambda: loads.append("d") or "d") == "b"
    assert loads == ["a", "b"]
    now[0] += 1.5

    def gone() -> str:
        raise LookupError("switched off")

    with pytest.raises(LookupError):
        recent.get(db, "form", gone)
    assert recent.get(db, "form", lambda: "e") == "e"  # read again, not the old value
