"""Telephony in the web UI: the calls list, recordings played with seeking (T3), and a
client plus a deal made from an unknown caller's call in one click (T4/D13: it accepts
the call's entry in the lead inbox)."""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.security import safe_join

from gateway.auth import login_required, section
from gateway.formatting import current_zone
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.i18n import extend
from gateway.remote import remote, user_names
from services.kit import clock
from services.kit.config import ROOT
from services.kit.errors import CrmError, Forbidden, NotFound, ValidationError

bp = Blueprint("telephony", __name__)
log = logging.getLogger("crm.gateway.telephony")

# Who may see calls and listen to recordings: people who work with deals or clients.
LISTENERS = {"manager", "head", "admin", "accountant"}

extend({
    "ru": {
        "section.calls": "Звонки", "calls.unknown_only": "Только неизвестные номера",
        "calls.all": "Все звонки", "calls.none": "Звонков пока нет",
        "calls.number": "Номер", "calls.when": "Когда", "calls.line": "Линия",
        "calls.who": "Контакт", "calls.result": "Результат", "calls.recording": "Запись",
        "calls.unknown": "Неизвестный номер", "calls.create": "Создать клиента и сделку",
        "calls.client_name": "Название клиента", "calls.contact_name": "Имя контакта",
        "calls.deal_name": "Название сделки", "calls.answered": "отвечен",
        "calls.missed": "пропущен", "calls.busy": "занято", "calls.failed": "не состоялся",
        "calls.internal": "Внутренний", "calls.recording_pending": "запись загружается",
        "calls.recording_failed": "запись недоступна", "calls.seconds": "с",
        "calls.of_client": "Звонки клиента", "calls.live": "идёт разговор",
        "calls.no_number": "У звонка нет номера, который можно сохранить",
        "calls.already_linked": "Звонок уже привязан к клиенту",
        "calls.client_default": "Клиент {number}", "calls.deal_default": "Обращение {number}",
        "calls.log": "Записать звонок вручную", "calls.log_hint": "Например, звонок с мобильного",
        "calls.other": "Номер собеседника", "calls.our": "Наш номер", "calls.started": "Начало",
        "calls.minutes": "Длительность, мин", "calls.log_save": "Записать",
        "calls.mobile": "мобильный", "calls.direction": "Направление",
    },
    "en": {
        "section.calls": "Calls", "calls.unknown_only": "Unknown numbers only",
        "calls.all": "All calls", "calls.none": "No calls yet",
        "calls.number": "Number", "calls.when": "When", "calls.line": "Line",
        "calls.who": "Contact", "calls.result": "Result", "calls.recording": "Recording",
        "calls.unknown": "Unknown number", "calls.create": "Create client and deal",
        "calls.client_name": "Client name", "calls.contact_name": "Contact name",
        "calls.deal_name": "Deal name", "calls.answered": "answered",
        "calls.missed": "missed", "calls.busy": "busy", "calls.failed": "failed",
        "calls.internal": "Internal", "calls.recording_pending": "recording on its way",
        "calls.recording_failed": "recording unavailable", "calls.seconds": "s",
        "calls.of_client": "Calls with this client", "calls.live": "in progress",
        "calls.no_number": "The call has no number that could be saved",
        "calls.already_linked": "The call is already linked to a client",
        "calls.client_default": "Client {number}", "calls.deal_default": "Call from {number}",
        "calls.log": "Log a call by hand", "calls.log_hint": "A call made from a mobile, say",
        "calls.other": "Other party's number", "calls.our": "Our number", "calls.started": "Start",
        "calls.minutes": "Length, min", "calls.log_save": "Log",
        "calls.mobile": "mobile", "calls.direction": "Direction",
    },
})


def may_listen() -> None:
    if not set(g.user.roles) & LISTENERS:
        raise Forbidden("calls need one of the roles " + ", ".join(sorted(LISTENERS)),
                        section="calls")


def recordings_root() -> Path:
    configured = (current_app.config["CRM"].get("RECORDINGS_DIR")
                  or os.environ.get("RECORDINGS_DIR") or "var/recordings")
    folder = Path(str(configured))
    return folder if folder.is_absolute() else ROOT / folder


# -- T4: a client and a deal from an unknown caller -------------------------------------


def create_client_from_call(call_id: int, names: dict[str, Any], user_id: int,
                            lang: str = "ru") -> dict[str, Any]:
    """Client (a private person: no INN is known from a phone call), its contact with the
    caller's number, a deal, and the call (with other calls from that number) attached —
    by accepting the call's inbox entry: one operation owned by the intake service."""
    from gateway.i18n import translate

    for key in ("client_name", "contact_name", "deal_name"):
        value = names.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{key}: ожидается текст.", field=key, key="text.expected")
    call = remote("telephony", "get_call", call_id)
    number = call.get("other_e164") or call.get("other_number") or ""
    chosen = {"client_name": (names.get("client_name") or "").strip() or translate(
                  lang, "calls.client_default", number=number),
              "contact_name": (names.get("contact_name") or "").strip() or None,
              "deal_name": (names.get("deal_name") or "").strip() or translate(
                  lang, "calls.deal_default", number=number)}
    return dict(remote("intake", "accept_call", call_id,
                       {k: v for k, v in chosen.items() if v}, user_id=user_id))


# -- a call logged by hand ----------------------------------------------------------------


def manual_call(form: Mapping[str, str], our_number: str, zone: ZoneInfo,
                now: datetime) -> dict[str, Any]:
    """``record_call`` data from the "log a call" form: a call made or taken outside the
    PBX (from a mobile), with its start in local time and its length in minutes."""
    direction = form.get("direction") or "outbound"
    other = (form.get("other_number") or "").strip()
    ours = (form.get("our_number") or "").strip() or our_number
    raw_start = (form.get("started_at") or "").strip()
    try:
        started = (datetime.fromisoformat(raw_start).replace(tzinfo=zone) if raw_start
                   else now)
    except ValueError:
        raise ValidationError(f"started_at: '{raw_start}' is not a date and time",
                              field="started_at", key="started_at.invalid",
                              params={"value": raw_start}) from None
    minutes_text = (form.get("minutes") or "0").strip().replace(",", ".")
    try:
        minutes = Decimal(minutes_text)
    except InvalidOperation:
        raise ValidationError(f"minutes: '{minutes_text}' is not a number", field="minutes",
                              key="minutes.invalid", params={"value": minutes_text}) from None
    if not minutes.is_finite() or minutes < 0 or minutes > 24 * 60:
        raise ValidationError("minutes: from 0 to 1440", field="minutes", key="minutes.range",
                              params={"min": 0, "max": 1440})
    ended = started + timedelta(seconds=int(minutes * 60))
    parties = (other, ours) if direction == "inbound" else (ours, other)
    data: dict[str, Any] = {"direction": direction, "from": parties[0], "to": parties[1],
                            "started_at": started.isoformat(), "ended_at": ended.isoformat()}
    if minutes > 0:
        data.update(answered_at=started.isoformat(), outcome="answered")
    else:
        data["outcome"] = "missed"
    return data


@bp.route("/calls", methods=["POST"])
@login_required
def log_call() -> Any:
    may_listen()
    try:
        remote("telephony", "record_call",
               manual_call(request.form, g.user.phone or g.t("calls.mobile"), current_zone(),
                           clock.now(current_zone())))
    except CrmError as exc:
        # the service names the call's parties: which is the user's input depends on
        # the direction
        inbound = request.form.get("direction") == "inbound"
        inputs = {"from": "other_number" if inbound else "our_number",
                  "to": "our_number" if inbound else "other_number"}
        return index(failed("log-call-form", exc, inputs)), status_of(exc)
    return redirect(url_for("telephony.index"))


# -- pages --------------------------------------------------------------------------------


@bp.route("/calls")
@login_required
def index(form: Form = NO_FORM, unknown: bool | None = None) -> Any:
    may_listen()
    unknown = request.args.get("unknown") == "1" if unknown is None else unknown
    calls = remote("telephony", "list_calls", unknown=unknown, include_live=True,
                   limit=request.args.get("limit", 100, type=int))
    return render_template("telephony/index.html", calls=calls, unknown=unknown,
                           managers=user_names(), error=request.args.get("error"), form=form)


@bp.route("/calls/<int:call_id>/create-client", methods=["POST"])
@section("deals")
def create_client(call_id: int) -> Any:
    names = {key: request.form.get(key) for key in ("client_name", "contact_name", "deal_name")}
    try:
        made = create_client_from_call(call_id, names, g.user.id, g.lang)
    except CrmError as exc:
        return index(failed(f"create-client-{call_id}", exc), unknown=True), status_of(exc)
    return redirect(url_for("deals.page", deal_id=made["deal"]["id"]))


@bp.route("/calls/<int:call_id>/recording")
@login_required
def recording(call_id: int) -> Any:
    """The call's recording, with HTTP Range (206) so the player can seek."""
    may_listen()
    where = remote("telephony", "recording_file", call_id)
    if where.get("status") != "stored" or not where.get("path"):
        raise NotFound(f"the recording of call {call_id} is not available "
                       f"({where.get('status')})", entity="recording", id=call_id)
    root = recordings_root()
    path = safe_join(str(root), where["path"])
    if path is None or not os.path.isfile(path):
        log.error("recording of call %s missing on the volume: %s", call_id, where["path"])
        raise NotFound(f"the recording of call {call_id} is missing", entity="recording",
                       id=call_id)
    response = send_file(path, mimetype=where.get("content_type") or "application/octet-stream",
                         conditional=True, etag=True, max_age=3600,
                         download_name=f"call-{call_id}{Path(path).suffix}")
    response.cache_control.public = False
    response.cache_control.private = True  # a conversation is nobody else's business
    return response
