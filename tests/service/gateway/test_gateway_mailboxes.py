"""The administrator's IMAP mailbox page: a mistake comes back naming the field with what
was typed (never the password), and a stored password is never put back into the page."""
from __future__ import annotations

from sqlalchemy import select

from gateway.models import WebSession
from services.intake.service import IntakeService
from tests.service.gateway.conftest import PASSWORD


def test_mailbox_page_names_the_wrong_field_and_never_shows_the_password(
        start_service, client, add_user, gateway_db):
    start_service(IntakeService, INTAKE_SECRET="test-secret", IMAP_TICK_SECONDS=3600)
    add_user("root", roles=["admin"])
    client.post("/login", data={"username": "root", "password": PASSWORD})
    assert client.get("/leads/mailboxes").status_code == 200
    csrf = gateway_db.scalars(select(WebSession.csrf_token)).one()
    typed = {"csrf_token": csrf, "name": "Продажи <b>", "host": "imap.firm.example",
             "port": "99999", "security": "ssl", "login": "sales@firm.example",
             "password": "Pa55-word-typed", "folder": "INBOX", "interval_seconds": "60",
             "active": "1"}
    refused = client.post("/leads/mailboxes", data=typed)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Порт — число от 1 до 65535." in page and 'aria-invalid="true"' in page
    assert 'value="imap.firm.example"' in page and "Продажи &lt;b&gt;" in page
    assert "Pa55-word-typed" not in page
    saved = client.post("/leads/mailboxes", data={**typed, "port": "993"})
    assert saved.status_code == 302
    listed = client.get("/leads/mailboxes").get_data(as_text=True)
    assert "sales@firm.example@imap.firm.example:993" in listed
    assert "Pa55-word-typed" not in listed
    assert "Пароль сохранён" in listed
