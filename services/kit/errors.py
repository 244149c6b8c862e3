"""Typed errors that cross service boundaries.

Every error a service raises on purpose is a ``CrmError``.  Its ``to_dict`` form travels
inside nameko's RPC reply (as the exception's single argument), so the caller — another
service or the gateway — rebuilds the same type and the gateway maps it to one HTTP status.
"""
from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Base of all expected, user-facing errors."""

    http_status = 500
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CrmError":
        data = dict(data)
        data.pop("code", None)
        message = data.pop("message", "")
        return cls(message, **data)

    def __str__(self) -> str:
        return self.message


class NotFound(CrmError):
    http_status = 404
    code = "not_found"


class ValidationError(CrmError):
    """Bad input.  ``field`` names what is wrong (dotted path for nested input)."""

    http_status = 422
    code = "validation_error"

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class Conflict(CrmError):
    """The write lost a race or breaks a uniqueness rule (stale version, duplicate)."""

    http_status = 409
    code = "conflict"


class Forbidden(CrmError):
    http_status = 403
    code = "forbidden"


class RemoteTimeout(CrmError):
    """Another service did not answer in time; the caller decides what that means."""

    http_status = 504
    code = "timeout"


class ServiceUnavailable(CrmError):
    http_status = 503
    code = "unavailable"


ERROR_TYPES: dict[str, type[CrmError]] = {
    cls.__name__: cls
    for cls in (CrmError, NotFound, ValidationError, Conflict, Forbidden, RemoteTimeout,
                ServiceUnavailable)
}
