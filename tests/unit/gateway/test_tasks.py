"""My tasks: reminders grouped by when they are due, and the calendar's days."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from gateway.sections.tasks import by_day, calendar_days, group_reminders, shift

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 2, 15, 0, tzinfo=MSK)  # a Wednesday


def reminder(rid: int, due: str) -> dict:
    return {"id": rid, "due_at": due, "text": f"r{rid}", "deal_id": 1}


def test_reminders_fall_into_overdue_today_this_week_and_later_in_company_days():
    groups = group_reminders([
        reminder(1, "2026-12-02T11:00:00+00:00"),  # 14:00 MSK: an hour ago
        reminder(2, "2026-12-02T20:30:00+00:00"),  # 23:30 MSK: still today
        reminder(3, "2026-12-02T21:30:00+00:00"),  # 00:30 MSK on Thursday
        reminder(4, "2026-12-06T20:00:00+00:00"),  # Sunday 23:00 MSK
        reminder(5, "2026-12-06T21:30:00+00:00"),  # Monday 00:30 MSK: next week
        reminder(6, "2026-11-01T09:00:00+00:00"),
    ], NOW, MSK)
    assert {k: [r["id"] for r in v] for k, v in groups.items()} == {
        "overdue": [6, 1], "today": [2], "week": [3, 4], "later": [5]}


def test_a_week_starts_on_monday_and_a_month_covers_whole_weeks():
    [week] = calendar_days("week", date(2026, 12, 2))
    assert week[0] == date(2026, 11, 30) and week[-1] == date(2026, 12, 6)
    month = calendar_days("month", date(2026, 12, 15))
    assert month[0][0] == date(2026, 11, 30) and month[-1][-1] == date(2027, 1, 3)
    assert all(len(w) == 7 for w in month) and len(month) == 5


def test_paging_moves_by_a_week_or_to_the_first_of_the_next_or_previous_month():
    assert shift("week", date(2026, 12, 2), 1) == date(2026, 12, 9)
    assert shift("month", date(2026, 12, 31), 1) == date(2027, 1, 1)
    assert shift("month", date(2026, 12, 15), -1) == date(2026, 11, 1)


def test_the_calendar_puts_reminders_on_their_local_day_and_payments_on_theirs():
    days = by_day([reminder(1, "2026-12-02T21:30:00+00:00")],
                  [{"id": 9, "due_date": "2026-12-04", "deal_id": 1}], MSK)
    assert [(e["kind"], e["at"]) for e in days[date(2026, 12, 3)]] == [("reminder", "00:30")]
    assert [e["kind"] for e in days[date(2026, 12, 4)]] == ["payment"]
