"""Entry points of manager performance (MISSION A7): the reminders and calls it counts,
and the figures per manager (activity.py: the rows; performance.py: the maths)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.analytics import activity, domain, performance_store, store
from services.analytics.parts import AnalyticsPart, slice_filters
from services.kit import clock, parse, permissions
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Forbidden, ValidationError
from services.kit.parse import identifier as parse_identifier


class ManagersEntrypoints(AnalyticsPart):
    @consumes("deals", "reminder_created")
    def on_task_created(self, event: Envelope) -> None:
        activity.task_created(self.db.session, event.data)

    @consumes("deals", "reminder_completed")
    def on_task_completed(self, event: Envelope) -> None:
        activity.task_completed(self.db.session, event.data)

    @consumes("telephony", "call_finished")
    def on_call_finished(self, event: Envelope) -> None:
        activity.call_seen(self.db.session, event.data)

    @consumes("telephony", "call_updated")
    def on_call_updated(self, event: Envelope) -> None:
        activity.call_seen(self.db.session, event.data)

    @rpc
    def manager_performance(self, filters: dict[str, Any] | None = None,
                            viewer: dict[str, Any] | None = None,
                            people: dict[str, Any] | None = None) -> dict[str, Any]:
        """Per manager over a period (performance.py), ranked; heads and administrators
        only.  ``filters``: ``start``, ``end`` (dates, whole days in ``TIMEZONE``; default
        the last 30 days), ``department`` (its members only)."""
        permissions.require_roles(self.may.actor, domain.HEAD_ROLES, "manager performance")
        if viewer is not None and not domain.HEAD_ROLES & set(viewer.get("roles") or []):
            raise Forbidden("manager performance: only for admin, head",
                            key="permission.heads_only")
        filters, departments, department = slice_filters(filters, people,
                                                  ("start", "end", "department",
                                                   "client_group_id"))
        group = parse_identifier(filters.get("client_group_id") or None, "client_group_id",
                                 required=False)
        today = clock.now(self.tz).date()
        end_day = parse.day(filters.get("end") or today.isoformat(), "end")
        start_day = parse.day(filters.get("start")
                              or (end_day - timedelta(days=29)).isoformat(), "start")
        if end_day < start_day:
            raise ValidationError("Конец периода раньше начала.", field="end",
                                  key="period.end_before_start",
                                  params={"start": start_day.isoformat(),
                                          "end": end_day.isoformat()})
        if (end_day - start_day).days + 1 > domain.MAX_PERIOD_DAYS:
            raise ValidationError("Период длиннее пяти лет.", field="start",
                                  key="period.too_long", params={"max_years": 5})
        managers = ({m for m, d in departments.items() if d == department}
                    if department else None)
        start = datetime.combine(start_day, datetime.min.time(), self.tz)
        end = datetime.combine(end_day + timedelta(days=1), datetime.min.time(), self.tz)
        kinds, _ = self._open_order()
        # summed in one statement (performance_store.py); activity.figures is the reference
        rows = performance_store.figures(self.db.session, kinds, start, end, store.utcnow(),
                                         managers, group)
        return {"filters": {"start": start_day, "end": end_day, "department": department,
                            "client_group_id": group},
                "managers": rows}

