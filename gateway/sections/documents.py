"""Documents (G1–G2): generating from the deal page, templates and our requisites for the
administrator, and the client's public link pages ``/d/<token>``.

Public pages need no login and carry only the token.  They answer ``noindex``,
``Referrer-Policy: no-referrer`` and ``no-store``, load nothing from other sites, are
rate-limited per IP, and a token never reaches a log line (see ``gateway.serve``).
"""
from __future__ import annotations

import base64
import threading
import time
from collections import deque
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from gateway import feed as files
from gateway.auth import section
from gateway.forms import NO_FORM, failed, status_of
from gateway.i18n import extend
from gateway.models import User
from gateway.remote import remote
from gateway.sections.admin import admin_only
from gateway.sections.deals import refused
from services.kit.contract import documents as questionnaires
from services.kit.contract.documents import BASE_CSS, DOCX_MAX_BYTES, PLACEHOLDERS
from services.kit.errors import Conflict, CrmError, NotFound, ValidationError

bp = Blueprint("documents", __name__)
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

extend({
    "ru": {"documents": "Документы", "generate": "Сформировать", "template": "Шаблон",
           "doc.status.new": "создан", "doc.status.viewed": "просмотрен",
           "doc.status.approved": "согласован", "doc.status.declined": "отклонён",
           "doc.status.signed": "подписан", "doc.status.paid": "оплачен",
           "doc.link": "Ссылка для клиента", "doc.copy": "Скопировать",
           "doc.revoke": "Отозвать", "doc.expires": "Действует до", "doc.renew": "Продлить",
           "doc.send": "Отправить", "doc.revoked": "отозвана", "doc.expired": "истекла",
           "doc.views": "просмотров", "doc.none": "Документов пока нет",
           "document_generated": "Сформирован документ", "document_viewed": "Клиент открыл",
           "document_approved": "Клиент согласовал", "document_declined": "Клиент отклонил",
           "document_signed": "Клиент подписал", "doc.templates": "Шаблоны документов",
           "doc.company": "Реквизиты компании", "doc.name": "Название",
           "doc.kind": "Вид", "doc.deal_type": "Тип сделки (необязательно)",
           "doc.body": "Шаблон (HTML, Jinja)", "doc.check": "Проверить",
           "doc.placeholders": "Плейсхолдеры", "doc.new_template": "Новый шаблон",
           "kind.proposal": "Коммерческое предложение", "kind.contract": "Договор",
           "kind.invoice": "Счёт", "kind.act": "Акт", "kind.custom": "Другой",
           "sent_by": "Канал", "doc.for_payment": "Счёт на платёж",
           "questionnaires": "Анкеты", "q.create": "Создать анкету",
           "q.status.new": "не открыта", "q.status.draft": "заполняется",
           "q.status.submitted": "заполнена", "q.templates": "Шаблоны анкет",
           "q.fields": "Вопросы", "document_questionnaire": "Клиент заполнил анкету",
           "doc.signed_by": "подписал", "document_paid": "Счёт оплачен",
           "doc.format": "Формат", "doc.format.html": "HTML (редактор)",
           "doc.format.docx": "DOCX (файл Word)", "doc.docx_file": "Файл DOCX",
           "doc.docx_help": "Плейсхолдеры те же, что в HTML-шаблонах: {{ client.inn }}, "
                            "{%p for line in lines %}…{%p endfor %}. Файл проверяется "
                            "перед сохранением.",
           "doc.docx_current": "Скачать текущий файл", "doc.check_ok": "Ошибок не найдено.",
           "doc.download_docx": "DOCX", "doc.no_pdf": "PDF не сделан: LibreOffice не "
                                                      "установлен, есть только DOCX"},
    "en": {"documents": "Documents", "generate": "Generate", "template": "Template",
           "doc.status.new": "new", "doc.status.viewed": "viewed",
           "doc.status.approved": "approved", "doc.status.declined": "declined",
           "doc.status.signed": "signed", "doc.status.paid": "paid",
           "doc.link": "Client link", "doc.copy": "Copy", "doc.revoke": "Revoke",
           "doc.expires": "Valid until", "doc.renew": "Extend", "doc.send": "Send",
           "doc.revoked": "revoked", "doc.expired": "expired", "doc.views": "views",
           "doc.none": "No documents yet", "document_generated": "Document generated",
           "document_viewed": "The client opened", "document_approved": "The client approved",
           "document_declined": "The client declined", "document_signed": "The client signed",
           "doc.templates": "Document templates", "doc.company": "Company requisites",
           "doc.name": "Name", "doc.kind": "Kind", "doc.deal_type": "Deal type (optional)",
           "doc.body": "Template (HTML, Jinja)", "doc.check": "Check",
           "doc.placeholders": "Placeholders", "doc.new_template": "New template",
           "kind.proposal": "Proposal", "kind.contract": "Contract", "kind.invoice": "Invoice",
           "kind.act": "Act", "kind.custom": "Other", "sent_by": "Channel",
           "doc.for_payment": "Invoice for payment", "doc.signed_by": "signed by",
           "questionnaires": "Questionnaires", "q.create": "Create questionnaire",
           "q.status.new": "not opened", "q.status.draft": "being filled",
           "q.status.submitted": "filled", "q.templates": "Questionnaire templates",
           "q.fields": "Questions", "document_questionnaire": "The client filled in",
           "document_paid": "Invoice paid",
           "doc.format": "Format", "doc.format.html": "HTML (editor)",
           "doc.format.docx": "DOCX (Word file)", "doc.docx_file": "DOCX file",
           "doc.docx_help": "The placeholders are those of HTML templates: "
                            "{{ client.inn }}, {%p for line in lines %}…{%p endfor %}. "
                            "The file is checked before it is saved.",
           "doc.docx_current": "Download the current file", "doc.check_ok": "No problems found.",
           "doc.download_docx": "DOCX", "doc.no_pdf": "No PDF: LibreOffice is not "
                                                      "installed, only the DOCX"},
})

COMPANY_LABELS = (("name", "Полное наименование"), ("short_name", "Краткое наименование"),
                  ("inn", "ИНН"), ("kpp", "КПП"), ("ogrn", "ОГРН"), ("address", "Адрес"),
                  ("bank_name", "Банк"), ("bik", "БИК"),
                  ("settlement_account", "Расчётный счёт"),
                  ("correspondent_account", "Корр. счёт"), ("director", "Руководитель"),
                  ("accountant", "Бухгалтер"), ("phone", "Телефон"), ("email", "E-mail"),
                  ("vat_rate", "Ставка НДС, % (пусто — без НДС)"))


# -- the manager, on the deal page ---------------------------------------------------------
def link_url(token: str) -> str:
    return url_for("documents.public", token=token, _external=True)


@bp.route("/deals/<int:deal_id>/documents", methods=["POST"])
@section("deals")
def generate(deal_id: int) -> Any:
    try:
        remote("documents", "generate_document", deal_id, request.form.get("template_id"),
               user_id=g.user.id,
               planned_payment_id=request.form.get("planned_payment_id") or None)
    except CrmError as exc:
        return refused(deal_id, "generate-form", exc)
    return redirect(url_for("deals.page", deal_id=deal_id) + "#panel-documents")


def _own(deal_id: int, document_id: int) -> dict[str, Any]:
    document = remote("documents", "get_document", document_id)
    if document["deal_id"] != deal_id:
        raise NotFound(f"document {document_id}", entity="document", id=document_id)
    return document


@bp.route("/deals/<int:deal_id>/documents/<int:document_id>/pdf")
@section("deals")
def manager_pdf(deal_id: int, document_id: int) -> Any:
    _own(deal_id, document_id)
    return _pdf(remote("documents", "document_pdf", document_id), inline=True)


@bp.route("/deals/<int:deal_id>/documents/<int:document_id>/docx")
@section("deals")
def manager_docx(deal_id: int, document_id: int) -> Any:
    _own(deal_id, document_id)
    return _docx(remote("documents", "document_docx", document_id))


@bp.route("/documents/templates/<int:template_id>/docx")
@admin_only
def template_docx(template_id: int) -> Any:
    return _docx(remote("documents", "template_docx", template_id))


@bp.route("/deals/<int:deal_id>/documents/<int:document_id>/<any(revoke, expiry, send):action>",
          methods=["POST"])
@section("deals")
def manage(deal_id: int, document_id: int, action: str) -> Any:
    try:
        document = _own(deal_id, document_id)
        if action == "revoke":
            remote("documents", "revoke_link", document_id, user_id=g.user.id)
        elif action == "expiry":
            remote("documents", "set_link_expiry", document_id,
                   request.form.get("expires_at") or None, user_id=g.user.id)
        else:
            contact = document["contact"] or {}
            channel = request.form.get("channel") or "email"
            address = request.form.get("address") or (
                contact.get("email") if channel == "email" else contact.get("phone")) or ""
            remote("notifications", "send_to_contact", g.user.id, document["client_id"],
                   contact.get("contact_id"), channel, address, document["title"],
                   f"{document['title']}: {link_url(document['token'])}",
                   request_id=request.form.get("request_id") or None)
    except CrmError as exc:
        return refused(deal_id, f"document-{action}-{document_id}", exc)
    return redirect(url_for("deals.page", deal_id=deal_id) + "#panel-documents")


# -- the administrator ---------------------------------------------------------------------
@bp.route("/documents/templates")
@admin_only
def templates() -> Any:
    return render_template("documents/templates.html",
                           templates=remote("documents", "list_templates",
                                            include_inactive=True),
                           error=request.args.get("error"))


@bp.route("/documents/templates/new", methods=["GET", "POST"])
@bp.route("/documents/templates/<int:template_id>", methods=["GET", "POST"])
@admin_only
def template(template_id: int | None = None) -> Any:
    state, status, problems, checked = NO_FORM, 200, [], False
    current = (remote("documents", "get_template", template_id) if template_id
               else {"kind": "custom", "name": "", "body": "", "active": True, "format": "html"})
    if request.method == "POST":
        form = {"id": template_id, "kind": request.form.get("kind"),
                "name": request.form.get("name"), "body": request.form.get("body", ""),
                "deal_type_id": request.form.get("deal_type_id") or None,
                "active": request.form.get("active") == "on"}
        upload = request.files.get("docx")
        if request.form.get("format") == "docx" or current.get("format") == "docx":
            # the Word file goes to the documents service, which checks it before saving
            form["format"] = "docx"
            form.pop("body")
            if upload and upload.filename:
                form["docx_b64"] = base64.b64encode(
                    upload.stream.read(DOCX_MAX_BYTES + 1)).decode()
        current = {**current, **{k: v for k, v in form.items() if k != "docx_b64"}}
        try:
            if request.form.get("check"):
                problems = (remote("documents", "check_docx_template", form.get("docx_b64"))
                            if form.get("format") == "docx"
                            else remote("documents", "check_template", form["body"]))
                checked = not problems
            else:
                saved = remote("documents", "save_template", form, user_id=g.user.id)
                return redirect(url_for("documents.template", template_id=saved["id"]))
        except CrmError as exc:
            problems = exc.details.get("params", {}).get("problems") or []
            state, status = failed("template-form", exc, {"docx_b64": "docx"}), status_of(exc)
    return render_template("documents/template.html", template=current, form=state,
                           problems=problems, checked=checked,
                           docx_max_mb=DOCX_MAX_BYTES // (1024 * 1024),
                           placeholders=[(name, fields or (), isinstance(fields, list))
                                         for name, fields in PLACEHOLDERS.items()],
                           deal_types=remote("deals", "list_deal_types")), status


@bp.route("/documents/company", methods=["GET", "POST"])
@admin_only
def company() -> Any:
    form, status = NO_FORM, 200
    data = remote("documents", "get_company")
    if request.method == "POST":
        try:
            remote("documents", "save_company",
                   {key: request.form.get(key, "") for key, _ in COMPANY_LABELS},
                   user_id=g.user.id)
            return redirect(url_for("documents.company"))
        except CrmError as exc:
            form, status = failed("company-form", exc), status_of(exc)
    return render_template("documents/company.html", company=data, labels=COMPANY_LABELS,
                           form=form), status


# -- the client's link ---------------------------------------------------------------------
class IpLimiter:
    """At most ``limit`` requests per IP in a sliding minute (per gateway process)."""

    def __init__(self) -> None:
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, ip: str, limit: int) -> bool:
        now = time.monotonic()
        with self.lock:
            if len(self.hits) > 10_000:  # forget idle addresses rather than grow forever
                self.hits = {k: v for k, v in self.hits.items() if v and v[-1] > now - 60}
            hits = self.hits.setdefault(ip, deque())
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True


LIMITER = IpLimiter()


@bp.before_request
def public_guard() -> None:
    if request.endpoint and request.endpoint.startswith("documents.public"):
        limit = int(current_app.config["CRM"].get("LINK_RATE_PER_MINUTE", 120))
        if not LIMITER.allow(_address(), limit):
            abort(429, description="Слишком много запросов: попробуйте через минуту.")


@bp.after_app_request
def public_headers(response: Response) -> Response:
    if request.endpoint and request.endpoint.startswith("documents.public"):
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'")
    return response


def _address() -> str:
    """The peer address (behind a proxy, what the proxy fix made of it): never a raw
    X-Forwarded-For, which a client writes itself and could use to dodge the limit."""
    return request.remote_addr or "-"


def _visitor() -> dict[str, Any]:
    return {"ip": _address(), "user_agent": request.headers.get("User-Agent", "")[:500]}


def _pdf(file: dict[str, Any], inline: bool = False) -> Response:
    disposition = "inline" if inline else "attachment"
    return Response(base64.b64decode(file["content_b64"]), mimetype="application/pdf",
                    headers={"Content-Disposition":
                             f'{disposition}; filename="{file["filename"]}"',
                             "X-Content-Type-Options": "nosniff"})


def _docx(file: dict[str, Any]) -> Response:
    return Response(base64.b64decode(file["content_b64"]), mimetype=DOCX_MIME,
                    headers={"Content-Disposition":
                             f'attachment; filename="{file["filename"]}"',
                             "X-Content-Type-Options": "nosniff"})


def _render(link: dict[str, Any], token: str, message: str | None = None,
            error: str | None = None, code_sent: dict[str, Any] | None = None) -> Any:
    manager = g.db.get(User, link["manager_id"]) if link.get("manager_id") else None
    return render_template("documents/public.html", link=link, token=token,
                           manager=manager, message=message, error=error,
                           code_sent=code_sent)


def _not_found() -> Response:
    return Response("Not Found", status=404, mimetype="text/plain")


@bp.route("/d/<token>")
def public(token: str) -> Any:
    try:
        link = remote("documents", "open_link", token, _visitor())
    except NotFound:
        return _not_found()
    return _render(link, token)


@bp.route("/d/<token>/document")
def public_document(token: str) -> Any:
    """The document's HTML alone, shown in a sandboxed frame of the link page."""
    try:
        link = remote("documents", "peek_link", token)
    except NotFound:
        return _not_found()
    if link["state"] != "active":
        return _not_found()
    # The HTML was rendered by the documents sandbox (every value escaped); the frame
    # that shows it is sandboxed too (no scripts, no forms, an opaque origin).
    response = current_app.make_response(render_template(
        "documents/document_frame.html", html=link["html"], css=BASE_CSS))
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/d/<token>/docx")
def public_docx(token: str) -> Any:
    try:
        return _docx(remote("documents", "link_docx", token))
    except NotFound:
        return _not_found()
    except Conflict:
        return redirect(url_for("documents.public", token=token))


@bp.route("/d/<token>/pdf")
def public_pdf(token: str) -> Any:
    try:
        return _pdf(remote("documents", "link_pdf", token))
    except NotFound:
        return _not_found()
    except Conflict:
        return redirect(url_for("documents.public", token=token))


MESSAGES = {"approve": "Спасибо! Документ согласован.", "decline": "Ваш ответ отправлен.",
            "sign": "Документ подписан. Спасибо!"}


@bp.route("/d/<token>/pay", methods=["POST"])
def public_pay(token: str) -> Any:
    """"Оплатить онлайн": to the provider's payment page, back to the link afterwards."""
    try:
        started = remote("documents", "pay_online", token, link_url(token))
    except NotFound:
        return _not_found()
    except CrmError as exc:
        try:
            link = remote("documents", "peek_link", token)
        except NotFound:
            return _not_found()
        return _render(link, token, error=exc.message), 422
    return redirect(started["confirmation_url"], code=303)


@bp.route("/d/<token>/<any(approve, decline, code, sign):action>", methods=["POST"])
def public_action(token: str, action: str) -> Any:
    visitor = _visitor()
    try:
        if action == "approve":
            link = remote("documents", "approve", token, visitor)
        elif action == "decline":
            link = remote("documents", "decline", token, request.form.get("comment", ""),
                          visitor)
        elif action == "code":
            sent = remote("documents", "request_sign_code", token, visitor)
            return _render(remote("documents", "peek_link", token), token, code_sent=sent)
        else:
            link = remote("documents", "sign", token, request.form.get("code", ""), visitor)
    except NotFound:
        return _not_found()
    except CrmError as exc:
        try:
            link = remote("documents", "peek_link", token)
        except NotFound:
            return _not_found()
        return _render(link, token, error=exc.message,
                       code_sent={} if action == "sign" else None), 422
    return _render(link, token, message=MESSAGES[action])


# -- questionnaires (G3) ---------------------------------------------------------------------
@bp.route("/deals/<int:deal_id>/questionnaires", methods=["POST"])
@section("deals")
def create_questionnaire(deal_id: int) -> Any:
    try:
        remote("documents", "create_questionnaire", deal_id, request.form.get("template_id"),
               user_id=g.user.id)
    except CrmError as exc:
        return refused(deal_id, "questionnaire-create", exc)
    return redirect(url_for("deals.page", deal_id=deal_id) + "#panel-documents")


def _send_answer_file(meta: dict[str, Any]) -> Any:
    """A file answer: always a download, never rendered in our origin."""
    from flask import send_file

    try:
        path = files.open_stored(files.files_dir(current_app.config["CRM"]), meta["key"])
    except (FileNotFoundError, ValidationError):
        return _not_found()
    response = send_file(path, mimetype="application/octet-stream", as_attachment=True,
                         download_name=meta.get("name") or "file")
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.route("/deals/<int:deal_id>/questionnaires/<int:questionnaire_id>/files/<key>")
@section("deals")
def questionnaire_file(deal_id: int, questionnaire_id: int, key: str) -> Any:
    found = next((q for q in remote("documents", "list_questionnaires", deal_id)
                  if q["id"] == questionnaire_id), None)
    if found is None:
        return _not_found()
    return _send_answer_file(remote("documents", "questionnaire_file",
                                    questionnaire_id=questionnaire_id, key=key))


@bp.route("/documents/questionnaires")
@admin_only
def questionnaire_templates() -> Any:
    return render_template("documents/questionnaires.html",
                           templates=remote("documents", "list_questionnaire_templates",
                                            include_inactive=True))


@bp.route("/documents/questionnaires/new", methods=["GET", "POST"])
@bp.route("/documents/questionnaires/<int:template_id>", methods=["GET", "POST"])
@admin_only
def questionnaire_template(template_id: int | None = None) -> Any:
    error = None
    current: dict[str, Any] = (
        remote("documents", "get_questionnaire_template", template_id) if template_id
        else {"name": "", "fields": [], "active": True})
    lines = questionnaires.as_lines(current["fields"])
    if request.method == "POST":
        lines = request.form.get("fields", "")
        data = {"id": template_id, "name": request.form.get("name"),
                "fields": questionnaires.parse_lines(lines),
                "active": request.form.get("active") == "on"}
        current = {**current, **data}
        try:
            saved = remote("documents", "save_questionnaire_template", data, user_id=g.user.id)
            return redirect(url_for("documents.questionnaire_template",
                                    template_id=saved["id"]))
        except CrmError as exc:
            error = f"{exc.details.get('field', '')}: {exc.message}"
    return render_template("documents/questionnaire_template.html", template=current,
                           lines=lines, error=error, kinds=questionnaires.FIELD_KINDS)


def _answers_from_form(fields: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The submitted form as answers; file answers are stored (checked like feed files)
    and their keys returned, to be removed if the submission is refused."""
    config = current_app.config["CRM"]
    folder, limit = files.files_dir(config), files.max_file_bytes(config)
    answers: dict[str, Any] = {}
    stored: list[str] = []
    try:
        for field in fields:
            key = field["key"]
            if field["kind"] == "multi_choice":
                answers[key] = request.form.getlist(key)
            elif field["kind"] == "file":
                upload = request.files.get(key)
                if upload is not None and upload.filename:
                    saved = files.store(upload.stream, upload.filename, folder, limit,
                                        f"answers.{key}")
                    stored.append(saved.key)
                    answers[key] = saved.as_dict()
            else:
                answers[key] = request.form.get(key, "")
    except ValidationError:
        files.remove_stored(folder, stored)
        raise
    return answers, stored


@bp.route("/q/<token>", methods=["GET", "POST"])
def public_questionnaire(token: str) -> Any:
    try:
        found = remote("documents", "open_questionnaire", token)
    except NotFound:
        return _not_found()
    error, status = None, 200
    values = dict(found["draft"] or {})
    if request.method == "POST" and found["status"] != "submitted":
        stored: list[str] = []
        try:
            answers, stored = _answers_from_form(found["fields"])
            values = answers
            remote("documents", "submit_questionnaire", token, answers)
            found = remote("documents", "open_questionnaire", token)
        except CrmError as exc:
            files.remove_stored(files.files_dir(current_app.config["CRM"]), stored)
            error, status = exc.message, 422
    return render_template("documents/questionnaire_public.html", q=found, token=token,
                           values=values, error=error), status


@bp.route("/q/<token>/draft", methods=["POST"])
def public_questionnaire_draft(token: str) -> Any:
    from flask import jsonify

    data = request.get_json(silent=True)
    try:
        saved = remote("documents", "save_questionnaire_draft", token,
                       data if isinstance(data, dict) else {})
    except NotFound:
        return _not_found()
    return jsonify(saved)


@bp.route("/q/<token>/files/<key>")
def public_questionnaire_file(token: str, key: str) -> Any:
    try:
        meta = remote("documents", "questionnaire_file", token=token, key=key)
    except NotFound:
        return _not_found()
    return _send_answer_file(meta)
