"""Every page form refused by a service comes back as a 422 page with each error beside
its field, in the user's language, with what was typed kept and the form's anchor in its
action (the browser stays at the form instead of jumping to the top)."""
from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from tests.e2e.test_deals_e2e import make_client, web
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def post(session: requests.Session, stack: Stack, path: str, **data: str) -> requests.Response:
    return session.post(f"{stack.url}{path}", timeout=15,
                        data={"csrf_token": session.headers["X-CSRF-Token"], **data})


def error_of(html: str, form_id: str, field: str) -> str:
    found = re.search(rf'id="{re.escape(form_id)}-{re.escape(field)}-error">([^<]*)<', html)
    assert found, f"no error beside {form_id}/{field}"
    return unescape(found.group(1))


def form_of(html: str, form_id: str) -> str:
    """The markup of one form: its errors must be inside it, not in a banner elsewhere."""
    found = re.search(rf'<form[^>]*id="{re.escape(form_id)}".*?</form>', html, re.S)
    assert found, f"no form {form_id}"
    return found.group(0)


@pytest.fixture()
def deal(stack: Stack) -> dict:
    client = make_client(stack, "ООО «Поля»")
    return stack.ok("POST", "/deals", json={"name": "Полевая", "client_id": client["id"]})


def test_deal_page_forms_show_their_errors_beside_the_fields_and_keep_the_input(
        stack: Stack, deal: dict):
    session = web(stack)
    page = f"/deals/{deal['id']}"
    answer = post(session, stack, f"{page}/edit", name="Новое <имя>",
                  expected_amount="сто тысяч", version="1")
    assert answer.status_code == 422
    edit = form_of(answer.text, "deal-edit")
    assert "«сто тысяч»" in error_of(edit, "deal-edit", "expected_amount")
    assert 'value="Новое &lt;имя&gt;"' in edit and 'value="сто тысяч"' in edit
    assert f'action="{page}/edit#deal-edit"' in edit
    assert re.search(r'<details class="card" id="panel-edit" open', answer.text)

    answer = post(session, stack, f"{page}/reminders", text="Позвонить", due_at="завтра")
    assert answer.status_code == 422
    reminder = form_of(answer.text, "reminder-form")
    assert error_of(reminder, "reminder-form", "due_at")
    assert 'value="Позвонить"' in reminder and 'value="завтра"' in reminder

    answer = post(session, stack, f"{page}/calculation/plan", parts="ноль",
                  first_due_date="2030-01-15")
    # no calculation yet: the plan form is not on the page, its error is shown all the same
    assert answer.status_code in (409, 422)
    assert 'id="plan-form-errors"' in answer.text

    answer = session.post(f"{stack.url}{page}/comments", timeout=15,
                          data={"csrf_token": session.headers["X-CSRF-Token"], "text": ""})
    assert answer.status_code == 422
    assert 'role="alert"' in form_of(answer.text, "comment-form") or \
        error_of(answer.text, "comment-form", "text")


def test_the_deal_page_answers_in_english_for_an_english_user(stack: Stack, deal: dict):
    session = web(stack, "head")  # the language is the user's: the others stay Russian
    session.post(f"{stack.url}/lang/en", timeout=10,
                 data={"csrf_token": session.headers["X-CSRF-Token"]})
    try:
        answer = post(session, stack, f"/deals/{deal['id']}/edit",
                      expected_amount="сто тысяч", version="1")
        assert answer.status_code == 422
        message = error_of(answer.text, "deal-edit", "expected_amount")
        assert not re.search("[а-яё]", message.replace("сто тысяч", ""), re.I), message
    finally:
        session.post(f"{stack.url}/lang/ru", timeout=10,
                     data={"csrf_token": session.headers["X-CSRF-Token"]})


def test_client_forms_show_their_errors_beside_the_fields_and_keep_the_input(stack: Stack):
    session = web(stack)
    answer = post(session, stack, "/clients", kind="legal", name="ООО «Ошибка»",
                  inn="7736207544", contact_phone="12")
    assert answer.status_code == 422
    new = form_of(answer.text, "new-client")
    assert 'value="ООО «Ошибка»"' in unescape(new) and 'value="7736207544"' in new
    assert error_of(new, "new-client", "inn") or error_of(new, "new-client", "contact_phone")
    assert 'action="/clients#new-client"' in new

    client = stack.ok("POST", "/clients", json={"name": "ООО «Верно»"})
    page = f"/clients/{client['id']}"
    answer = post(session, stack, page, name="ООО «Верно»", website="не адрес",
                  version=str(client["version"]))
    assert answer.status_code == 422
    main = form_of(answer.text, "client-form")
    assert error_of(main, "client-form", "website")
    assert 'value="не адрес"' in main

    answer = post(session, stack, f"{page}/contacts", name="Пётр", phone="12345")
    assert answer.status_code == 422
    contact = form_of(answer.text, "add-contact")
    assert error_of(contact, "add-contact", "phone")
    assert 'value="Пётр"' in contact and 'value="12345"' in contact

    answer = post(session, stack, f"{page}/requisites", **{"req.inn": "7707083893",
                                                          "req.kpp": "12",
                                                          "version": str(client["version"])})
    assert answer.status_code == 422
    requisites = form_of(answer.text, "requisites-form")
    assert error_of(requisites, "requisites-form", "req.kpp")
    assert 'value="12"' in requisites


def test_the_payments_panel_keeps_a_refused_payment_beside_its_fields(stack: Stack,
                                                                       deal: dict):
    session = web(stack)
    answer = post(session, stack, f"/deals/{deal['id']}/payments", amount="сто тысяч",
                  due_date="31.02.2030", comment="аванс")
    assert answer.status_code == 422
    add = form_of(answer.text, "add-payment")
    assert error_of(add, "add-payment", "amount")
    assert 'value="сто тысяч"' in add and 'value="аванс"' in add
    assert stack.ok("GET", f"/deals/{deal['id']}/payments")["payments"] == []


def test_a_call_logged_by_hand_with_a_bad_length_keeps_the_form(stack: Stack):
    session = web(stack)
    answer = post(session, stack, "/calls", direction="outbound",
                  other_number="+7 915 777-33-21", started_at="2026-12-01T10:00",
                  minutes="много")
    assert answer.status_code == 422
    logged = form_of(answer.text, "log-call-form")
    assert "«много»" in error_of(logged, "log-call-form", "minutes")
    assert 'value="+7 915 777-33-21"' in logged and 'value="много"' in logged
    assert re.search(r'<details class="card" id="log-call" open', answer.text)


def test_the_administrator_sees_user_errors_at_the_fields_in_russian(stack: Stack):
    session = web(stack, "admin")
    answer = post(session, stack, "/admin/users", username="x", full_name="Пётр Новый",
                  password="1", active="1", roles="manager")
    assert answer.status_code == 422
    new = form_of(answer.text, "new-user")
    assert "Логин" in error_of(new, "new-user", "username")
    assert 'value="Пётр Новый"' in new and 'value="x"' in new
    assert 'checked' in re.search(r'<input type="checkbox" name="roles" value="manager"[^>]*>',
                                  new).group(0)

    answer = post(session, stack, "/admin/statuses", name="", kind="open")
    assert answer.status_code == 422
    assert 'role="alert"' in form_of(answer.text, "new-status") or \
        error_of(answer.text, "new-status", "name")


def test_the_profile_keeps_a_refused_address_beside_its_field(stack: Stack):
    session = web(stack)
    answer = post(session, stack, "/profile", email="не почта", phone="")
    assert answer.status_code == 422
    profile = form_of(answer.text, "profile-form")
    assert error_of(profile, "profile-form", "email")
    assert 'value="не почта"' in profile
