"""Error messages in the reader's language, from gettext catalogs (Flask-Babel).

Services raise ``ValidationError(message, field=..., key=..., params=...)``; the gateway
renders ``key`` with ``params`` from ``gateway/translations/<lang>/LC_MESSAGES/messages.po``
(msgid = the key, msgstr = the sentence with ``%(name)s`` placeholders).  A key without a
translation falls back to the service's own message, so nothing is ever blank; a test keeps
every key used in the code translated in both languages.

The ``.po`` files are the source; the ``.mo`` files are compiled from them when the app
starts (milliseconds, and no build step to forget).  ``make messages`` extracts the keys
and the ``gettext`` strings into ``messages.pot`` and merges them into both catalogs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, has_request_context, request
from flask_babel import Babel, force_locale, get_translations

from services.kit.errors import ValidationError

LANGUAGES = ("ru", "en")
# keys of the limits the HTTP layer enforces (not raised as ValidationError)
HTTP_KEYS = {413: "body.too_large", 414: "url.too_long"}
TRANSLATIONS = Path(__file__).with_name("translations")


def compile_catalogs(root: Path = TRANSLATIONS) -> None:
    """Write each ``messages.mo`` next to its ``.po`` when missing or older."""
    for po in root.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as out:
            write_mo(out, catalog)
        tmp.replace(mo)  # atomic: two workers starting at once never read half a file


def request_language() -> str:
    """The API follows Accept-Language (then the user's setting); pages the session's."""
    if not has_request_context():
        return "ru"
    if request.path.startswith("/api/"):
        best = request.accept_languages.best_match(LANGUAGES)
        if best:
            return best
        user = g.get("user")
        return (getattr(user, "lang", None) if user is not None else None) or "ru"
    lang = g.get("lang")
    return lang if lang in LANGUAGES else "ru"


def init_app(app: Flask) -> None:
    compile_catalogs()
    Babel(app, locale_selector=request_language, default_locale="ru",
          default_translation_directories=str(TRANSLATIONS))


class _Params(dict):  # type: ignore[type-arg]
    """Placeholders a translation names but the error did not send stay visible."""

    def __missing__(self, name: str) -> str:
        return f"%({name})s"


def render(key: str | None, params: dict[str, Any] | None = None, fallback: str = "",
           lang: str | None = None) -> str:
    """The message of ``key`` in ``lang`` (default: the request's), or ``fallback``."""
    if not key:
        return fallback or ""
    if lang is not None:
        with force_locale(lang):
            return render(key, params, fallback)
    translated = get_translations().gettext(key)
    if translated == key:
        return fallback or key
    try:
        return translated % _Params(params or {})
    except (TypeError, ValueError):
        return fallback or translated


def translated(key: str, lang: str) -> bool:
    with force_locale(lang):
        return get_translations().gettext(key) != key


def error_items(exc: ValidationError, lang: str | None = None) -> list[dict[str, Any]]:
    """Every error of ``exc`` as ``{field, key, params, message}``, rendered."""
    return [{"field": e.get("field"), "key": e.get("key"), "params": e.get("params") or {},
             "message": render(e.get("key"), e.get("params"), str(e.get("message") or ""),
                               lang)}
            for e in exc.errors]


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """For a form: rendered messages per field name (``""`` for the form as a whole)."""
    out: dict[str, list[str]] = {}
    for item in error_items(exc):
        out.setdefault(item["field"] or "", []).append(item["message"])
    return out
