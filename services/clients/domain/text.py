"""Small text helpers shared by the clients domain modules."""
from __future__ import annotations

import re
from collections.abc import Collection

from services.kit.errors import ValidationError

_SHOWN_INPUT = 40  # how much of a bad value an error message repeats
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


def shown(value: object) -> str:
    """The bad value as an error message quotes it: short, so a huge input stays readable."""
    text = repr(value)
    return text if len(text) <= _SHOWN_INPUT else text[:_SHOWN_INPUT] + "…"


def one_of(value: object, field: str, options: Collection[str]) -> str:
    """``value`` if it is one of ``options`` (a kind, a source, a language), else the
    ``choice.invalid`` error naming them."""
    if not isinstance(value, str) or value not in options:
        raise ValidationError(f"{shown(value)} — такого варианта нет.", field=field,
                              key="choice.invalid",
                              params={"value": shown(value), "options": ", ".join(options)})
    return value


def is_blank(value: object) -> bool:
    """None, "" and whitespace-only text all mean "not given"."""
    return value is None or (isinstance(value, str) and not value.strip())


def require_text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"Нужен текст, а не {type(value).__name__}.", field=field,
                              key="text.invalid")
    return value


def clean_text(value: object, field: str, limit: int) -> str | None:
    """Trimmed text with inner runs of whitespace collapsed; blank becomes None."""
    if value is None:
        return None
    text = " ".join(require_text(value, field).split())
    if len(text) > limit:
        raise ValidationError(f"Не больше {limit} символов, а введено {len(text)}.", field=field,
                              key="text.too_long", params={"max": limit})
    return text or None


def domain_ok(domain: str) -> bool:
    """A lower-case DNS name of two or more labels; Unicode (IDN) names are allowed."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_domain.split(".")
    return (len(labels) >= 2
            and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
            and _TLD.fullmatch(labels[-1]) is not None)
