"""Notifications in the web UI: the bell and its list (N1), messages to a client's contacts
(N2), and the delivery log an administrator reads and retries from (N3)."""
from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for

from gateway import header
from gateway.auth import login_required, safe_next, section
from gateway.i18n import extend
from gateway.remote import remote, user_names
from gateway.sections.clients import refused
from services.kit.errors import CrmError, Forbidden, ValidationError

bp = Blueprint("notifications", __name__)

extend({
    "ru": {
        "notifications.open": "Открыть", "notifications.read": "отметить прочитанным",
        "notifications.all": "Все уведомления", "notifications.unread": "Непрочитанные",
        "notifications.log": "Журнал доставки", "notifications.settings": "Настройки",
        "deliveries.when": "Когда", "deliveries.channel": "Канал",
        "deliveries.recipient": "Получатель", "deliveries.status": "Статус",
        "deliveries.attempts": "Попыток", "deliveries.error": "Причина",
        "deliveries.retry": "Отправить снова", "deliveries.filter_all": "Все",
        "deliveries.retried": "Доставка {id} поставлена в очередь",
        "status.pending": "в очереди", "status.sending": "отправляется",
        "status.sent": "доставлено", "status.retrying": "повтор", "status.failed": "ошибка",
        "status.skipped": "пропущено",
        "channel.app": "В приложении", "channel.email": "E-mail", "channel.telegram": "Telegram",
        "channel.sms": "SMS",
        "messages.title": "Сообщения клиенту", "messages.send": "Отправить",
        "messages.contact": "Контакт", "messages.channel": "Канал",
        "messages.address": "Адрес (e-mail, телефон или Telegram chat id)",
        "messages.subject": "Тема", "messages.text": "Текст", "messages.none": "Сообщений нет",
        "messages.sent": "Сообщение поставлено в очередь",
    },
    "en": {
        "notifications.open": "Open", "notifications.read": "mark as read",
        "notifications.all": "All notifications", "notifications.unread": "Unread",
        "notifications.log": "Delivery log", "notifications.settings": "Settings",
        "deliveries.when": "When", "deliveries.channel": "Channel",
        "deliveries.recipient": "Recipient", "deliveries.status": "Status",
        "deliveries.attempts": "Tries", "deliveries.error": "Reason",
        "deliveries.retry": "Send again", "deliveries.filter_all": "All",
        "deliveries.retried": "Delivery {id} is queued again",
        "status.pending": "queued", "status.sending": "sending", "status.sent": "delivered",
        "status.retrying": "retrying", "status.failed": "failed", "status.skipped": "skipped",
        "channel.app": "In the app", "channel.email": "E-mail", "channel.telegram": "Telegram",
        "channel.sms": "SMS",
        "messages.title": "Messages to the client", "messages.send": "Send",
        "messages.contact": "Contact", "messages.channel": "Channel",
        "messages.address": "Address (e-mail, phone or Telegram chat id)",
        "messages.subject": "Subject", "messages.text": "Text", "messages.none": "No messages",
        "messages.sent": "The message is queued",
    },
})

STATUSES = ("failed", "retrying", "pending", "sending", "sent", "skipped")


def admin_only() -> None:
    if "admin" not in g.user.roles:
        raise Forbidden("the delivery log is for administrators", section="deliveries")


@bp.route("/notifications")
@login_required
def index() -> Any:
    unread_only = request.args.get("unread") == "1"
    result = remote("notifications", "list_for_user", g.user.id, unread_only=unread_only,
                    limit=100)
    return render_template("notifications/index.html", result=result, unread_only=unread_only)


@bp.route("/notifications/<int:notification_id>/open")
@login_required
def open_one(notification_id: int) -> Any:
    """Follow a notification's link and mark it read (idempotent)."""
    item = remote("notifications", "open_notification", g.user.id, notification_id)
    link = item.get("link") or ""
    return redirect(safe_next(link, url_for("notifications.index")))


@bp.route("/notifications/read", methods=["POST"])
@login_required
def mark_read() -> Any:
    ids = [int(i) for i in request.form.getlist("id") if i.isdigit()] or None
    remote("notifications", "mark_read", g.user.id, ids)
    return redirect(url_for("notifications.index"))


@bp.route("/notifications/deliveries")
@login_required
def deliveries() -> Any:
    admin_only()
    status = request.args.get("status") or None
    log = remote("notifications", "list_deliveries",
                 status=status if status in STATUSES else None,
                 channel=request.args.get("channel") or None,
                 limit=request.args.get("limit", 100, type=int))
    return render_template("notifications/deliveries.html", log=log, status=status,
                           statuses=STATUSES, people=user_names(),
                           error=request.args.get("error"), notice=request.args.get("notice"))


@bp.route("/notifications/deliveries/<int:delivery_id>/retry", methods=["POST"])
@login_required
def retry(delivery_id: int) -> Any:
    admin_only()
    try:
        remote("notifications", "retry_delivery", delivery_id, user_id=g.user.id)
    except CrmError as exc:
        return redirect(url_for("notifications.deliveries", status="failed", error=exc.message))
    return redirect(url_for("notifications.deliveries", status="failed",
                            notice=g.t("deliveries.retried", id=delivery_id)))


@bp.route("/clients/<int:client_id>/messages", methods=["POST"])
@section("clients")
def send_message(client_id: int) -> Any:
    """The form of ``notifications/_client_messages.html`` on the client page (N2)."""
    form = request.form
    try:
        contact_id = int(form.get("contact_id") or 0)
        remote("notifications", "send_to_contact", g.user.id, client_id, contact_id,
               form.get("channel"), form.get("address"), form.get("subject", ""),
               form.get("text", ""), request_id=form.get("request_id") or None)
    except ValueError:
        return refused(client_id, "message-form",
                       ValidationError("Выберите контакт.", "contact_id", key="contact.choose"))
    except CrmError as exc:
        return refused(client_id, "message-form", exc)
    return redirect(url_for("clients.page", client_id=client_id) + "#panel-messages")


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    def bell() -> int | None:
        """Unread notifications of the signed-in user; None when the service is silent
        (the page renders without the number rather than wait)."""
        if g.get("user") is None:
            return None
        return header.counts()["unread"]

    return {"bell": bell,
            "new_request_id": lambda: uuid.uuid4().hex}
