"""A company mailbox on a real IMAP server (Dovecot on loopback), configured by the
administrator through the page: a stranger's mail becomes an inbox entry and is marked
read on the server; a manager's own mailbox gives its leads to that manager; a reply to
an accepted lead threads into the deal's feed."""
from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from tests.e2e.test_clients import signed_in
from tests.support.imap_server import ImapServer, dovecot
from tests.support.stack import wait_for

USERS = {"sales-e2e": "imap-pass-1", "ivan-e2e": "imap-pass-2"}


@pytest.fixture
def imap() -> Iterator[ImapServer]:
    with dovecot(USERS) as server:
        yield server


def message(sender: str, message_id: str, subject: str, text: str,
            in_reply_to: str | None = None) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Клиент <{sender}>"
    mail["To"] = "sales@crm.example"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = mail["References"] = in_reply_to
    mail.set_content(text)
    return mail.as_bytes()


def add_mailbox(session: requests.Session, token: str, stack: Any, imap: ImapServer,
                login: str, owner: str = "") -> None:
    response = session.post(f"{stack.url}/leads/mailboxes", timeout=10, allow_redirects=False,
                            data={"csrf_token": token, "name": f"Ящик {login}",
                                  "host": imap.host, "port": str(imap.port),
                                  "security": "none", "login": login,
                                  "password": USERS[login], "folder": "INBOX",
                                  "interval_seconds": "5", "user_id": owner, "active": "1"})
    assert response.status_code == 302, response.text[:500]


def lead_from(stack: Any, sender: str) -> Any:
    items = stack.ok("GET", "/leads")["items"]
    return next((x for x in items if x["email"] == sender), None)


def test_mail_read_from_imap_mailboxes_reaches_the_inbox_and_the_deal(
        stack: Any, imap: ImapServer) -> None:
    session, token = signed_in(stack, "admin")
    imap.append("sales-e2e", message("imap-buyer@shop.example", "<imap-1@shop.example>",
                                     "Счёт", "Выставьте счёт на 5 штук"))
    add_mailbox(session, token, stack, imap, "sales-e2e")
    found = wait_for(lambda: lead_from(stack, "imap-buyer@shop.example"), timeout=30,
                     message="the IMAP mail's lead in the inbox")
    assert found["source"] == "email" and "Выставьте счёт" in found["message"]
    wait_for(lambda: all(r"\Seen" in f for f in imap.messages("sales-e2e").values()),
             message="marked read on the server")
    page = session.get(f"{stack.url}/leads/mailboxes", timeout=10).text
    assert USERS["sales-e2e"] not in page

    accepted = stack.ok("POST", f"/leads/{found['id']}/accept", json={})
    imap.append("sales-e2e", message("imap-buyer@shop.example", "<imap-2@shop.example>",
                                     "Re: Счёт", "И доставку", "<imap-1@shop.example>"))

    def mails() -> Any:
        feed = stack.ok("GET", f"/deals/{accepted['deal_id']}")["feed"]
        lines = [e["item"]["data"]["message_id"] for e in feed if e["kind"] == "email"]
        return lines if len(lines) == 2 else None

    assert set(wait_for(mails, timeout=30, message="the reply in the deal feed")) == {
        "<imap-1@shop.example>", "<imap-2@shop.example>"}

    users = stack.ok("GET", "/admin/users", user="admin")
    ivan = next(u["id"] for u in (users.get("items") if isinstance(users, dict) else users)
                if u["username"] == "ivan")
    imap.append("ivan-e2e", message("imap-other@firm.example", "<imap-3@firm.example>",
                                     "Вопрос", "Сколько стоит?"))
    add_mailbox(session, token, stack, imap, "ivan-e2e", owner=str(ivan))
    mine = wait_for(lambda: lead_from(stack, "imap-other@firm.example"), timeout=30,
                    message="the manager's mailbox lead")
    assert mine["assignee_id"] == ivan
