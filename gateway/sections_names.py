"""Section names an administrator renamed (MISSION: "section names can be changed").

Stored in the gateway's ``settings`` table under ``section_names`` as
``{"deals": {"ru": "Проекты", "en": "Projects"}, ...}``; ``gateway.i18n.translate`` asks
here for every ``section.<name>`` string, so a new name shows everywhere in the UI."""
from __future__ import annotations

from typing import Any

from flask import g, has_request_context

from gateway.models import Setting
from services.kit.errors import ValidationError

KEY = "section_names"
SECTIONS = ("deals", "clients", "payments", "notifications")
LIMIT = 40


def stored() -> dict[str, dict[str, str]]:
    """This request's renamed sections (read once per request)."""
    if not has_request_context() or g.get("db") is None:
        return {}
    if "section_names" not in g:
        row = g.db.get(Setting, KEY)
        g.section_names = row.value if row is not None and isinstance(row.value, dict) else {}
    return g.section_names  # type: ignore[no-any-return]


def renamed(lang: str, section: str) -> str | None:
    return stored().get(section, {}).get(lang) or None


def save(db: Any, names: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Replace the renamed sections; an empty name means "the default again"."""
    cleaned: dict[str, dict[str, str]] = {}
    for section, by_lang in names.items():
        if section not in SECTIONS:
            raise ValidationError("Такого раздела нет.", field=section, key="section.unknown")
        if not isinstance(by_lang, dict):
            raise ValidationError("Нужны названия по языкам.", field=section, key="object.invalid")
        for lang, name in by_lang.items():
            field = f"{section}.{lang}"
            if lang not in ("ru", "en") or not isinstance(name, str):
                raise ValidationError("Нужно название на русском или английском.", field=field,
                                      key="text.invalid")
            if len(name.strip()) > LIMIT:
                raise ValidationError(f"Не больше {LIMIT} символов.", field=field,
                                      key="text.too_long", params={"max": LIMIT})
            if name.strip():
                cleaned.setdefault(section, {})[lang] = name.strip()
    row = db.get(Setting, KEY)
    if row is None:
        db.add(Setting(key=KEY, value=cleaned))
    else:
        row.value = cleaned
    if has_request_context():
        g.section_names = cleaned
    return cleaned
