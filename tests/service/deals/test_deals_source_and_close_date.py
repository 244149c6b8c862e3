"""A deal's planned close date and source on a real broker and database: set at creation,
the date edited with history and event, both in get_deal, deal_page and
deals_with_history."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from services.deals.models import Deal, DealHistory
from services.kit.errors import ValidationError

UTM = {"utm_source": "yandex", "utm_campaign": "зима", "page_url": "https://example.ru/a",
       "form_id": "3"}


def test_source_and_close_date_are_kept_published_and_the_date_is_edited(
        deals, directory, spy, session_of):
    created = spy("deals", "deal_created")
    updated = spy("deals", "deal_updated")
    client = directory.client("ООО «Ромашка»")
    deal = deals.call("deals", "create_deal", {
        "name": "С сайта", "client_id": client["id"], "source": "web_form",
        "source_detail": UTM, "planned_close_on": "2026-12-25"}, user_id=7)
    assert (deal["source"], deal["source_detail"], deal["planned_close_on"]) == (
        "web_form", UTM, "2026-12-25")
    [event] = created.wait_for("deal_created")
    assert event["data"]["source"] == "web_form" and event["data"]["source_detail"] == UTM
    assert event["data"]["planned_close_on"] == "2026-12-25"

    changed = deals.call("deals", "update_deal", deal["id"],
                         {"planned_close_on": "2027-01-10"}, user_id=3,
                         version=deal["version"])
    assert changed["planned_close_on"] == "2027-01-10" and changed["source"] == "web_form"
    [event] = updated.wait_for("deal_updated")
    assert event["data"]["changes"] == {"planned_close_on": {"from": "2026-12-25",
                                                             "to": "2027-01-10"}}
    with session_of("deals") as db:
        rows = db.execute(select(DealHistory.old_value, DealHistory.new_value).where(
            DealHistory.deal_id == deal["id"], DealHistory.field == "planned_close_on")).all()
    assert [tuple(r) for r in rows] == [("2026-12-25", "2027-01-10")]

    page = deals.call("deals", "deal_page", deal["id"])
    assert page["planned_close_on"] == "2027-01-10" and page["source_detail"] == UTM
    assert any(h["field"] == "planned_close_on" for h in page["history"])
    [item] = deals.call("deals", "deals_with_history")["items"]
    assert (item["planned_close_on"], item["source"], item["source_detail"]) == (
        "2027-01-10", "web_form", UTM)
    cleared = deals.call("deals", "update_deal", deal["id"], {"planned_close_on": None},
                         user_id=3)
    assert cleared["planned_close_on"] is None


def test_a_deal_without_a_source_is_manual_and_the_source_cannot_be_edited(
        deals, directory, session_of):
    client = directory.client("АО «Ветер»")
    deal = deals.call("deals", "create_deal", {"name": "Звонок", "client_id": client["id"]},
                      user_id=7)
    assert (deal["source"], deal["source_detail"], deal["planned_close_on"]) == (
        "manual", None, None)
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "update_deal", deal["id"], {"source": "api"}, user_id=7)
    assert refused.value.field == "source"
    with pytest.raises(ValidationError) as refused:
        deals.call("deals", "create_deal", {"name": "X", "client_id": client["id"],
                                            "source_detail": {"gclid": "1"}}, user_id=7)
    assert refused.value.field == "source_detail.gclid"
    with session_of("deals") as db:
        assert db.scalars(select(Deal.source)).all() == ["manual"]
