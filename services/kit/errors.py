"""Typed errors that cross service boundaries.

Every error a service raises on purpose is a ``CrmError``.  Its ``to_dict`` form travels
inside nameko's RPC reply (as the exception's single argument), so the caller — another
service or the gateway — rebuilds the same type and the gateway maps it to one HTTP status.
"""
from __future__ import annotations

from typing import Any

from nameko.exceptions import deserialize_to_instance


class CrmError(Exception):
    """Base of all expected, user-facing errors."""

    http_status = 500
    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None, **more: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {**(details or {}), **more}
        # nameko sends ``args`` over the wire and rebuilds the exception as cls(*args),
        # so the details must be part of them.
        self.args = (message, self.details)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}

    def __str__(self) -> str:
        return self.message


class NotFound(CrmError):
    http_status = 404
    code = "not_found"


class ValidationError(CrmError):
    """Bad input.  ``field`` names what is wrong (dotted path for nested input)."""

    http_status = 422
    code = "validation_error"

    def __init__(self, message: str, field: str | dict[str, Any] | None = None,
                 **more: Any) -> None:
        details = dict(field) if isinstance(field, dict) else {"field": field}
        super().__init__(message, details, **more)

    @property
    def field(self) -> str | None:
        return self.details.get("field")


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
    f"{cls.__module__}.{cls.__name__}": deserialize_to_instance(cls)
    for cls in (CrmError, NotFound, ValidationError, Conflict, Forbidden, RemoteTimeout,
                ServiceUnavailable)
}


def error_from_reply(error: dict[str, Any]) -> Exception:
    """Rebuild an exception from nameko's serialised form (``exc_path``/``exc_args``)."""
    cls = ERROR_TYPES.get(error.get("exc_path", ""))
    if cls is not None:
        return cls(*error.get("exc_args", ()))
    return RemoteFailure(error.get("exc_type", "Exception"), error.get("value", ""))


class RemoteFailure(Exception):
    """An unexpected error in another service: a bug there, never shown raw to a user."""

    def __init__(self, exc_type: str, value: str) -> None:
        super().__init__(f"{exc_type}: {value}")
        self.exc_type = exc_type
        self.value = value
