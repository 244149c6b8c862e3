"""Checks every request passes before any view runs, so no handler can forget them.

- the URL is at most ``MAX_URL_BYTES`` (414, JSON for the API);
- an ``<int:...>`` path id fits BIGINT (422 naming the parameter);
- no query value, form value or JSON string holds NUL or a lone surrogate, no JSON number is beyond
  BIGINT or infinite ("1e309"), no JSON is nested deeper than ``MAX_DEPTH`` (422 naming
  the field, as a dotted path);
- bodies over ``MAX_CONTENT_LENGTH`` are a 413 that names the limit (``app.py``).
"""
from __future__ import annotations

import math
from typing import Any

from flask import Flask, abort, request
from werkzeug.exceptions import RequestURITooLarge

from services.kit import parse
from services.kit.errors import ValidationError

MAX_URL_BYTES = 4096
MAX_DEPTH = 32


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)


def check_request() -> None:
    if len(request.full_path.encode("utf-8", "surrogateescape")) > MAX_URL_BYTES:
        abort(RequestURITooLarge.code)
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value < 1:  # record numbers start at 1
            raise ValidationError(f"«{value}» — не номер записи.", name, key="id.invalid",
                                  params={"value": str(value)})
        if isinstance(value, int) and value > parse.id_limit(name):
            raise ValidationError("Слишком большой номер записи.", name, key="id.too_large",
                                  params={"max": parse.id_limit(name)})
        if isinstance(value, str):
            parse.check_chars(value, name)
    for name, value in request.args.items(multi=True):
        parse.check_chars(value, name)
    if request.mimetype == "application/x-www-form-urlencoded":
        for name, value in request.form.items(multi=True):
            parse.check_chars(value, name)
    if request.is_json and request.content_length != 0:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            raise _too_deep("body") from None
        check_json(data)


def _too_deep(where: str) -> ValidationError:
    return ValidationError(f"Слишком глубокая вложенность JSON (больше {MAX_DEPTH}).", where,
                           key="body.too_deep", params={"max": MAX_DEPTH})


def check_json(data: Any) -> None:
    """Walk the parsed body without recursion; the first bad value names its path."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        where = path or "body"
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        if isinstance(value, str):
            parse.check_chars(value, where)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if abs(value) > parse.MAX_ID:
                raise ValidationError("Слишком большое число.", where, key="number.too_large",
                                      params={"max": parse.MAX_ID})
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError("Число вне допустимого диапазона.", where,
                                      key="number.not_finite")
        elif isinstance(value, dict):
            for key, item in value.items():
                parse.check_chars(key, where)
                stack.append((item, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((item, f"{path}.{index}" if path else str(index), depth + 1))
