"""Small field readers shared by the webhook adapters: every bad field becomes a
``ValidationError`` naming it, so a malformed webhook answers 422 instead of 500."""
from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from services.kit.errors import ValidationError


def text(data: Mapping[str, Any], key: str) -> str | None:
    """The value as a stripped string; ``None`` when absent or empty."""
    value = data.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    value = str(value).strip()
    return value or None


def required_text(data: Mapping[str, Any], key: str, prefix: str = "") -> str:
    value = text(data, key)
    if value is None:
        raise ValidationError("Обязательное поле.", field=f"{prefix}{key}", key="required")
    return value


def integer(data: Mapping[str, Any], key: str, prefix: str = "", default: int = 0) -> int:
    value = data.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValidationError("Нужно целое число.", field=f"{prefix}{key}", key="number.int")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValidationError("Нужно целое число.", field=f"{prefix}{key}",
                              key="number.int") from None


def section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input without raising."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
