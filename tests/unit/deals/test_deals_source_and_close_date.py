"""A deal's planned close date and its source (services/deals/domain.py)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from services.deals import domain
from services.kit.errors import ValidationError


def new(**extra):
    return domain.validate_new_deal({"name": "Поставка", "client_id": 5, **extra})


def test_a_new_deal_is_manual_without_detail_or_close_date_unless_told():
    cleaned = new()
    assert (cleaned["source"], cleaned["source_detail"], cleaned["planned_close_on"]) == (
        "manual", None, None)
    cleaned = new(source="web_form", planned_close_on="2026-12-31",
                  source_detail={"utm_source": " yandex ", "form_id": "7", "referrer": ""})
    assert cleaned["source"] == "web_form" and cleaned["planned_close_on"] == date(2026, 12, 31)
    # blank values are dropped, text is stripped
    assert cleaned["source_detail"] == {"utm_source": "yandex", "form_id": "7"}


@pytest.mark.parametrize(("data", "field", "key"), [
    ({"source": "fax"}, "source", "choice.invalid"),
    ({"planned_close_on": "31.13.2026"}, "planned_close_on", "date.invalid"),
    ({"source_detail": {"utm_id": "x"}}, "source_detail.utm_id", "deal.source_detail_unknown"),
    ({"source_detail": {"page_url": "x" * 501}}, "source_detail.page_url", "text.too_long"),
    ({"source_detail": {"lead_id": 12}}, "source_detail.lead_id", "text.invalid"),
    ({"source_detail": ["utm_source"]}, "source_detail", "object.invalid"),
])
def test_a_bad_source_or_date_is_refused_naming_the_field(data, field, key):
    with pytest.raises(ValidationError) as refused:
        new(**data)
    assert (refused.value.field, refused.value.key) == (field, key)


def test_the_close_date_is_editable_and_clearable_but_the_source_is_not():
    assert domain.validate_deal_changes({"planned_close_on": "2027-01-15"}) == {
        "planned_close_on": date(2027, 1, 15)}
    assert domain.validate_deal_changes({"planned_close_on": ""}) == {"planned_close_on": None}
    for fixed in ("source", "source_detail"):
        with pytest.raises(ValidationError) as refused:
            domain.validate_deal_changes({fixed: "api"})
        assert refused.value.field == fixed and refused.value.key == "deal.field_fixed"


def test_a_new_close_date_is_one_change_with_from_and_to():
    deal = SimpleNamespace(id=1, name="X", client_id=5, client_name="К", manager_id=7,
                           type_id=None, amount=Decimal("0.00"), currency="RUB", version=3,
                           probability=None, planned_close_on=date(2026, 12, 1),
                           loss_reason_id=None)
    cleaned = {"planned_close_on": date(2026, 12, 20)}
    diff = domain.changes_between(domain.editable_fields(deal, Decimal("0.00")), cleaned)
    result = domain.edit(deal, diff, cleaned, user_id=2)
    assert result.changes == {"planned_close_on": {"from": date(2026, 12, 1),
                                                   "to": date(2026, 12, 20)}}
    assert result.fields["planned_close_on"] == date(2026, 12, 20)
    assert result.fields["version"] == 4
