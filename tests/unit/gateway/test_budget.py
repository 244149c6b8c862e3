"""One budget: expected amount, the plan's budget, paid, outstanding; one card amount."""
from __future__ import annotations

from decimal import Decimal

from gateway.deal_page import budget_summary


def deal(**fields):
    return {"expected_amount": "0.00", "budget": "0.00", "paid": "0.00", "outstanding": "0.00",
            "has_plan": False, "calculation": None, "currency": "RUB", **fields}


def test_without_a_plan_the_card_shows_the_expected_amount_and_no_budget():
    summary = budget_summary(deal(expected_amount="300000.00"))
    assert summary["amount"] == Decimal("300000.00")
    assert summary["budget"] is None and summary["paid"] is None
    assert summary["source"] == "typed" and summary["gap"] is None


def test_the_calculators_total_is_named_as_the_source_of_the_expected_amount():
    summary = budget_summary(deal(expected_amount="822505.00",
                                  calculation={"total": "822505.00"}))
    assert summary["source"] == "calculation"


def test_with_a_plan_the_card_shows_the_budget_and_the_gap_is_reported():
    summary = budget_summary(deal(expected_amount="822505.00", budget="120000.00",
                                  has_plan=True, paid="20000.00", outstanding="100000.00",
                                  calculation={"total": "822505.00"}))
    assert summary["amount"] == Decimal("120000.00")
    assert summary["gap"] == Decimal("702505.00")
    assert summary["paid"] == "20000.00" and summary["outstanding"] == "100000.00"


def test_a_plan_that_matches_the_calculation_reports_no_gap():
    summary = budget_summary(deal(expected_amount="150000.50", budget="150000.50",
                                  has_plan=True, calculation={"total": "150000.50"}))
    assert summary["gap"] is None and summary["amount"] == Decimal("150000.50")


def test_a_plan_with_no_expected_amount_is_not_a_disagreement():
    summary = budget_summary(deal(budget="150000.50", has_plan=True))
    assert summary["gap"] is None and summary["amount"] == Decimal("150000.50")
