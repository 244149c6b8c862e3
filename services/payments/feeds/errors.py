"""The one error a statement parser raises on purpose."""
from __future__ import annotations

from typing import Any

from services.kit.errors import ValidationError


class StatementError(ValidationError):
    """The file is not a statement we can trust; nothing from it should be imported.

    ``field`` is where the problem is ("line 14", "Stmt[1]/Ntry[3]/Amt") so the user can
    open the file and see it.  The constructor keeps ValidationError's ``(message, field)``
    shape because nameko rebuilds errors as ``cls(*args)``.
    """

    def __init__(self, message: str, field: str | dict[str, Any] | None = None,
                 **more: Any) -> None:
        super().__init__(message, field, **more)

    @classmethod
    def at(cls, location: str, reason: str) -> StatementError:
        return cls(f"{location}: {reason}" if location else reason, field=location,
                   reason=reason)

    @property
    def location(self) -> str | None:
        return self.field

    @property
    def reason(self) -> str:
        return str(self.details.get("reason") or self.message)
