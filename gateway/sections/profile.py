"""The user's own profile: how to reach them and which notifications they want over which
channels (N1), and linking Telegram with a one-time code sent to the bot."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for

from gateway.auth import login_required, setting_changed
from gateway.formatting import USER_ZONES
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.i18n import extend
from gateway.models import UserSetting
from gateway.remote import remote
from services.kit import clock
from services.kit.errors import CrmError, ValidationError

bp = Blueprint("profile", __name__)

extend({
    "ru": {
        "profile.title": "Профиль", "profile.contacts": "Куда присылать уведомления",
        "profile.email": "E-mail", "profile.phone": "Телефон для SMS",
        "profile.matrix": "Какие уведомления и куда",
        "profile.kind": "Событие", "profile.saved": "Сохранено",
        "profile.telegram": "Telegram", "profile.telegram_linked": "Telegram подключён",
        "profile.telegram_not_linked": "Telegram не подключён",
        "profile.telegram_get_code": "Получить код для бота",
        "profile.telegram_send": "Отправьте боту {bot} этот код (действует {minutes} мин):",
        "profile.telegram_send_plain": "Отправьте боту этот код (действует {minutes} мин):",
        "profile.telegram_open": "Открыть бота",
        "profile.telegram_unlink": "Отключить Telegram",
        "profile.not_configured": "канал не настроен администратором",
        "profile.zone": "Часовой пояс", "profile.zone_company": "как у компании",
        "profile.zone_hint": "Все даты и время на страницах — в этом поясе.",
        "profile.bad_zone": "Такого часового пояса нет в списке",
        "kind.reminder_due": "Наступил срок напоминания",
        "kind.payment_received": "Поступила оплата",
        "kind.payment_overdue": "Платёж просрочен",
        "kind.deal_assigned": "Мне передали сделку",
        "kind.questionnaire_filled": "Клиент заполнил анкету",
        "kind.document_signed": "Клиент подписал документ",
        "kind.document_viewed": "Клиент открыл документ",
        "kind.document_approved": "Клиент согласовал документ",
        "kind.document_declined": "Клиент отклонил документ",
    },
    "en": {
        "profile.title": "Profile", "profile.contacts": "Where to send notifications",
        "profile.email": "E-mail", "profile.phone": "Phone for SMS",
        "profile.matrix": "Which notifications, and where",
        "profile.kind": "Event", "profile.saved": "Saved",
        "profile.telegram": "Telegram", "profile.telegram_linked": "Telegram is linked",
        "profile.telegram_not_linked": "Telegram is not linked",
        "profile.telegram_get_code": "Get a code for the bot",
        "profile.telegram_send": "Send {bot} this code (valid for {minutes} min):",
        "profile.telegram_send_plain": "Send the bot this code (valid for {minutes} min):",
        "profile.telegram_open": "Open the bot",
        "profile.telegram_unlink": "Unlink Telegram",
        "profile.not_configured": "not set up by the administrator",
        "profile.zone": "Time zone", "profile.zone_company": "the company's",
        "profile.zone_hint": "Every date and time on the pages is shown in this zone.",
        "profile.bad_zone": "This time zone is not on the list",
        "kind.reminder_due": "A reminder is due",
        "kind.payment_received": "A payment arrived",
        "kind.payment_overdue": "A payment is overdue",
        "kind.deal_assigned": "A deal was given to me",
        "kind.questionnaire_filled": "A client filled in a questionnaire",
        "kind.document_signed": "A client signed a document",
        "kind.document_viewed": "A client opened a document",
        "kind.document_approved": "A client approved a document",
        "kind.document_declined": "A client declined a document",
    },
})


def _render(profile: dict[str, Any], error: str | None = None, form: Form = NO_FORM,
            status: int = 200) -> Any:
    values = {"email": profile.get("email") or g.user.email or "",
              "phone": profile.get("phone") or g.user.phone or ""}
    expires = profile["telegram"].get("code_expires_at")
    minutes_left = 0
    if expires:
        left = datetime.fromisoformat(expires) - clock.now()
        minutes_left = max(1, round(left.total_seconds() / 60))
    zone = g.db.get(UserSetting, (g.user.id, "timezone"))
    return render_template("profile/index.html", profile=profile, values=values,
                           zones=USER_ZONES, zone=zone.value if zone else "",
                           error=error, form=form, minutes_left=minutes_left,
                           saved=request.args.get("saved") == "1"), status


@bp.route("/profile")
@login_required
def index() -> Any:
    return _render(remote("notifications", "get_profile", g.user.id),
                   error=request.args.get("error"))


@bp.route("/profile", methods=["POST"])
@login_required
def save() -> Any:
    form = request.form
    values = {"email": form.get("email", "").strip(), "phone": form.get("phone", "").strip()}
    profile = remote("notifications", "get_profile", g.user.id)
    chosen = {kind: [ch for ch in profile["channels"] if form.get(f"pref-{kind}-{ch}")]
              for kind in profile["kinds"]}
    try:
        remote("notifications", "save_profile", g.user.id,
               {**values, "name": g.user.full_name, "lang": g.user.lang or "ru"}, chosen)
    except ValidationError as exc:
        profile["preferences"] = chosen
        return _render(profile, form=failed("profile-form", exc), status=422)
    # the gateway's own user record keeps the same contact details
    g.user.email = values["email"] or None
    g.user.phone = values["phone"] or None
    g.db.commit()
    return redirect(url_for("profile.index", saved=1))


@bp.route("/profile/timezone", methods=["POST"])
@login_required
def timezone() -> Any:
    """The user's own time zone for every time the pages show; empty: the company's."""
    chosen = request.form.get("timezone", "")
    if chosen and chosen not in USER_ZONES:
        refused = ValidationError(g.t("profile.bad_zone"), "timezone", key="timezone.unknown")
        return _render(remote("notifications", "get_profile", g.user.id),
                       form=failed("zone-form", refused), status=422)
    setting = g.db.get(UserSetting, (g.user.id, "timezone"))
    if chosen:
        if setting is None:
            g.db.add(UserSetting(user_id=g.user.id, key="timezone", value=chosen))
        else:
            setting.value = chosen
    elif setting is not None:
        g.db.delete(setting)
    g.db.commit()
    setting_changed("timezone", chosen or None)
    return redirect(url_for("profile.index", saved=1))


@bp.route("/profile/telegram", methods=["POST"])
@login_required
def telegram_code() -> Any:
    try:
        remote("notifications", "telegram_link_code", g.user.id)
    except CrmError as exc:
        return _render(remote("notifications", "get_profile", g.user.id),
                       form=failed("telegram-form", exc), status=status_of(exc))
    return redirect(url_for("profile.index") + "#telegram")


@bp.route("/profile/telegram/unlink", methods=["POST"])
@login_required
def telegram_unlink() -> Any:
    remote("notifications", "unlink_telegram", g.user.id)
    return redirect(url_for("profile.index") + "#telegram")
