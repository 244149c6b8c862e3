"""How a deal's win probability reads on its page and its kanban card (MISSION A5): the
percentage and the top factors in plain words ("тип «Поддержка»: +12 п.п.")."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.i18n import extend

Translate = Callable[..., str]

extend({
    "ru": {
        "prob.title": "Вероятность выигрыша", "prob.estimate": "оценка",
        "prob.too_little": "Мало истории для оценки",
        "prob.closed": "Сделка закрыта", "prob.unknown": "Оценки пока нет",
        "prob.factor": "{feature} «{value}»: {points} п.п.",
        "prob.f.type": "тип", "prob.f.manager": "менеджер", "prob.f.client_kind": "вид клиента",
        "prob.f.client_group": "группа клиентов", "prob.f.age": "возраст сделки",
        "prob.f.amount": "сумма", "prob.f.source": "источник",
        "prob.v.none": "нет", "prob.v.days": "{value} дн.", "prob.v.rub": "{value} ₽",
        "prob.s.manual": "вручную", "prob.s.form": "веб-форма", "prob.s.call": "звонок",
        "prob.s.email": "e-mail", "prob.s.api": "API", "prob.s.questionnaire": "анкета",
        "prob.card": "Вероятность выигрыша {percent} %",
        "prob.manual": "задана вручную", "prob.manual_field": "Вероятность выигрыша, %",
        "prob.beside": "оценка по истории: {percent} %",
    },
    "en": {
        "prob.title": "Win probability", "prob.estimate": "estimate",
        "prob.too_little": "Too little history for an estimate",
        "prob.closed": "The deal is closed", "prob.unknown": "No estimate yet",
        "prob.factor": "{feature} “{value}”: {points} pp",
        "prob.f.type": "type", "prob.f.manager": "manager", "prob.f.client_kind": "client kind",
        "prob.f.client_group": "client group", "prob.f.age": "deal age",
        "prob.f.amount": "amount", "prob.f.source": "source",
        "prob.v.none": "none", "prob.v.days": "{value} days", "prob.v.rub": "{value} ₽",
        "prob.s.manual": "by hand", "prob.s.form": "web form", "prob.s.call": "call",
        "prob.s.email": "e-mail", "prob.s.api": "API", "prob.s.questionnaire": "questionnaire",
        "prob.card": "Win probability {percent} %",
        "prob.manual": "set by hand", "prob.manual_field": "Win probability, %",
        "prob.beside": "estimate from history: {percent} %",
    },
})

REASONS = {"too_little_history": "prob.too_little", "closed": "prob.closed",
           "unknown": "prob.unknown"}


def _range(value: str) -> str:
    """'10001-100000' -> '10 001–100 000' (thousands apart, an en dash between)."""
    def grouped(part: str) -> str:
        return f"{int(part):,}".replace(",", "\u00a0") if part.isdigit() else part
    if value.endswith("+"):
        return grouped(value[:-1]) + "+"
    low, _, high = value.partition("-")
    return f"{grouped(low)}–{grouped(high)}" if high else grouped(low)


def value_text(factor: Mapping[str, Any], t: Translate, managers: Mapping[int, str]) -> str:
    feature, value = str(factor["feature"]), str(factor["value"])
    if value == "none":
        return t("prob.v.none")
    if feature == "type":
        return str(factor.get("value_name") or f"#{value}")
    if feature == "manager":
        return managers.get(int(value), f"#{value}") if value.isdigit() else value
    if feature == "age":
        return t("prob.v.days", value=_range(value))
    if feature == "amount":
        return t("prob.v.rub", value=_range(value))
    if feature == "source":
        return t(f"prob.s.{value}")
    return value


def factor_text(factor: Mapping[str, Any], t: Translate, managers: Mapping[int, str]) -> str:
    """'тип «Поддержка»: +12 п.п.' (a minus sign for what lowers it)."""
    points = int(factor["points"])
    signed = f"+{points}" if points > 0 else f"\u2212{-points}"
    return t("prob.factor", feature=t(f"prob.f.{factor['feature']}"),
             value=value_text(factor, t, managers), points=signed)


def view(estimate: Mapping[str, Any] | None, t: Translate,
         managers: Mapping[int, str]) -> dict[str, Any] | None:
    """What the page shows: {percent, manual (set by hand: shown first, the estimate
    beside it), note (why there is no number), factors [text, up]}."""
    if not estimate:
        return None
    percent = estimate.get("percent")
    return {"percent": percent, "manual": estimate.get("manual"),
            "note": None if percent is not None else t(REASONS.get(
                str(estimate.get("reason")), "prob.unknown")),
            "factors": [{"text": factor_text(f, t, managers), "up": int(f["points"]) > 0}
                        for f in estimate.get("factors") or []]}


def card_probabilities(deal_ids: list[int], t: Translate,
                       managers: Mapping[int, str]) -> dict[str, dict[str, Any]]:
    """The visible cards' estimates in ONE batch RPC; analytics down or late: no chips."""
    return cards_shown(ask_probabilities(deal_ids), t, managers)


def ask_probabilities(deal_ids: list[int]) -> Any:
    """Send the cards' batch now; ``cards_shown`` waits for it (the board writes its
    cards meanwhile).  None: no cards, nothing asked."""
    from flask import current_app, g

    from gateway.aggregate import call, send
    from gateway.remote import rpc

    if not deal_ids:
        return None
    budget = float(current_app.config["CRM"].get("PAGE_DEADLINE", 2.0))
    return time.monotonic() + budget, send(
        rpc(), {"p": call("analytics", "win_probabilities", deal_ids)},
        f"gateway.{g.request_id}", timeout=budget)


def cards_shown(asked: Any, t: Translate, managers: Mapping[int, str]
                ) -> dict[str, dict[str, Any]]:
    """What each card's chip shows, from ``ask_probabilities``' answer."""
    from gateway.aggregate import collect

    if asked is None:
        return {}
    deadline, sent = asked
    panel = collect(sent, deadline)["p"]
    if not panel.ok:
        return {}
    shown = {}
    for key, estimate in (panel.data or {}).items():
        seen = view(estimate, t, managers)
        if not seen or (seen["percent"] is None and seen["manual"] is None):
            continue
        lines = [f["text"] for f in seen["factors"]]
        if seen["manual"] is not None:
            lines = [t("prob.card", percent=seen["manual"]) + f" ({t('prob.manual')})",
                     *([t("prob.beside", percent=seen["percent"])]
                       if seen["percent"] is not None else [])]
        else:
            lines.insert(0, t("prob.card", percent=seen["percent"]))
        shown[str(key)] = {**seen, "shown": seen["manual"] if seen["manual"] is not None
                           else seen["percent"], "title": "; ".join(lines)}
    return shown
