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
    errors: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def error(self, name: str) -> list[str]:
        return self.errors.get(name, [])

    def invalid(self, name: str) -> bool:
        return bool(self.errors.get(name))

    def is_(self, form_id: str) -> bool:
        return self.id == form_id


NO_FORM = Form()


def failed(form_id: str, exc: CrmError, inputs: Mapping[str, str] | None = None,
           names: tuple[str, ...] = ()) -> Form:
    """The state of form ``form_id`` after ``exc``: the posted values and the rendered
    errors per input.  ``inputs`` maps an error's field to the input that shows it (the
    service says ``client_id``, the page has a picker ``client_query``); ``names``: the
    inputs the form has (an error naming another field is shown for the whole form)."""
    values = {k: v for k, v in request.form.items() if k != "csrf_token"}
    form = Form(form_id, values)
    if not isinstance(exc, ValidationError):
        form.general.append(exc.message)
        return form
    known = set(names) | set(values) | set((inputs or {}).values())
    for name, messages in field_errors(exc).items():
        shown = (inputs or {}).get(name, name)
        if shown in known and shown:
            form.errors.setdefault(shown, []).extend(messages)
        else:
            form.general.extend(messages)
    return form
