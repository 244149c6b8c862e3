"""The API contract through the whole stack: input refused at the edge with every wrong
field named in the language asked for, before any service is called; the deal form shows
its errors next to the fields and keeps what was typed."""
from __future__ import annotations

import re

import pytest

from tests.e2e.test_deals_e2e import make_client, web
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def test_a_payment_with_bad_fields_is_refused_naming_each_in_english(stack: Stack):
    client = make_client(stack, "ООО «Контракт»")
    deal = stack.ok("POST", "/deals", json={"name": "Контрактная", "client_id": client["id"]})
    bad = stack.api("POST", f"/deals/{deal['id']}/payments",
                    json={"amount": "1e28", "due_date": "31.12.2026", "comment": "x" * 3000},
                    headers={"Accept-Language": "en"})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert {(e["field"], e["key"]) for e in error["errors"]} == {
        ("amount", "money.invalid"), ("due_date", "date.invalid"), ("comment", "text.too_long")}
    assert next(e for e in error["errors"] if e["field"] == "comment")["message"] == \
        "At most 2000 characters."
    assert stack.ok("GET", f"/deals/{deal['id']}/payments")["payments"] == []
    planned = stack.ok("POST", f"/deals/{deal['id']}/payments",
                       json={"amount": "1 000,50", "due_date": "2030-01-15"})
    assert planned["amount"] == "1000.50"
    stale = stack.api("PATCH", f"/payments/{planned['id']}", json={"version": "abc"})
    assert stale.status_code == 422 and stale.json()["error"]["field"] == "version"
    huge = stack.api("POST", f"/payments/{2**64}/receipts", json={})
    assert huge.status_code == 422 and huge.json()["error"]["field"] == "payment_id"
    deep = stack.api("POST", f"/deals/{deal['id']}/orders", data="[" * 100_000,
                     headers={"Content-Type": "application/json"})
    assert deep.status_code == 422 and deep.json()["error"]["key"] == "body.too_deep"


def test_the_new_deal_form_shows_every_error_beside_its_field_and_keeps_the_input(
        stack: Stack):
    session = web(stack)
    token = session.headers["X-CSRF-Token"]
    answer = session.post(f"{stack.url}/deals", timeout=10, data={
        "csrf_token": token, "name": "Сделка <b>мечты</b>", "client_query": "Ромашка",
        "client_id": "", "expected_amount": "сто тысяч"})
    assert answer.status_code == 422
    html = answer.text
    assert 'value="Сделка &lt;b&gt;мечты&lt;/b&gt;"' in html  # kept, and escaped
    assert 'value="Ромашка"' in html and 'value="сто тысяч"' in html
    assert re.search(r'id="new-deal-client_query-error">Обязательное поле\.<', html)
    assert re.search(r'id="new-deal-expected_amount-error">«сто тысяч» — не сумма', html)


def test_the_document_describes_lists_as_arrays(stack: Stack):
    document = stack.ok("GET", "/openapi.json")
    get = document["paths"]["/api/v1/deals/{deal_id}/history"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    statuses = stack.ok("GET", "/statuses")
    assert isinstance(statuses, list)


@pytest.mark.parametrize("lang, required, big", [
    ("en", "This field is required.", "The id is too large (at most 2147483647)."),
    ("ru", "Обязательное поле.", "Слишком большой номер записи (не больше 2147483647)."),
])
def test_every_converted_section_answers_in_the_language_asked(stack: Stack, lang, required,
                                                                big):
    headers = {"Accept-Language": lang}
    contact = stack.api("POST", "/clients/1/contacts", json={"phones": ["+79157773321"]},
                        headers=headers)
    assert contact.status_code == 422
    assert [(e["field"], e["key"], e["message"]) for e in contact.json()["error"]["errors"]] \
        == [("name", "required", required)]
    client = stack.api("POST", "/clients", json={"kind": "firm", "manager_id": 2**31},
                       headers=headers)
    errors = {e["field"]: e for e in client.json()["error"]["errors"]}
    assert client.status_code == 422 and set(errors) == {"kind", "manager_id"}
    assert errors["manager_id"]["message"] == big
    assert "firm" in errors["kind"]["message"] and "legal" in errors["kind"]["message"]
    call = stack.api("POST", "/calls", json={"direction": "inbound"}, headers=headers)
    assert {e["field"] for e in call.json()["error"]["errors"]} == {
        "from", "to", "started_at", "ended_at"}
    user = stack.api("PATCH", f"/admin/users/{2**31}", user="admin", json={}, headers=headers)
    assert user.status_code == 422 and user.json()["error"]["message"] == big
