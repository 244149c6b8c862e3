"""What the entry-point parts of the analytics service use of the service class (its
dependency providers and reference helpers), declared for the type checker, and the
request checks more than one part shares."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.analytics import winrate
from services.kit.errors import ValidationError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo


class AnalyticsPart:
    """The base of each ``<Part>Entrypoints`` class; ``AnalyticsService`` provides these."""

    if TYPE_CHECKING:
        db: Any
        config: Any
        deals: Any
        may: Any

        @property
        def tz(self) -> ZoneInfo: ...

        def _statuses(self) -> list[dict[str, Any]]: ...

        def _types(self) -> list[dict[str, Any]]: ...

    def _open_order(self) -> tuple[dict[str, str], list[str]]:
        """{status code: kind} and the open statuses in the funnel's order."""
        statuses = self._statuses()
        return ({str(s["code"]): str(s["kind"]) for s in statuses},
                winrate.open_order(statuses))


def slice_filters(filters: dict[str, Any] | None, people: dict[str, Any] | None,
                  known: tuple[str, ...]
                  ) -> tuple[dict[str, Any], dict[int, str], str | None]:
    """The filters of a pipeline or performance request checked: unknown names refused,
    the department one of ``people``'s.  Returns (filters, {user: department}, department)."""
    filters = dict(filters or {})
    unknown = set(filters) - set(known)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(f"Неизвестный фильтр: «{name}».", field=name,
                              key="filter.unknown", params={"field": name})
    departments = {int(k): (v or "") for k, v in (people or {}).items()}
    department = str(filters.get("department") or "") or None
    if department and department not in set(departments.values()):
        raise ValidationError(f"Неизвестный отдел: «{department}».", field="department",
                              key="filter.unknown_value",
                              params={"field": "department", "value": department})
    return filters, departments, department
