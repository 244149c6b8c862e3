"""A form that failed comes back with every error next to its field and what was typed.

A view catches the error and renders the same page with ``form=failed(...)`` (status
422) instead of redirecting, so nothing the user typed is lost::

    try:
        ...
    except CrmError as exc:
        return index(form=failed("new-deal", exc, {"client_id": "client_query"})), 422

Templates use the macros of ``_form.html``: ``field_errors(form, "name")`` beside an input,
``form_errors(form)`` for what belongs to no field, ``form.value("name")`` to refill it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import request

from gateway.messages import field_errors
from services.kit.errors import CrmError, ValidationError


@dataclass
class Form:
    id: str = ""
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    shown: bool = False  # set while rendering, once the page printed the form's errors

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def error(self, name: str) -> list[str]:
        return self.errors.get(name, [])

    def invalid(self, name: str) -> bool:
        return bool(self.errors.get(name))

    def is_(self, form_id: str) -> bool:
        return self.id == form_id

    def mark_shown(self) -> str:
        self.shown = True
        return ""

    def for_(self, form_id: str) -> Form:
        """This form if it is ``form_id``, else the untouched one: a page with several forms
        asks each its own state, and an untouched form answers every default."""
        return self if self.id == form_id else NO_FORM

    def value_list(self, name: str) -> list[str]:
        """Every value posted under ``name`` (rows of a table form)."""
        return self.lists.get(name, [])

    def rows(self, *names: str) -> list[dict[str, str]]:
        """The rows of a table form as typed: ``rows("line_name", "line_price")`` gives
        one dict per posted row, keyed by the names without their common prefix."""
        columns = {n: self.value_list(n) for n in names}
        count = max((len(v) for v in columns.values()), default=0)
        return [{n.split("_", 1)[-1]: (v[i] if i < len(v) else "") for n, v in columns.items()}
                for i in range(count)]


NO_FORM = Form()


def status_of(exc: CrmError) -> int:
    """A refused form answers 422, or the error's own status when it says more (409 when
    someone saved first); never a 5xx for what the user can act on."""
    return exc.http_status if 400 <= exc.http_status < 500 else 422


def failed(form_id: str, exc: CrmError, inputs: Mapping[str, str] | None = None,
           names: tuple[str, ...] = ()) -> Form:
    """The state of form ``form_id`` after ``exc``: the posted values and the rendered
    errors per input.  ``inputs`` maps an error's field to the input that shows it (the
    service says ``client_id``, the page has a picker ``client_query``); ``names``: the
    inputs the form has (an error naming another field is shown for the whole form)."""
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    form = Form(form_id, values, {k: v for k, v in request.form.lists() if k != "csrf_token"})
    if not isinstance(exc, ValidationError):
        form.general.append(exc.message)
        return form
    known = set(names) | set(values) | set((inputs or {}).values())
    for name, messages in field_errors(exc).items():
        shown = shown_as(name, inputs or {})
        if shown in known and shown:
            form.errors.setdefault(shown, []).extend(messages)
        else:
            form.general.extend(messages)
    return form


def shown_as(name: str, inputs: Mapping[str, str]) -> str:
    """The input that shows an error of field ``name``: its own mapping, else the mapping
    of its nearest dotted parent (``contacts.0.phones`` covers ``contacts.0.phones.1``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        shown = inputs.get(".".join(parts[:end]))
        if shown is not None:
            return shown
    return name
