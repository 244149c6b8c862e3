"""The whole stack as processes: the deal page and the kanban go on working when analytics
is down, with the probability panel marked unavailable and no chips on the cards."""
from __future__ import annotations

import requests

from tests.e2e.test_skeleton import browser_login
from tests.support.stack import Stack


def test_deal_page_and_board_without_analytics(stack: Stack):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Без аналитики»", "kind": "person"})
    deal = stack.ok("POST", "/deals", json={"name": "Без оценки", "client_id": client["id"]})
    page = stack.ok("GET", f"/deals/{deal['id']}")
    assert "probability" not in page["unavailable"]
    assert page["probability"]["deal_id"] == deal["id"]
    stack.stop("analytics")
    try:
        page = stack.ok("GET", f"/deals/{deal['id']}")
        assert set(page["unavailable"]) == {"probability"}
        assert page["probability"] is None and page["deal"]["name"] == "Без оценки"
        cookies = browser_login(stack)
        html = requests.get(f"{stack.url}/deals/{deal['id']}", timeout=10, cookies=cookies)
        assert html.status_code == 200 and 'data-panel="probability"' in html.text
        board = requests.get(f"{stack.url}/deals?mode=kanban", timeout=10, cookies=cookies)
        assert board.status_code == 200 and "deal-card" in board.text
        assert "deal-prob" not in board.text
        assert "<!--probability:" not in board.text  # each card's mark taken out unfilled
    finally:
        stack.start("analytics")
