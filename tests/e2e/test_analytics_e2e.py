"""The funnel through the whole stack: deals moved on the board through the API change the
figures analytics shows; a manager sees their own; bad filters are a 422 naming the field;
with analytics down the page says so and the rest of the CRM works."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.stack import PASSWORD, Stack, wait_for

pytestmark = pytest.mark.e2e


def layers(stack: Stack, client_id: int, user: str = "head") -> dict[str, dict]:
    funnel = stack.ok("GET", f"/analytics/funnel?client_id={client_id}", user=user)
    return {row["code"]: row for row in funnel["layers"]}


def reached(stack: Stack, client_id: int, user: str = "head") -> dict[str, int]:
    return {code: row["reached"] for code, row in layers(stack, client_id, user).items()}


def test_moving_deals_on_the_board_changes_the_funnel(stack: Stack):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Воронка»", "kind": "person"})
    deals = [stack.ok("POST", "/deals", json={"name": f"Воронка {i}", "client_id": client["id"],
                                              "expected_amount": "1000.00"}) for i in range(3)]
    reason = stack.ok("GET", "/loss-reasons")[0]
    for status in ("qualification", "proposal"):
        stack.ok("POST", f"/deals/{deals[0]['id']}/status", json={"status": status})
    stack.ok("POST", f"/deals/{deals[1]['id']}/status", json={"status": "qualification"})
    lost = {"status": "lost", "loss_reason_id": reason["id"]}
    stack.ok("POST", f"/deals/{deals[1]['id']}/status", json=lost)

    wanted = {"new": 3, "qualification": 2, "proposal": 1, "negotiation": 0}
    wait_for(lambda: {k: v for k, v in reached(stack, client["id"]).items() if k in wanted}
             == wanted, message="the funnel to show the moves")
    rows = layers(stack, client["id"])
    assert rows["qualification"]["lost"] == 1 and rows["new"]["amount"] == "3000.00"
    assert rows["proposal"]["now_count"] == 1

    stack.ok("POST", f"/deals/{deals[2]['id']}/status", json={"status": "qualification"})
    wait_for(lambda: reached(stack, client["id"])["qualification"] == 3,
             message="the third deal in qualification")
    listed = stack.ok("GET", f"/analytics/layers/qualification/deals?client_id={client['id']}",
                      user="head")
    assert sorted(d["deal_id"] for d in listed["deals"]) == sorted(d["id"] for d in deals)

    # ivan manages none of these deals: his funnel of this client is empty
    assert reached(stack, client["id"], user="ivan")["new"] == 0


def test_bad_period_is_a_422_naming_the_field(stack: Stack):
    response = stack.api("GET", "/analytics/funnel?start=2026-05-02&end=2026-05-01", user="head")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "end"


def web(stack: Stack, username: str) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{stack.url}/login", data={"username": username,
                                                        "password": PASSWORD}, timeout=10)
    assert response.status_code == 200
    assert re.search(r'name="csrf_token"', response.text)
    return session


def test_with_analytics_down_the_page_says_unavailable_and_deals_still_work(stack: Stack):
    browser = web(stack, "head")
    assert browser.get(f"{stack.url}/analytics", timeout=10).status_code == 200
    stack.stop("analytics")
    try:
        page = browser.get(f"{stack.url}/analytics", timeout=15)
        assert page.status_code == 503 and "Отчёт сейчас недоступен" in page.text
        assert browser.get(f"{stack.url}/deals", timeout=10).status_code == 200
    finally:
        stack.start("analytics")
    stack.wait_healthy()
