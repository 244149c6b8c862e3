"""Pure rules of questionnaires (G3): the fields a template defines and the answers a
client gives.  A draft keeps whatever was typed (checked for shape only); a submission
must satisfy every field."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

# the admin editor's line form of the fields is part of the contract (the gateway uses it)
from services.kit.contract.documents import FIELD_KINDS as FIELD_KINDS
from services.kit.contract.documents import as_lines as as_lines
from services.kit.contract.documents import parse_lines as parse_lines
from services.kit.errors import ValidationError

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_FIELDS = 100
MAX_TEXT = 10_000


def _bad(message: str, field: str, key: str, **params: Any) -> ValidationError:
    return ValidationError(message, field=field, key=key, params=params)


def clean_fields(fields: Any) -> list[dict[str, Any]]:
    """A template's fields: [{key, label, kind, required, help, options}]."""
    if not isinstance(fields, list) or not fields:
        raise _bad("Добавьте хотя бы один вопрос.", "fields", "fields.empty")
    if len(fields) > MAX_FIELDS:
        raise _bad(f"Не больше {MAX_FIELDS} вопросов.", "fields", "fields.too_many")
    out, seen = [], set()
    for n, raw in enumerate(fields):
        where = f"fields.{n}"
        if not isinstance(raw, dict):
            raise _bad("Вопрос описан неверно.", where, "field.invalid")
        key = str(raw.get("key") or "").strip()
        if not KEY.match(key):
            raise _bad("Ключ: латинские буквы, цифры и _, с буквы.", f"{where}.key",
                       "field.key_invalid", value=key)
        if key in seen:
            raise _bad("Ключ повторяется.", f"{where}.key", "field.key_duplicate", value=key)
        seen.add(key)
        kind = raw.get("kind")
        if kind not in FIELD_KINDS:
            raise _bad("Неизвестный тип вопроса.", f"{where}.kind", "field.kind_unknown",
                       value=str(kind), allowed=list(FIELD_KINDS))
        label = str(raw.get("label") or "").strip()
        if not label or len(label) > 500:
            raise _bad("Нужен текст вопроса (до 500 символов).", f"{where}.label",
                       "field.label_required")
        options = [str(o).strip() for o in raw.get("options") or [] if str(o).strip()]
        if kind in ("choice", "multi_choice") and len(options) < 2:
            raise _bad("Нужно хотя бы два варианта ответа.", f"{where}.options",
                       "field.options_required")
        out.append({"key": key, "label": label, "kind": kind,
                    "required": bool(raw.get("required")),
                    "help": str(raw.get("help") or "").strip()[:1000] or None,
                    "options": options if kind in ("choice", "multi_choice") else []})
    return out


def _one(field: dict[str, Any], value: Any) -> Any:
    key, kind = field["key"], field["kind"]
    where = f"answers.{key}"
    if kind in ("text", "long_text"):
        text = str(value).strip()
        if len(text) > (MAX_TEXT if kind == "long_text" else 1000):
            raise _bad("Слишком длинный ответ.", where, "answer.too_long")
        return text
    if kind == "number":
        try:
            number = Decimal(str(value).replace(",", ".").replace(" ", ""))
        except InvalidOperation:
            raise _bad("Введите число.", where, "answer.number") from None
        if not number.is_finite():
            raise _bad("Введите число.", where, "answer.number")
        return str(number)
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _bad("Введите дату.", where, "answer.date") from None
    if kind == "choice":
        if value not in field["options"]:
            raise _bad("Выберите один из вариантов.", where, "answer.choice")
        return value
    if kind == "multi_choice":
        values = value if isinstance(value, list) else [value]
        if any(v not in field["options"] for v in values):
            raise _bad("Выберите из предложенных вариантов.", where, "answer.choice")
        return [o for o in field["options"] if o in values]
    # file: the gateway stored and checked it; only its metadata comes here
    if not (isinstance(value, dict) and re.fullmatch(r"[0-9a-f]{32}", str(value.get("key")))):
        raise _bad("Файл не загружен.", where, "answer.file")
    return {k: value.get(k) for k in ("key", "name", "size", "content_type")}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def clean_answers(fields: list[dict[str, Any]], answers: Any,
                  final: bool) -> dict[str, Any]:
    """Answers by key; unknown keys are dropped.  ``final``: required ones must be there
    and every value must be valid; a draft keeps what is valid so far."""
    if not isinstance(answers, dict):
        raise _bad("Ответы описаны неверно.", "answers", "answers.invalid")
    out: dict[str, Any] = {}
    for field in fields:
        value = answers.get(field["key"])
        if _empty(value):
            if final and field["required"]:
                raise _bad(f"Ответьте на вопрос «{field['label']}».",
                           f"answers.{field['key']}", "answer.required")
            continue
        try:
            out[field["key"]] = _one(field, value)
        except ValidationError:
            if final:
                raise
    return out


def summary(fields: list[dict[str, Any]], answers: dict[str, Any]) -> list[dict[str, Any]]:
    """Question and answer as text, in the template's order (the deal page, the feed)."""
    rows = []
    for field in fields:
        value = answers.get(field["key"])
        if isinstance(value, list):
            text = ", ".join(value)
        elif isinstance(value, dict):
            text = str(value.get("name") or "")
        else:
            text = "" if value is None else str(value)
        rows.append({"key": field["key"], "label": field["label"], "kind": field["kind"],
                     "text": text, "file": value if isinstance(value, dict) else None})
    return rows
