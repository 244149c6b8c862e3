"""The win probability in plain words (gateway/probability_view.py)."""
from __future__ import annotations

from gateway.i18n import translate
from gateway.probability_view import factor_text, view


def ru(key: str, **params: object) -> str:
    return translate("ru", key, **params)


def en(key: str, **params: object) -> str:
    return translate("en", key, **params)


MANAGERS = {7: "Ирина Петрова"}


def test_factors_read_in_plain_russian():
    assert factor_text({"feature": "type", "value": "3", "value_name": "Поддержка",
                        "points": 12}, ru, MANAGERS) == "тип «Поддержка»: +12 п.п."
    assert factor_text({"feature": "manager", "value": "7", "points": -5}, ru,
                       MANAGERS) == "менеджер «Ирина Петрова»: \u22125 п.п."
    assert factor_text({"feature": "amount", "value": "10001-100000", "points": 3}, ru,
                       MANAGERS) == "сумма «10\u00a0001–100\u00a0000 ₽»: +3 п.п."
    assert factor_text({"feature": "age", "value": "181+", "points": -9}, ru,
                       MANAGERS) == "возраст сделки «181+ дн.»: \u22129 п.п."
    assert factor_text({"feature": "source", "value": "form", "points": 4}, ru,
                       MANAGERS) == "источник «веб-форма»: +4 п.п."
    assert factor_text({"feature": "client_group", "value": "none", "points": 1}, ru,
                       MANAGERS) == "группа клиентов «нет»: +1 п.п."
    assert factor_text({"feature": "manager", "value": "9", "points": 2}, en,
                       MANAGERS) == "manager “#9”: +2 pp"


def test_no_number_says_why():
    shown = view({"percent": None, "reason": "too_little_history", "factors": []}, ru, {})
    assert shown == {"percent": None, "manual": None, "note": "Мало истории для оценки",
                     "factors": []}
    assert view(None, ru, {}) is None
    full = view({"percent": 71, "reason": None, "factors": [
        {"feature": "manager", "value": "7", "points": 17}]}, ru, MANAGERS)
    assert full is not None and full["percent"] == 71
    assert full["factors"] == [{"text": "менеджер «Ирина Петрова»: +17 п.п.", "up": True}]
