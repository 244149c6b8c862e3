"""A manager in a real Chromium sees the win probability of an open deal on its page and
on its kanban card, with the factors that move it in plain Russian."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack, wait_for

pytestmark = pytest.mark.browser


def test_deal_page_and_card_show_the_probability_and_its_factors(stack: Stack, login, page):
    client = stack.ok("POST", "/clients", json={"name": "ООО «Прогноз»", "kind": "person"})
    reason = stack.ok("GET", "/loss-reasons")[0]

    def deal(name: str, amount: str) -> dict:
        return stack.ok("POST", "/deals", json={"name": name, "client_id": client["id"],
                                                "expected_amount": amount})

    # small deals are won, big ones lost: the amount is what tells them apart
    for i in range(8):
        stack.ok("POST", f"/deals/{deal(f'Малая {i}', '2500')['id']}/status",
                 json={"status": "won"})
        stack.ok("POST", f"/deals/{deal(f'Крупная {i}', '500000')['id']}/status",
                 json={"status": "lost", "loss_reason_id": reason["id"]})
    open_deal = deal("Прогнозная сделка", "3000")
    estimate = wait_for(lambda: (stack.ok("GET", f"/deals/{open_deal['id']}").get(
        "probability") or {}).get("percent") and stack.ok(
        "GET", f"/deals/{open_deal['id']}")["probability"], timeout=30,
        message="an estimate for the open deal")
    assert 1 <= estimate["percent"] <= 99
    amount = next(f for f in estimate["factors"] if f["feature"] == "amount")
    assert amount["value"] == "0-10000" and amount["points"] > 0

    login("anna")
    page.goto(f"{stack.url}/deals/{open_deal['id']}")
    expect(page.locator("#probability-percent")).to_have_text(f"{estimate['percent']} %")
    factors = page.locator("#probability-factors li")
    expect(factors.filter(has_text="сумма «0–10\u00a0000 ₽»")).to_have_text(
        re.compile(r"^сумма «0–10\u00a0000 ₽»: \+\d+ п\.п\.$"))
    assert factors.count() == len(estimate["factors"])

    page.goto(f"{stack.url}/deals?mode=kanban")
    chip = page.locator(f'.deal-card[data-id="{open_deal["id"]}"] .deal-prob')
    expect(chip).to_have_text(f"{estimate['percent']} %")
    assert "сумма «0–10\u00a0000 ₽»" in (chip.get_attribute("title") or "")
