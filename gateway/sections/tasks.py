"""My tasks: the user's reminders across deals and clients, grouped by when they are due
(overdue, today, this week, later), completed from the list, and a week or month calendar
of reminders and due payments.  The head of sales sees the team's."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, g, redirect, render_template, request, url_for

from gateway.aggregate import call
from gateway.auth import section
from gateway.formatting import current_zone, moment
from gateway.i18n import extend
from gateway.remote import remote, remote_many, user_names
from services.kit import clock
from services.kit.errors import CrmError

bp = Blueprint("tasks", __name__)

GROUPS = ("overdue", "today", "week", "later")
VIEWS = ("list", "week", "month")
TEAM_ROLES = {"head", "admin"}

extend({
    "ru": {
        "section.tasks": "Мои задачи", "tasks.team": "Задачи команды",
        "tasks.overdue": "Просрочены", "tasks.today": "Сегодня", "tasks.week": "На этой неделе",
        "tasks.later": "Позже", "tasks.none": "Задач нет", "tasks.done": "Выполнено",
        "tasks.view.list": "Список", "tasks.view.week": "Неделя", "tasks.view.month": "Месяц",
        "tasks.prev": "← Раньше", "tasks.next": "Позже →", "tasks.payment": "Платёж",
        "tasks.weekdays": "Пн Вт Ср Чт Пт Сб Вс", "tasks.assignee": "Кому",
        "tasks.calendar": "Календарь задач и платежей",
    },
    "en": {
        "section.tasks": "My tasks", "tasks.team": "Team tasks",
        "tasks.overdue": "Overdue", "tasks.today": "Today", "tasks.week": "This week",
        "tasks.later": "Later", "tasks.none": "No tasks", "tasks.done": "Done",
        "tasks.view.list": "List", "tasks.view.week": "Week", "tasks.view.month": "Month",
        "tasks.prev": "← Earlier", "tasks.next": "Later →", "tasks.payment": "Payment",
        "tasks.weekdays": "Mo Tu We Th Fr Sa Su", "tasks.assignee": "For",
        "tasks.calendar": "Calendar of tasks and payments",
    },
})


def group_reminders(reminders: list[dict[str, Any]], now: datetime,
                    zone: ZoneInfo) -> dict[str, list[dict[str, Any]]]:
    """Open reminders by when they are due, in the company's days: before now, later
    today, by the end of this week (Sunday), after it.  Soonest first within a group."""
    today = now.astimezone(zone).date()
    week_end = today + timedelta(days=6 - today.weekday())
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in GROUPS}
    for reminder in sorted(reminders, key=lambda r: str(r["due_at"])):
        due = moment(reminder["due_at"], zone)
        if due is None:
            continue
        if due < now:
            groups["overdue"].append(reminder)
        elif due.date() == today:
            groups["today"].append(reminder)
        elif due.date() <= week_end:
            groups["week"].append(reminder)
        else:
            groups["later"].append(reminder)
    return groups


def calendar_days(view: str, anchor: date) -> list[list[date]]:
    """Weeks (Monday first) of the week or the month around ``anchor``."""
    if view == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return [[start + timedelta(days=i) for i in range(7)]]
    first = anchor.replace(day=1)
    start = first - timedelta(days=first.weekday())
    next_month = (first + timedelta(days=32)).replace(day=1)
    weeks = []
    while start < next_month:
        weeks.append([start + timedelta(days=i) for i in range(7)])
        start += timedelta(days=7)
    return weeks


def shift(view: str, anchor: date, step: int) -> date:
    """The anchor of the previous (-1) or next (+1) week or month."""
    if view == "week":
        return anchor + timedelta(days=7 * step)
    first = anchor.replace(day=1)
    if step > 0:
        return (first + timedelta(days=32)).replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def by_day(reminders: list[dict[str, Any]], payments: list[dict[str, Any]],
           zone: ZoneInfo) -> dict[date, list[dict[str, Any]]]:
    """Calendar entries per local day: reminders at their time, payments on their day."""
    days: dict[date, list[dict[str, Any]]] = {}
    for reminder in reminders:
        due = moment(reminder["due_at"], zone)
        if due is not None:
            days.setdefault(due.date(), []).append({"kind": "reminder", "item": reminder,
                                                    "at": due.strftime("%H:%M")})
    for payment in payments:
        day = date.fromisoformat(str(payment["due_date"])[:10])
        days.setdefault(day, []).append({"kind": "payment", "item": payment, "at": ""})
    return days


def _anchor() -> date:
    try:
        return date.fromisoformat(request.args.get("day", ""))
    except ValueError:
        return clock.now(current_zone()).date()


@bp.route("/tasks")
@section("deals")
def index() -> Any:
    view = request.args.get("view", "list") if request.args.get("view") in VIEWS else "list"
    team = bool(set(g.user.roles) & TEAM_ROLES)
    zone = current_zone()
    anchor = _anchor()
    weeks = calendar_days(view, anchor) if view != "list" else []
    mine = {} if team else {"user_id": g.user.id, "roles": list(g.user.roles)}
    calls = {"reminders": call("deals", "list_reminders", limit=1000, **mine)}
    if weeks:
        calls["payments"] = call("payments", "due_payments", weeks[0][0].isoformat(),
                                 weeks[-1][-1].isoformat(),
                                 manager_id=None if team else g.user.id)
    panels = remote_many(calls)
    if not panels["reminders"].ok:
        raise panels["reminders"].error  # type: ignore[misc]
    reminders = panels["reminders"].data
    payments = panels["payments"].data if "payments" in panels and panels["payments"].ok else []
    now = clock.now(zone)
    return render_template(
        "tasks/index.html", view=view, team=team, groups=group_reminders(reminders, now, zone),
        weeks=weeks, days=by_day(reminders, payments, zone), anchor=anchor, today=now.date(),
        prev_day=shift(view, anchor, -1), next_day=shift(view, anchor, 1),
        payments_ok="payments" not in panels or panels["payments"].ok,
        managers=user_names(), error=request.args.get("error"))


@bp.route("/tasks/<int:reminder_id>/complete", methods=["POST"])
@section("deals")
def complete(reminder_id: int) -> Any:
    try:
        remote("deals", "complete_reminder", reminder_id, user_id=g.user.id)
    except CrmError as exc:
        return redirect(url_for("tasks.index", error=exc.message))
    return redirect(url_for("tasks.index", view=request.form.get("view") or None))
