"""The include templates other sections put on their pages (the client page): messages to
contacts and calls with the client render from their helpers, and degrade to an
"unavailable" panel when the service does not answer."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from gateway.aggregate import Panel
from gateway.app import create_app
from gateway.i18n import translate
from services.kit.errors import RemoteTimeout

CLIENT = {"id": 3, "name": "ООО «Ромашка»", "contacts": [
    {"id": 31, "name": "Пётр", "phones": ["+79161234567"], "emails": ["p@x.ru"]}]}
CALL = {"id": 5, "direction": "inbound", "status": "finished", "outcome": "answered",
        "duration_seconds": 65, "other_number": "79161234567", "other_e164": "+79161234567",
        "contact_id": 31, "contact_name": "Пётр", "recording_status": "stored",
        "started_at": "2026-03-02T10:00:00+00:00"}
MESSAGE = {"id": 1, "channel": "email", "contact_name": "Пётр", "address": "p@x.ru",
           "subject": "Счёт", "text": "Добрый день", "status": "failed",
           "created_at": "2026-03-02T10:00:00+00:00"}


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app({"DB_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
                       "AMQP_URI": "amqp://guest:guest@127.0.0.1:1//"})


def render(app: Flask, name: str, ok: bool = True) -> str:
    context: dict[str, Any] = {
        "t": lambda key, **params: translate("ru", key, **params), "csrf_token": "tok",
        "client": CLIENT, "new_request_id": lambda: "req-1",
        # the page's view gathers both panels (remote_many); a silent service is an error
        "panels": {"calls": Panel(data=[CALL]) if ok else Panel(error=RemoteTimeout("late")),
                   "messages": (Panel(data=[MESSAGE]) if ok
                                else Panel(error=RemoteTimeout("late")))}}
    with app.test_request_context("/clients/3"):
        return app.jinja_env.get_template(name).render(**context)


def test_the_client_calls_panel_lists_calls_with_a_player(app):
    html = render(app, "telephony/_client_calls.html")
    assert 'src="/calls/5/recording"' in html and "1:05" in html and "Пётр" in html
    assert 'data-panel="calls"' in render(app, "telephony/_client_calls.html", ok=False)


def test_the_client_messages_panel_has_the_form_and_the_log(app):
    html = render(app, "notifications/_client_messages.html")
    assert 'action="/clients/3/messages#message-form"' in html  # back at the form
    assert 'name="request_id" value="req-1"' in html  # a double submit sends once
    assert 'value="p@x.ru"' in html and "Счёт" in html and "ошибка" in html
    assert 'data-panel="messages"' in render(app, "notifications/_client_messages.html",
                                             ok=False)
