"""IMAP polling against a real Dovecot on loopback (tests/support/imap_server.py), with
the real intake, clients and deals services on RabbitMQ and PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.clients.service import ClientsService
from services.deals.service import DealsService
from services.intake.service import IntakeService
from services.kit.errors import ValidationError
from tests.support.imap_server import ImapServer, dovecot
from tests.support.infra import wait_until

USERS = {"sales": "sales-secret-1", "olga": "olga-secret-2"}


@pytest.fixture
def imap() -> Iterator[ImapServer]:
    with dovecot(USERS) as server:
        yield server


@pytest.fixture
def stack(start_service: Any, rpc: Any, tmp_path: Path) -> Any:
    start_service(ClientsService)
    start_service(DealsService)
    start_service(IntakeService, IMAP_TICK_SECONDS=0.3, INTAKE_SECRET="test-secret",
                  DUPLICATES_TICK_SECONDS=0.5, FILES_DIR=str(tmp_path / "files"),
                  SMTP_MAX_BYTES=200_000)
    return rpc


def mail(n: int, sender: str = "buyer@shop.example", *, attachment: bytes | None = None,
         message_id: str | None = None, body: str = "Нужен счёт на 10 штук") -> bytes:
    message = EmailMessage()
    message["From"] = f"Покупатель {n} <{sender}>"
    message["To"] = "sales@company.example"
    message["Subject"] = f"Заказ {n}"
    message["Message-ID"] = message_id or f"<order-{n}@shop.example>"
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf",
                               filename="rekvizity.pdf")
    return message.as_bytes()


def mailbox(rpc: Any, imap: ImapServer, user: str, **extra: Any) -> dict[str, Any]:
    return dict(rpc.call("intake", "save_mailbox", {
        "name": f"Ящик {user}", "host": imap.host, "port": imap.port, "security": "none",
        "login": user, "password": USERS[user], "interval_seconds": 5, **extra}, user_id=1))


def email_leads(rpc: Any) -> list[dict[str, Any]]:
    items = rpc.call("intake", "list_leads", status=None)["items"]
    return [lead for lead in items if lead["source"] == "email"]


def test_company_mailbox_new_mail_becomes_a_lead_and_is_marked_seen_after(
        stack: Any, imap: ImapServer, session_of: Any) -> None:
    imap.append("sales", mail(0, "old@archive.example"), flags=r"\Seen")
    imap.append("sales", mail(1, attachment=b"%PDF-1.4 rekvizity"))
    box = mailbox(stack, imap, "sales")
    assert "password" not in box and "password_enc" not in box and box["has_password"]
    assert USERS["sales"] not in repr(stack.call("intake", "list_mailboxes"))
    with session_of("intake") as db:
        stored = db.execute(text("SELECT password_enc FROM mailboxes")).scalar_one()
    assert USERS["sales"] not in stored
    [lead] = wait_until(lambda: email_leads(stack), message="the unseen mail is a lead")
    assert (lead["email"], lead["name"]) == ("buyer@shop.example", "Покупатель 1")
    assert lead["message"].startswith("Заказ 1")
    assert [a["name"] for a in lead["attachments"]] == ["rekvizity.pdf"]
    assert lead["source_ref"] == f"sales@{imap.host}"
    flags = wait_until(lambda: (f := imap.messages("sales")) and
                       all(r"\Seen" in v for v in f.values()) and f,
                       message="marked seen on the server")
    assert len(flags) == 2
    # The message seen before the mailbox was added is no new enquiry.
    assert [x["email"] for x in email_leads(stack)] == ["buyer@shop.example"]
    # Read by a person in a mail client before the poll: still ours.
    imap.append("sales", mail(2, "second@shop.example"), flags=r"\Seen")
    wait_until(lambda: len(email_leads(stack)) == 2, message="a seen new message taken")
    # The count is written when the poll ends, a moment after its last lead committed.
    status = wait_until(lambda: (s := stack.call("intake", "get_mailbox", box["id"]))
                        ["taken"] == 2 and s, message="the poll's count written")
    assert status["last_error"] is None


def test_manager_mailbox_assigns_to_that_manager_and_moves_the_message(
        stack: Any, imap: ImapServer) -> None:
    stack.call("intake", "set_settings", {"duty_user_ids": [11, 12]})
    imap.append("olga", mail(3, "client@firm.example"))
    mailbox(stack, imap, "olga", user_id=7, move_to="Processed")
    [lead] = wait_until(lambda: email_leads(stack), message="the manager's mail is a lead")
    assert lead["assignee_id"] == 7
    wait_until(lambda: len(imap.messages("olga", "Processed")) == 1, message="moved")
    assert imap.messages("olga") == {}


def test_nothing_doubled_when_the_marking_was_lost_or_the_same_mail_comes_again(
        stack: Any, imap: ImapServer, session_of: Any) -> None:
    imap.append("sales", mail(4))
    box = mailbox(stack, imap, "sales")
    wait_until(lambda: email_leads(stack), message="first read")
    wait_until(lambda: all(r"\Seen" in f for f in imap.messages("sales").values()),
               message="marked")
    # A crash after the commit and before the server heard "seen".
    conn = imap.client("sales")
    conn.select("INBOX")
    conn.uid("STORE", "1:*", "-FLAGS", r"(\Seen)")
    conn.logout()
    with session_of("intake") as db:
        db.execute(text("UPDATE mailbox_messages SET flagged = false"))
        db.commit()
    # And the same message delivered a second time (a new UID, the same Message-ID).
    imap.append("sales", mail(4))
    stack.call("intake", "poll_mailbox_now", box["id"])
    wait_until(lambda: len(imap.messages("sales")) == 2 and
               all(r"\Seen" in f for f in imap.messages("sales").values()),
               message="both marked again")
    # "flagged" is committed a moment after the server heard "seen".
    def outcomes() -> list[tuple[Any, ...]]:
        with session_of("intake") as db:
            return [tuple(r) for r in db.execute(text(
                "SELECT uid, outcome, flagged FROM mailbox_messages ORDER BY uid")).all()]

    wait_until(lambda: all(r[2] for r in outcomes()), message="both recorded as marked")
    assert outcomes() == [(1, "lead", True), (2, "duplicate", True)]
    assert len(email_leads(stack)) == 1


def test_oversized_and_malformed_mail_is_refused_left_unread_and_not_read_again(
        stack: Any, imap: ImapServer, session_of: Any) -> None:
    imap.append("sales", mail(5, body="x" * 300_000))
    imap.append("sales", b"Subject: no sender at all\r\n\r\nhello\r\n")
    imap.append("sales", mail(6, "fine@shop.example"))
    box = mailbox(stack, imap, "sales")
    wait_until(lambda: len(email_leads(stack)) == 1, message="the good one taken")
    wait_until(lambda: r"\Seen" in imap.messages("sales").get(3, ""),
               message="the good one marked")
    with session_of("intake") as db:
        rows = dict(db.execute(text("SELECT uid, outcome FROM mailbox_messages")).all())
    assert rows == {1: "too_big", 2: "malformed", 3: "lead"}
    flags = imap.messages("sales")
    assert (r"\Seen" in flags[1], r"\Seen" in flags[2], r"\Seen" in flags[3]) == (
        False, False, True)
    stack.call("intake", "poll_mailbox_now", box["id"])
    wait_until(lambda: stack.call("intake", "get_mailbox", box["id"])["taken"] == 3,
               message="polled again")
    assert len(email_leads(stack)) == 1


def test_a_wrong_password_is_shown_as_the_mailbox_error_and_a_fix_reads_it(
        stack: Any, imap: ImapServer) -> None:
    imap.append("sales", mail(7))
    box = mailbox(stack, imap, "sales", password="wrong")
    failed = wait_until(lambda: stack.call("intake", "get_mailbox", box["id"])["last_error"],
                        timeout=30, message="the login failure is recorded")
    assert "sales-secret" not in failed
    assert email_leads(stack) == []
    # Saved again without a password: the stored (wrong) one is kept...
    kept = stack.call("intake", "save_mailbox", {**box, "password": ""}, user_id=1,
                      mailbox_id=box["id"])
    assert kept["has_password"]
    stack.call("intake", "save_mailbox", {**box, "password": USERS["sales"]}, user_id=1,
               mailbox_id=box["id"])
    wait_until(lambda: email_leads(stack), timeout=30, message="read with the right password")
    assert stack.call("intake", "get_mailbox", box["id"])["last_error"] is None


def test_a_mailbox_with_bad_settings_is_refused_naming_the_field(stack: Any) -> None:
    good = {"name": "Ящик", "host": "imap.example.ru", "login": "sales", "password": "p"}
    for change, field in (({"port": "99999"}, "port"), ({"host": ""}, "host"),
                          ({"password": ""}, "password"), ({"security": "tls9"}, "security"),
                          ({"interval_seconds": 1}, "interval_seconds")):
        with pytest.raises(ValidationError) as refused:
            stack.call("intake", "save_mailbox", {**good, **change}, user_id=1)
        assert refused.value.details["field"] == field
    assert stack.call("intake", "list_mailboxes") == []
