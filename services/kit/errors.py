"""Typed errors that cross service boundaries.

Every error a service raises on purpose is a ``CrmError``.  Its details travel inside
nameko's RPC reply as one JSON string (nameko would turn every number in them into text),
so the caller — another service or the gateway — rebuilds the same type with the same
details and the gateway maps it to one HTTP status.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from nameko.exceptions import deserialize_to_instance


class CrmError(Exception):
    """Base of all expected, user-facing errors."""

    http_status = 500
    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None, **more: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {**_from_wire(details), **more}

    # nameko sends ``args`` over the wire and rebuilds the exception as cls(*args), so the
    # details must be part of them; as JSON, so 200 stays 200 and not "200".  Computed, so
    # details added after construction travel too.
    @property  # type: ignore[override]
    def args(self) -> tuple[Any, ...]:
        return (self.message, {WIRE: json.dumps(self.details, default=str, ensure_ascii=False)})

    @args.setter
    def args(self, value: tuple[Any, ...]) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}

    def __str__(self) -> str:
        return self.message


WIRE = "__json__"


def _from_wire(details: dict[str, Any] | None) -> dict[str, Any]:
    if details and set(details) == {WIRE} and isinstance(details[WIRE], str):
        loaded = json.loads(details[WIRE])
        return loaded if isinstance(loaded, dict) else {}
    return dict(details or {})


class NotFound(CrmError):
    http_status = 404
    code = "not_found"


class ValidationError(CrmError):
    """Bad input.

    ``message`` is a Russian sentence (logs, callers without catalogs); ``field`` names the
    input (dotted path for nested input: ``lines.3.unit_price``); ``key`` is the stable
    message key the gateway renders through its catalogs (``"id.invalid"``); ``params``
    are the values that message needs.  Several errors of one input travel together as
    ``ValidationError.many([...])``: the first is the error itself, all of them are in
    ``errors``.
    """

    http_status = 422
    code = "validation_error"

    def __init__(self, message: str, field: str | dict[str, Any] | None = None, *,
                 key: str | None = None, params: dict[str, Any] | None = None,
                 **more: Any) -> None:
        if isinstance(field, dict):  # rebuilt from the wire: the details themselves
            super().__init__(message, field, **more)
            return
        details: dict[str, Any] = {"field": field}
        if key is not None:
            details["key"] = key
        if params:
            details["params"] = dict(params)
        super().__init__(message, details, **more)

    @property
    def field(self) -> str | None:
        return self.details.get("field")

    @property
    def key(self) -> str | None:
        return self.details.get("key")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.details.get("params") or {})

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every error of the input as ``{field, key, params, message}`` (at least one)."""
        if self.details.get("errors"):
            return [dict(e) for e in self.details["errors"]]
        return [self.item()]

    def item(self) -> dict[str, Any]:
        return {"field": self.field, "key": self.key, "params": self.params,
                "message": self.message}

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors, their fields under ``prefix`` (``contacts.0`` + ``phones.1``)."""
        items = [{**e, "field": f"{prefix}.{e['field']}" if e.get("field") else prefix}
                 for e in self.errors]
        return ValidationError.many(items)

    @classmethod
    def many(cls, errors: Iterable[ValidationError | dict[str, Any]]) -> ValidationError:
        """One error carrying several (all the wrong fields of a form at once)."""
        items: list[dict[str, Any]] = []
        for error in errors:
            items.extend(error.errors if isinstance(error, ValidationError) else [dict(error)])
        if not items:
            raise ValueError("ValidationError.many needs at least one error")
        first = items[0]
        exc = cls("; ".join(str(e.get("message", "")) for e in items), first.get("field"),
                  key=first.get("key"), params=first.get("params"))
        if len(items) > 1:
            exc.details["errors"] = items
        return exc


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
