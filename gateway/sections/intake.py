"""The inbox of new enquiries ("Неразобранное", D13): every lead whatever its source, its
duplicates and the three actions; the administrator's forms, API keys and duty list; and
the public endpoints a company's website form talks to."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nh3
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from markupsafe import Markup

from gateway import header
from gateway.auth import client_address, section
from gateway.feed import files_dir, open_stored
from gateway.forms import NO_FORM, Form, failed
from gateway.grouping import ThreadGroup
from gateway.i18n import extend
from gateway.remote import remote, rpc, user_names
from services.kit.errors import CrmError, Forbidden, NotFound, ValidationError, error_from_reply

bp = Blueprint("intake", __name__)
log = logging.getLogger("crm.gateway.intake")
STATIC = Path(__file__).resolve().parents[1] / "static" / "intake"

extend({
    "ru": {"section.leads": "Неразобранное", "leads.none": "Новых заявок нет",
           "leads.source": "Источник", "leads.when": "Когда", "leads.who": "Кто",
           "leads.message": "Сообщение", "leads.duplicates": "Похожие клиенты",
           "leads.accept": "Принять: клиент и сделка", "leads.accept_to": "Принять к клиенту",
           "leads.attach": "В открытую сделку", "leads.deal_id": "№ сделки",
           "leads.spam": "Спам", "leads.assignee": "Ответственный",
           "leads.respond_by": "Ответить до", "leads.status": "Статус",
           "leads.forms": "Формы", "leads.keys": "Ключи API", "leads.settings": "Дежурства",
           "leads.all": "Все", "leads.open": "Неразобранные",
           "leads.snippet": "Код для сайта", "leads.key_once": "Ключ показан один раз:",
           "leads.revoke": "Отозвать", "leads.save": "Сохранить",
           "leads.new": "новая", "leads.accepting": "принимается", "leads.accepted": "принята",
           "leads.attached": "в сделке", "leads.rejected": "отклонена",
           "leads.spam_status": "спам", "leads.deal": "Сделка",
           "leads.form.fields": "Поля: имя|подпись|тип|обязательное(1/0)|куда (по строке)",
           "leads.form.consent": "Текст согласия (152-ФЗ)",
           "leads.form.min_fill": "Минимум секунд на заполнение",
           "leads.form.origins": "Сайты (origin), по строке",
           "leads.duty": "Дежурные менеджеры", "leads.heads": "Руководители (просрочка)",
           "leads.admins": "Администраторы (поток писем)",
           "leads.response_minutes": "Минут на первый ответ",
           "leads.flood_limit": "Писем от одного адреса", "leads.flood_minutes": "за минут",
           "leads.write_email": "Написать письмо", "leads.subject": "Тема",
           "leads.mailboxes": "Почтовые ящики", "leads.mb.name": "Название",
           "leads.mb.host": "IMAP-сервер", "leads.mb.port": "Порт",
           "leads.mb.security": "Защита", "leads.mb.login": "Логин",
           "leads.mb.password": "Пароль", "leads.mb.password_kept":
           "Пароль сохранён; оставьте пустым, чтобы не менять",
           "leads.mb.folder": "Папка", "leads.mb.move_to":
           "Переносить разобранные в папку (пусто — отмечать прочитанными)",
           "leads.mb.interval": "Проверять раз в, секунд",
           "leads.mb.owner": "Чей ящик", "leads.mb.company": "Общий ящик компании",
           "leads.mb.active": "Включён", "leads.mb.last": "Последняя проверка",
           "leads.mb.error": "Ошибка", "leads.mb.taken": "Принято писем",
           "leads.mb.poll": "Проверить сейчас", "leads.mb.delete": "Удалить",
           "leads.mb.new": "Новый ящик",
           "leads.captcha_after": "Капча после стольких неудачных отправок с адреса "
                                  "(за 10 минут; 0 — никогда)"},
    "en": {"section.leads": "Inbox", "leads.none": "No new leads",
           "leads.source": "Source", "leads.when": "When", "leads.who": "Who",
           "leads.message": "Message", "leads.duplicates": "Similar clients",
           "leads.accept": "Accept: client and deal", "leads.accept_to": "Accept for client",
           "leads.attach": "Into an open deal", "leads.deal_id": "Deal #",
           "leads.spam": "Spam", "leads.assignee": "Assignee",
           "leads.respond_by": "Answer by", "leads.status": "Status",
           "leads.forms": "Forms", "leads.keys": "API keys", "leads.settings": "Duty",
           "leads.all": "All", "leads.open": "Open",
           "leads.snippet": "Code for the website", "leads.key_once": "Shown once:",
           "leads.revoke": "Revoke", "leads.save": "Save",
           "leads.new": "new", "leads.accepting": "accepting", "leads.accepted": "accepted",
           "leads.attached": "attached", "leads.rejected": "rejected",
           "leads.spam_status": "spam", "leads.deal": "Deal",
           "leads.form.fields": "Fields: name|label|type|required(1/0)|maps to (one a line)",
           "leads.form.consent": "Consent text (152-FZ)",
           "leads.form.min_fill": "Minimum seconds to fill in",
           "leads.form.origins": "Websites (origins), one a line",
           "leads.duty": "Managers on duty", "leads.heads": "Heads (overdue)",
           "leads.admins": "Administrators (mail floods)",
           "leads.response_minutes": "Minutes to first answer",
           "leads.flood_limit": "Mails from one address", "leads.flood_minutes": "in minutes",
           "leads.write_email": "Write an e-mail", "leads.subject": "Subject",
           "leads.mailboxes": "Mailboxes", "leads.mb.name": "Name",
           "leads.mb.host": "IMAP server", "leads.mb.port": "Port",
           "leads.mb.security": "Security", "leads.mb.login": "Login",
           "leads.mb.password": "Password", "leads.mb.password_kept":
           "A password is stored; leave empty to keep it",
           "leads.mb.folder": "Folder", "leads.mb.move_to":
           "Move handled mail to folder (empty: mark as read)",
           "leads.mb.interval": "Check every, seconds",
           "leads.mb.owner": "Whose mailbox", "leads.mb.company": "The company's mailbox",
           "leads.mb.active": "On", "leads.mb.last": "Last checked",
           "leads.mb.error": "Error", "leads.mb.taken": "Mails taken",
           "leads.mb.poll": "Check now", "leads.mb.delete": "Delete",
           "leads.mb.new": "New mailbox",
           "leads.captcha_after": "Captcha after this many failed submissions from an "
                                  "address (in 10 minutes; 0: never)"},
})


def _admin() -> None:
    if "admin" not in g.user.roles:
        raise Forbidden("forms, keys and duty are for administrators", section="leads")


@bp.app_template_filter("clean_html")
def clean_html(value: Any) -> Markup:
    """Mail HTML, sanitised again where it is shown (whoever stored it)."""
    return Markup(nh3.clean(str(value or "")))


@bp.app_context_processor
def menu() -> dict[str, Any]:
    def open_leads() -> int | None:
        """The menu's count; None when intake does not answer quickly (no number shown)."""
        return header.counts()["leads"]

    return {"open_leads": open_leads}


# -- the inbox ------------------------------------------------------------------------


@bp.route("/leads")
@section("deals")
def index() -> Any:
    status = request.args.get("status", "open")
    leads = remote("intake", "list_leads", status=None if status == "all" else status,
                   limit=100)
    return render_template("intake/index.html", leads=leads["items"], total=leads["total"],
                           status=status, managers=user_names(),
                           error=request.args.get("error"))


@bp.route("/leads/<int:lead_id>")
@section("deals")
def page(lead_id: int) -> Any:
    lead = remote("intake", "get_lead", lead_id)
    return render_template("intake/index.html", leads=[lead], total=1, status="one",
                           managers=user_names(), error=request.args.get("error"))


def _act(lead_id: int, method: str, *args: Any, **kwargs: Any) -> Any:
    try:
        lead = remote("intake", method, lead_id, *args, user_id=g.user.id, **kwargs)
    except CrmError as exc:
        return redirect(url_for("intake.index", error=exc.message))
    if lead.get("deal_id"):
        return redirect(url_for("deals.page", deal_id=lead["deal_id"]))
    return redirect(url_for("intake.index"))


@bp.route("/leads/<int:lead_id>/accept", methods=["POST"])
@section("deals")
def accept(lead_id: int) -> Any:
    data: dict[str, Any] = {k: request.form.get(k) for k in ("client_name", "deal_name")
                            if request.form.get(k)}
    if request.form.get("client_id", "").isdigit():
        data["client_id"] = int(request.form["client_id"])
    return _act(lead_id, "accept_lead", data=data)


@bp.route("/leads/<int:lead_id>/attach", methods=["POST"])
@section("deals")
def attach(lead_id: int) -> Any:
    deal_id = request.form.get("deal_id", "")
    if not deal_id.isdigit():
        return redirect(url_for("intake.index", error="Укажите номер сделки."))
    return _act(lead_id, "attach_lead", int(deal_id))


@bp.route("/leads/<int:lead_id>/reject", methods=["POST"])
@section("deals")
def reject(lead_id: int) -> Any:
    return _act(lead_id, "reject_lead", reason=request.form.get("reason") or "spam")


@bp.route("/leads/<int:lead_id>/files/<key>")
@section("deals")
def attachment(lead_id: int, key: str) -> Any:
    """A lead's file, only if that lead has it; never shown inline unless an image."""
    lead = remote("intake", "get_lead", lead_id)
    item = next((f for f in lead.get("attachments") or [] if f.get("key") == key), None)
    if item is None:
        raise NotFound(f"file {key} not on lead {lead_id}", entity="file", id=key)
    try:
        path = open_stored(files_dir(current_app.config["CRM"]), key)
    except FileNotFoundError:
        raise NotFound(f"file {key} is missing", entity="file", id=key) from None
    image = str(item.get("content_type", "")).startswith("image/")
    return send_file(path, mimetype=item["content_type"] if image
                     else "application/octet-stream", as_attachment=not image,
                     download_name=item.get("name") or "file")


@bp.route("/deals/<int:deal_id>/email", methods=["POST"])
@section("deals")
def deal_email(deal_id: int) -> Any:
    """A manager's e-mail to a contact of the deal; it shows in the feed at once."""
    form = request.form
    try:
        remote("intake", "send_email", deal_id, form.get("contact_id", type=int),
               form.get("subject", ""), form.get("text", ""), user_id=g.user.id,
               request_id=(form.get("request_id") or None))
    except CrmError as exc:
        return redirect(url_for("deals.page", deal_id=deal_id, error=exc.message))
    return redirect(url_for("deals.page", deal_id=deal_id))


# -- administration -----------------------------------------------------------------------


def parse_fields(text: str) -> list[dict[str, Any]]:
    """``name|label|type|required|maps_to`` lines, as typed in the admin form."""
    fields = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")] + [""] * 5
        fields.append({"name": parts[0], "label": parts[1] or parts[0],
                       "type": parts[2] or "text", "required": parts[3] in ("1", "да", "yes"),
                       "maps_to": parts[4] or None})
    return fields


def snippet(form: dict[str, Any]) -> str:
    base = request.host_url.rstrip("/")
    return (f'<div data-crm-form="{form["public_id"]}"></div>\n'
            f'<script src="{base}{url_for("intake.form_script")}" '
            f'data-crm="{base}" async></script>')


@bp.route("/leads/forms", methods=["GET", "POST"])
@section("deals")
def forms() -> Any:
    _admin()
    state, status = NO_FORM, 200
    if request.method == "POST":
        data = {"name": request.form.get("name", ""),
                "consent_text": request.form.get("consent_text", ""),
                "fields": parse_fields(request.form.get("fields", "")),
                "min_fill_seconds": request.form.get("min_fill_seconds", 3, type=int),
                "allowed_origins": request.form.get("allowed_origins", "").split()}
        form_id = request.form.get("form_id", type=int)
        try:
            remote("intake", "save_form", data, user_id=g.user.id, form_id=form_id)
            return redirect(url_for("intake.forms"))
        except ValidationError as exc:
            state, status = failed("new-form", exc), 422
    items = remote("intake", "list_forms")
    return render_template("intake/forms.html", forms=items, snippet=snippet,
                           form=state), status


@bp.route("/leads/keys", methods=["GET", "POST"])
@section("deals")
def keys() -> Any:
    _admin()
    made, state, status = None, NO_FORM, 200
    if request.method == "POST":
        try:
            made = remote("intake", "create_api_key", request.form.get("name", ""),
                          user_id=g.user.id)
        except ValidationError as exc:
            state, status = failed("key-form", exc), 422
    return render_template("intake/keys.html", keys=remote("intake", "list_api_keys"),
                           made=made, form=state), status


@bp.route("/leads/keys/<int:key_id>/revoke", methods=["POST"])
@section("deals")
def revoke(key_id: int) -> Any:
    _admin()
    remote("intake", "revoke_api_key", key_id, user_id=g.user.id)
    return redirect(url_for("intake.keys"))


@bp.route("/leads/settings", methods=["GET", "POST"])
@section("deals")
def settings() -> Any:
    _admin()
    state, status = NO_FORM, 200
    if request.method == "POST":
        changes: dict[str, Any] = {}
        for key in ("duty_user_ids", "head_user_ids", "admin_user_ids"):
            changes[key] = [int(v) for v in request.form.getlist(key) if v.isdigit()]
        for key in ("response_minutes", "mail_flood_limit", "mail_flood_minutes",
                    "captcha_after"):
            changes[key] = request.form.get(key, type=int)
        try:
            remote("intake", "set_settings", changes, user_id=g.user.id)
            return redirect(url_for("intake.settings"))
        except ValidationError as exc:
            state, status = failed("duty-form", exc), 422
    return render_template("intake/settings.html", settings=remote("intake", "get_settings"),
                           managers=user_names(), form=state), status


MAILBOX_INPUTS = ("name", "host", "port", "security", "login", "password", "folder",
                  "move_to", "interval_seconds", "user_id", "active")


@bp.route("/leads/mailboxes", methods=["GET", "POST"])
@section("deals")
def mailboxes(form: Form = NO_FORM) -> Any:
    """IMAP mailboxes intake reads: the company's, or a manager's own (its mail is that
    manager's).  The password is write-only: never put back into the page."""
    _admin()
    if request.method == "POST" and form is NO_FORM:
        data: dict[str, Any] = {k: request.form.get(k, "") for k in MAILBOX_INPUTS}
        data["active"] = "active" in request.form
        mailbox_id = request.form.get("mailbox_id", type=int)
        form_id = f"mailbox-{mailbox_id}" if mailbox_id else "new-mailbox"
        try:
            remote("intake", "save_mailbox", data, user_id=g.user.id, mailbox_id=mailbox_id)
            return redirect(url_for("intake.mailboxes"))
        except CrmError as exc:
            form = failed(form_id, exc, names=MAILBOX_INPUTS)
            return mailboxes(form=form), 422
    return render_template("intake/mailboxes.html",
                           mailboxes=remote("intake", "list_mailboxes"),
                           managers=user_names(), form=form)


@bp.route("/leads/mailboxes/<int:mailbox_id>/poll", methods=["POST"])
@section("deals")
def poll_mailbox(mailbox_id: int) -> Any:
    _admin()
    remote("intake", "poll_mailbox_now", mailbox_id)
    return redirect(url_for("intake.mailboxes"))


@bp.route("/leads/mailboxes/<int:mailbox_id>/delete", methods=["POST"])
@section("deals")
def delete_mailbox(mailbox_id: int) -> Any:
    _admin()
    remote("intake", "delete_mailbox", mailbox_id, user_id=g.user.id)
    return redirect(url_for("intake.mailboxes"))


# -- public: what the company's website talks to --------------------------------------------


def _cors(response: Response, form: dict[str, Any] | None) -> Response:
    """Only the form's own websites may read the answers (any, if none were named)."""
    origin = request.headers.get("Origin")
    allowed = (form or {}).get("allowed_origins") or []
    if origin and (not allowed or origin.rstrip("/") in allowed):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _submissions() -> ThreadGroup[dict[str, Any]]:
    """This app's line of form submissions: the ones that arrive while a call to intake
    is under way go together in the next one (``submit_forms``), so at 500 a second the
    broker and intake see tens of calls, not hundreds; one alone goes at once."""
    found = current_app.extensions.get("form_submissions")
    if found is None:
        found = current_app.extensions.setdefault("form_submissions",
                                                  ThreadGroup(_submit_forms))
    return found  # type: ignore[no-any-return]


def _submit_forms(items: list[dict[str, Any]]) -> list[Any]:
    # the leader's request id is the call id: the batch's log lines name one request
    answers = rpc().call("intake", "submit_forms", items, call_id=f"gateway.{g.request_id}")
    return [error_from_reply(a["error"]) if a.get("error") else a.get("result")
            for a in answers]


@bp.route("/f/form.js")
def form_script() -> Any:
    response = send_file(STATIC / "form.js", mimetype="text/javascript", max_age=300)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/f/<public_id>", methods=["GET", "OPTIONS"])
def form_config(public_id: str) -> Any:
    """The form's fields, consent text and a signed start time, for the script."""
    try:
        form = remote("intake", "public_form", public_id, remote_addr=client_address())
    except NotFound:
        return _cors(jsonify({"error": {"code": "not_found"}}), None), 404
    if request.method == "OPTIONS":
        return _cors(Response(status=204), form)
    public = {k: v for k, v in form.items() if k != "allowed_origins"}
    response = _cors(jsonify(public), form)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/f/<public_id>/submit", methods=["POST", "OPTIONS"])
def form_submit(public_id: str) -> Any:
    """A submission (JSON or an ordinary form post).  A person's mistake answers 422
    naming the field; a bot's submission answers like a success."""
    if request.method == "OPTIONS":
        return _cors(Response(status=204), None)
    values: Any = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(values, dict):
        values = {}
    try:
        result = _submissions()({"public_id": public_id, "values": values,
                                 "remote_addr": client_address()})
    except ValidationError as exc:
        from gateway.app import validation_body  # the app's own rendering of the message

        return _cors(jsonify({"error": validation_body(exc)}), None), 422
    except NotFound:
        return _cors(jsonify({"error": {"code": "not_found"}}), None), 404
    return _cors(jsonify(result), None), 200
