"""The one error a statement parser raises on purpose."""
from __future__ import annotations

import re
from typing import Any

from services.kit.errors import ValidationError

# Where a parser points: "line 47", "line 3, column 9", "Stmt[1]/Ntry[3]/Amt"
_LINE = re.compile(r"line ([0-9]+)")
GENERIC = "statement.invalid"  # no key of its own: the location and the parser's reason
GENERIC_LINE = "statement.line.invalid"


class StatementError(ValidationError):
    """The file is not a statement we can trust; nothing from it should be imported.

    ``field`` is where the problem is ("line 14", "Stmt[1]/Ntry[3]/Amt") so the user can
    open the file and see it; ``key`` and ``params`` say what is wrong in words the gateway
    translates ("statement.line.amount", ``{"line": 47, "field": "Сумма", "value": "12,3x"}``).
    The constructor keeps ValidationError's ``(message, field)`` shape because nameko
    rebuilds errors as ``cls(*args)``.
    """

    def __init__(self, message: str, field: str | dict[str, Any] | None = None,
                 **more: Any) -> None:
        super().__init__(message, field, **more)

    @classmethod
    def at(cls, location: str, reason: str, key: str | None = None,
           **params: Any) -> StatementError:
        """An error at ``location``.  Every error names its line when it has one
        (``params["line"]``, a number), so a page can say "строка 47" in its language."""
        found = _LINE.match(location)
        where: dict[str, Any] = {"location": location, "reason": reason}
        if found:
            where["line"] = int(found[1])
        return cls(f"{location}: {reason}" if location else reason, field=location,
                   key=key or (GENERIC_LINE if found else GENERIC),
                   params={**where, **params}, reason=reason)

    @property
    def location(self) -> str | None:
        return self.field

    @property
    def reason(self) -> str:
        return str(self.details.get("reason") or self.message)
