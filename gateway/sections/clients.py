"""Clients section pages (C1–C9): the configurable client list with its filters, import
and export; the client page with its panels and its requisites and history tabs."""
from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from gateway import i18n, loyalty_view
from gateway.aggregate import Panel, call
from gateway.auth import section
from gateway.formatting import typed_moment
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.models import UserSetting
from gateway.remote import remote, remote_many, user_names
from services.kit.contract.clients import (
    FILTERS,
    LIST_COLUMNS,
    stored_columns,
    validate_columns,
)
from services.kit.errors import CrmError, ValidationError

bp = Blueprint("clients", __name__)

COLUMNS_KEY = "clients.columns"
KINDS = ("legal", "entrepreneur", "person")
REQUISITES = {
    "legal": ("name", "inn", "kpp", "ogrn", "legal_address", "postal_address", "bik",
              "settlement_account", "correspondent_account"),
    "entrepreneur": ("name", "inn", "ogrnip", "legal_address", "postal_address", "bik",
                     "settlement_account", "correspondent_account"),
    "person": ("full_name", "phone", "email", "address"),
}
FILE_TIMEOUT = 120.0  # seconds: an import of 10 000 rows takes a while

i18n.extend({
    "ru": {
        "cl.col.number": "№", "cl.col.name": "Название", "cl.col.kind": "Тип",
        "cl.col.inn": "ИНН", "cl.col.city": "Город", "cl.col.manager": "Ответственный",
        "cl.col.phone": "Телефон", "cl.col.email": "E-mail", "cl.col.address": "Адрес",
        "cl.col.website": "Сайт", "cl.col.created_at": "Создан",
        "cl.col.last_contact_at": "Последний контакт",
        "cl.kind.legal": "Юрлицо", "cl.kind.entrepreneur": "ИП", "cl.kind.person": "Физлицо",
        "cl.req.name": "Полное наименование", "cl.req.inn": "ИНН", "cl.req.kpp": "КПП",
        "cl.req.ogrn": "ОГРН", "cl.req.ogrnip": "ОГРНИП",
        "cl.req.legal_address": "Юридический адрес", "cl.req.postal_address": "Почтовый адрес",
        "cl.req.bik": "БИК", "cl.req.settlement_account": "Расчётный счёт",
        "cl.req.correspondent_account": "Корреспондентский счёт", "cl.req.full_name": "ФИО",
        "cl.req.phone": "Телефон", "cl.req.email": "E-mail", "cl.req.address": "Адрес",
        "cl.search_hint": "Название, ИНН или телефон",
        "cl.any": "— любой —", "cl.created_from": "Создан с", "cl.created_to": "по",
        "cl.neglected_days": "Без контакта, дней", "cl.no_open_reminder": "Без открытых задач",
        "cl.apply": "Показать", "cl.reset": "Сбросить", "cl.found": "Найдено: {n}",
        "cl.found_more": "Найдено больше {n} — уточните поиск",
        "cl.columns": "Колонки", "cl.columns_save": "Сохранить колонки",
        "cl.up": "Выше", "cl.down": "Ниже", "cl.export": "Экспорт", "cl.import": "Импорт",
        "cl.prev": "← Назад", "cl.next": "Вперёд →", "cl.page": "Страница {page} из {pages}",
        "cl.tab.overview": "Обзор", "cl.tab.requisites": "Реквизиты", "cl.tab.history": "История",
        "cl.comments": "Комментарии", "cl.add_comment": "Добавить комментарий",
        "cl.reminder_needs_deal": "Задача ставится по сделке: сначала создайте сделку клиента.",
        "cl.reminders": "Напоминания", "cl.emails": "E-mail", "cl.phones_hint":
        "по одному в строке", "cl.edit": "Изменить", "cl.edit_all": "Все поля и менеджер",
        "cl.duplicates": "Возможные дубли",
        "cl.same_inn": "тот же ИНН", "cl.same_phone": "тот же телефон",
        "cl.merge": "Объединить: оставить этого клиента",
        "cl.merge_confirm": "Перенести всё из «{name}» в этого клиента? Это необратимо.",
        "cl.change_kind": "Сменить тип", "cl.history.when": "Когда",
        "cl.history.who": "Кто", "cl.history.field": "Поле", "cl.history.old": "Было",
        "cl.history.new": "Стало", "cl.history.source": "Откуда",
        "cl.h.created": "Создан", "cl.h.contact": "Контакт добавлен",
        "cl.h.contact.name": "Контакт: имя", "cl.h.contact.position": "Контакт: должность",
        "cl.h.contact.phones": "Контакт: телефоны", "cl.h.contact.emails": "Контакт: e-mail",
        "cl.h.merged": "Присоединён клиент", "cl.h.merged_into": "Объединён с",
        "cl.h.manager_id": "Ответственный",
        "cl.src.ui": "интерфейс", "cl.src.api": "API", "cl.src.import": "импорт",
        "cl.src.merge": "объединение", "cl.src.event": "событие", "cl.src.demo": "демо",
        "cl.import_title": "Импорт клиентов", "cl.import_hint":
        "CSV или XLSX: первая строка — заголовки (Название, ИНН, Контакт, Телефон, Email…).",
        "cl.preview": "Проверить файл", "cl.rows_ok": "Строк без ошибок: {n}",
        "cl.rows_bad": "Строк с ошибками (не будут загружены): {n}",
        "cl.new_clients": "Новых клиентов: {n}",
        "cl.existing_clients": "Уже есть в CRM (добавим контакты): {n}",
        "cl.row": "Строка", "cl.problem": "Ошибка", "cl.ignored": "Пропущенные колонки",
        "cl.run_import": "Загрузить строки без ошибок", "cl.import_done":
        "Создано клиентов: {created}, дополнено: {updated}, контактов: {contacts}",
        "cl.warnings": "Предупреждения", "cl.ext": "доб.",
    },
    "en": {
        "cl.col.number": "No.", "cl.col.name": "Name", "cl.col.kind": "Kind",
        "cl.col.inn": "INN", "cl.col.city": "City", "cl.col.manager": "Manager",
        "cl.col.phone": "Phone", "cl.col.email": "E-mail", "cl.col.address": "Address",
        "cl.col.website": "Website", "cl.col.created_at": "Created",
        "cl.col.last_contact_at": "Last contact",
        "cl.kind.legal": "Legal entity", "cl.kind.entrepreneur": "Entrepreneur",
        "cl.kind.person": "Private person",
        "cl.req.name": "Full legal name", "cl.req.inn": "INN", "cl.req.kpp": "KPP",
        "cl.req.ogrn": "OGRN", "cl.req.ogrnip": "OGRNIP",
        "cl.req.legal_address": "Legal address", "cl.req.postal_address": "Postal address",
        "cl.req.bik": "BIK", "cl.req.settlement_account": "Settlement account",
        "cl.req.correspondent_account": "Correspondent account", "cl.req.full_name": "Full name",
        "cl.req.phone": "Phone", "cl.req.email": "E-mail", "cl.req.address": "Address",
        "cl.search_hint": "Name, INN or phone",
        "cl.any": "— any —", "cl.created_from": "Created from", "cl.created_to": "to",
        "cl.neglected_days": "No contact for, days", "cl.no_open_reminder": "No open tasks",
        "cl.apply": "Show", "cl.reset": "Reset", "cl.found": "Found: {n}",
        "cl.found_more": "More than {n} found: narrow the search",
        "cl.columns": "Columns", "cl.columns_save": "Save columns",
        "cl.up": "Up", "cl.down": "Down", "cl.export": "Export", "cl.import": "Import",
        "cl.prev": "← Back", "cl.next": "Next →", "cl.page": "Page {page} of {pages}",
        "cl.tab.overview": "Overview", "cl.tab.requisites": "Requisites",
        "cl.tab.history": "History",
        "cl.comments": "Comments", "cl.add_comment": "Add comment",
        "cl.reminder_needs_deal": "A task belongs to a deal: create a deal for this client first.",
        "cl.reminders": "Reminders", "cl.emails": "E-mails", "cl.phones_hint": "one per line",
        "cl.edit": "Edit", "cl.edit_all": "All fields and the manager",
        "cl.duplicates": "Possible duplicates",
        "cl.same_inn": "same INN", "cl.same_phone": "same phone",
        "cl.merge": "Merge: keep this client",
        "cl.merge_confirm": "Move everything from “{name}” into this client? This cannot "
                            "be undone.",
        "cl.change_kind": "Change kind", "cl.history.when": "When",
        "cl.history.who": "Who", "cl.history.field": "Field", "cl.history.old": "Old value",
        "cl.history.new": "New value", "cl.history.source": "Via",
        "cl.h.created": "Created", "cl.h.contact": "Contact added",
        "cl.h.contact.name": "Contact: name", "cl.h.contact.position": "Contact: position",
        "cl.h.contact.phones": "Contact: phones", "cl.h.contact.emails": "Contact: e-mails",
        "cl.h.merged": "Merged in", "cl.h.merged_into": "Merged into",
        "cl.h.manager_id": "Manager",
        "cl.src.ui": "UI", "cl.src.api": "API", "cl.src.import": "import",
        "cl.src.merge": "merge", "cl.src.event": "event", "cl.src.demo": "demo",
        "cl.import_title": "Import clients", "cl.import_hint":
        "CSV or XLSX: the first row holds the headers (Name, INN, Contact, Phone, Email…).",
        "cl.preview": "Check the file", "cl.rows_ok": "Rows without errors: {n}",
        "cl.rows_bad": "Rows with errors (will not be imported): {n}",
        "cl.new_clients": "New clients: {n}",
        "cl.existing_clients": "Already in the CRM (contacts will be added): {n}",
        "cl.row": "Row", "cl.problem": "Problem", "cl.ignored": "Ignored columns",
        "cl.run_import": "Import the rows without errors", "cl.import_done":
        "Clients created: {created}, completed: {updated}, contacts: {contacts}",
        "cl.warnings": "Warnings", "cl.ext": "ext.",
    },
})


def back(endpoint: str, error: CrmError | None = None, **values: Any) -> Any:
    """After a form post: back to the page, with the error shown if there was one."""
    if error is not None:
        values["error"] = error.message
    return redirect(url_for(endpoint, **values))


def field_label(field: str) -> str:
    """A history line's field as people read it ("requisites.kpp" -> "КПП")."""
    if field.startswith("requisites."):
        return str(g.t("cl.req." + field.removeprefix("requisites.")))
    key = f"cl.h.{field}" if f"cl.h.{field}" in i18n.STRINGS["ru"] else f"cl.col.{field}"
    return str(g.t(key))


# -- the user's columns ------------------------------------------------------------------
def load_columns(user_id: int) -> list[str]:
    row = g.db.get(UserSetting, (user_id, COLUMNS_KEY))
    return stored_columns(row.value if row is not None else None)


def save_columns(user_id: int, columns: object) -> list[str]:
    chosen = validate_columns(columns)
    row = g.db.get(UserSetting, (user_id, COLUMNS_KEY))
    if row is None:
        g.db.add(UserSetting(user_id=user_id, key=COLUMNS_KEY, value=chosen))
    else:
        row.value = chosen
    g.db.commit()
    return chosen


# -- the list request --------------------------------------------------------------------
def list_request(args: Any) -> dict[str, Any]:
    """search_clients/export_clients arguments from query-string arguments."""
    sort = args.get("sort") or "name"
    # ``ids`` is a program's slice, never the query string's
    filters = {key: args.get(key) for key in FILTERS if args.get(key) and key != "ids"}
    if args.get("rfm") in loyalty_view.SEGMENTS:  # the list's RFM segment choice
        filters["segment"] = args["rfm"]
    return {"query": args.get("q", ""), "filters": filters, "sort": sort,
            "manager_order": managers_in_name_order() if sort.lstrip("-") == "manager" else []}


def managers_in_name_order() -> list[int]:
    """User ids in the order of their names: how the list sorts by manager."""
    managers = user_names()
    return sorted(managers, key=lambda uid: (managers[uid].casefold(), uid))


@bp.route("/clients")
@section("clients")
def index(form: Form = NO_FORM) -> Any:
    wanted = list_request(request.args)
    page = request.args.get("page", 1, type=int) or 1
    error = request.args.get("error")
    # the page and the groups of the filter asked at once: one wait, not two
    asked = remote_many({
        "list": call("clients", "search_clients", wanted["query"], page=page,
                     per_page=request.args.get("per_page", 50, type=int) or 50,
                     filters=wanted["filters"], sort=wanted["sort"],
                     manager_order=wanted["manager_order"]),
        "groups": call("clients", "list_client_groups")})
    try:
        if asked["list"].error is not None:
            raise asked["list"].error
        result = asked["list"].data
    except ValidationError as exc:
        # a bad filter is a message on the same page, not an error page
        result, error = {"total": 0, "page": 1, "per_page": 50, "items": []}, exc.message
    columns = load_columns(g.user.id)
    pages = max(1, -(-int(result["total"]) // int(result["per_page"])))
    return render_template("clients/index.html", result=result, pages=pages,
                           columns=columns, all_columns=LIST_COLUMNS,
                           hidden=[c for c in LIST_COLUMNS if c not in columns],
                           args=request.args.to_dict(), sort=wanted["sort"], managers=user_names(),
                           kinds=KINDS, error=error, segments=loyalty_view.SEGMENTS,
                           groups=list(asked["groups"].data) if asked["groups"].ok else [],
                           rfm=loyalty_view.segments_for(result["items"]),
                           form=form)


@bp.route("/clients/columns", methods=["POST"])
@section("clients")
def columns() -> Any:
    try:
        save_columns(g.user.id, request.form.getlist("col"))
    except ValidationError as exc:
        return back("clients.index", exc)
    return redirect(request.form.get("next") or url_for("clients.index"))


@bp.route("/clients", methods=["POST"])
@section("clients")
def create() -> Any:
    form = request.form
    data: dict[str, Any] = {k: form.get(k) for k in ("name", "inn", "kind", "city") if form.get(k)}
    if form.get("contact_name") or form.get("contact_phone"):
        data["contacts"] = [{"name": form.get("contact_name"),
                             "phones": [form.get("contact_phone")] if form.get("contact_phone")
                             else []}]
    try:
        client = remote("clients", "create_client", data, user_id=g.user.id, lang=g.lang)
    except CrmError as exc:
        return index(failed("new-client", exc, {"contacts.0.phones": "contact_phone",
                                                "contacts.0.name": "contact_name",
                                                "contacts": "contact_phone"})), status_of(exc)
    return redirect(url_for("clients.page", client_id=client["id"]))


@bp.route("/clients/export.<fmt>")
@section("clients")
def export(fmt: str) -> Any:
    wanted = list_request(request.args)
    result = remote("clients", "export_clients", wanted["query"], filters=wanted["filters"],
                    sort=wanted["sort"], fmt=fmt, lang=g.lang,
                    manager_order=wanted["manager_order"], timeout=FILE_TIMEOUT)
    return file_response(result)


def file_response(result: dict[str, Any]) -> Response:
    kind = ("text/csv; charset=utf-8" if result["filename"].endswith(".csv") else
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    # content_type, not mimetype: Flask would add a second "; charset=utf-8" to text/csv
    response = Response(base64.b64decode(result["content_b64"]), content_type=kind)
    response.headers["Content-Disposition"] = f'attachment; filename="{result["filename"]}"'
    response.headers["X-Clients-Truncated"] = "1" if result.get("truncated") else "0"
    return response


# -- import ------------------------------------------------------------------------------
@bp.route("/clients/import", methods=["GET", "POST"])
@section("clients")
def import_file() -> Any:
    preview, error = None, request.args.get("error")
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            error = g.t("cl.import_hint")
        else:
            try:
                preview = remote("clients", "preview_import",
                                 base64.b64encode(upload.read()).decode("ascii"),
                                 user_id=g.user.id, filename=upload.filename,
                                 timeout=FILE_TIMEOUT)
            except ValidationError as exc:
                error = exc.message
    return render_template("clients/import.html", preview=preview, result=None, error=error)


@bp.route("/clients/import/<int:import_id>", methods=["POST"])
@section("clients")
def run_import(import_id: int) -> Any:
    try:
        result = remote("clients", "run_import", import_id, user_id=g.user.id, lang=g.lang,
                        timeout=FILE_TIMEOUT)
    except CrmError as exc:
        return back("clients.import_file", exc)
    return render_template("clients/import.html", preview=None, result=result, error=None)


# -- the client page ---------------------------------------------------------------------
@bp.route("/clients/<int:client_id>/reminders", methods=["POST"])
@section("clients")
def add_reminder(client_id: int) -> Any:
    """A task from the client page: it belongs to one of the client's deals."""
    form = request.form
    data = {"text": form.get("text"), "due_at": typed_moment(form.get("due_at")),
            "assignee_id": g.user.id}
    try:
        deal_id = int(form.get("deal_id") or "")
    except ValueError:
        return refused(client_id, "client-reminder-form",
                       ValidationError("deal_id: choose a deal", field="deal_id",
                                       key="deal_id.required"))
    try:
        remote("deals", "create_reminder", deal_id, data, user_id=g.user.id)
    except CrmError as exc:
        return refused(client_id, "client-reminder-form", exc)
    return redirect(url_for("clients.page", client_id=client_id) + "#panel-reminders")


@bp.route("/clients/<int:client_id>")
@section("clients")
def page(client_id: int, form: Form = NO_FORM, tab: str | None = None) -> Any:
    tab = tab or request.args.get("tab", "overview")
    calls = {"client": call("clients", "get_client", client_id),
             "duplicates": call("clients", "find_duplicates", client_id),
             "comments": call("clients", "list_comments", client_id),
             "deals": call("deals", "list_deals", client_id=client_id),
             "reminders": call("deals", "list_reminders", client_id=client_id),
             # the other teams' panels, under the same single deadline
             "calls": call("telephony", "list_calls", client_id=client_id, limit=20),
             "messages": call("notifications", "list_client_messages", client_id),
             "loyalty": call("analytics", "client_loyalty", client_id),
             "groups": call("clients", "list_client_groups"),
             "relations": call("clients", "client_relations", client_id)}
    if tab == "history":
        calls["history"] = call("clients", "client_history", client_id)
    panels = remote_many(calls)
    if not panels["client"].ok:
        raise panels["client"].error  # type: ignore[misc]
    client = panels["client"].data
    if client.get("merged_into"):
        return redirect(url_for("clients.page", client_id=client["merged_into"]))
    return render_template("clients/page.html", client=client, panels=panels, tab=tab,
                           managers=user_names(), kinds=KINDS, requisites=REQUISITES,
                           field_label=field_label,
                           history=panels.get("history", Panel(data=[])),
                           error=request.args.get("error"), form=form)


def refused(client_id: int, form_id: str, exc: CrmError, inputs: dict[str, str] | None = None,
            tab: str | None = None) -> Any:
    """The client page again with form ``form_id`` as typed and its errors at the fields."""
    return page(client_id, failed(form_id, exc, inputs), tab), status_of(exc)


# a requisites error names ``kpp`` (or ``requisites.kpp``); the page's input is ``req.kpp``
REQUISITE_INPUTS = {name: f"req.{key}" for keys in REQUISITES.values() for key in keys
                    for name in (key, f"requisites.{key}")}


def form_value(name: str) -> str | None:
    value = request.form.get(name)
    return value.strip() if value is not None else None


@bp.route("/clients/<int:client_id>", methods=["POST"])
@section("clients")
def update(client_id: int) -> Any:
    data = {key: form_value(key) for key in ("name", "address", "website", "city",
                                             "manager_id") if key in request.form}
    return _update(client_id, data, "overview", "client-form")


@bp.route("/clients/<int:client_id>/requisites", methods=["POST"])
@section("clients")
def update_requisites(client_id: int) -> Any:
    data: dict[str, Any] = {"requisites": {key[4:]: form_value(key) for key in request.form
                                           if key.startswith("req.")}}
    if request.form.get("kind"):
        data["kind"] = request.form["kind"]
    return _update(client_id, data, "requisites",
                   "change-kind" if "kind" in request.form else "requisites-form")


def _update(client_id: int, data: dict[str, Any], tab: str, form_id: str) -> Any:
    version = request.form.get("version")
    try:
        remote("clients", "update_client", client_id, data, user_id=g.user.id,
               version=int(version) if version else None)
    except CrmError as exc:
        return refused(client_id, form_id, exc,
                       REQUISITE_INPUTS if tab == "requisites" else None, tab)
    return redirect(url_for("clients.page", client_id=client_id, tab=tab))


def lines(name: str) -> list[str]:
    return [line.strip() for line in (request.form.get(name) or "").splitlines()
            if line.strip()]


@bp.route("/clients/<int:client_id>/contacts", methods=["POST"])
@section("clients")
def add_contact(client_id: int) -> Any:
    data = {"name": form_value("name"), "position": form_value("position") or None,
            "phones": lines("phone"), "emails": lines("email")}
    try:
        remote("clients", "add_contact", client_id, data, user_id=g.user.id)
    except CrmError as exc:
        return refused(client_id, "add-contact", exc, {"phones": "phone", "emails": "email"})
    return redirect(url_for("clients.page", client_id=client_id))


@bp.route("/clients/<int:client_id>/contacts/<int:contact_id>", methods=["POST"])
@section("clients")
def update_contact(client_id: int, contact_id: int) -> Any:
    data = {"name": form_value("name"), "position": form_value("position") or None,
            "phones": lines("phones"), "emails": lines("emails")}
    try:
        remote("clients", "update_contact", contact_id, data, user_id=g.user.id)
    except CrmError as exc:
        return refused(client_id, f"contact-{contact_id}", exc)
    return redirect(url_for("clients.page", client_id=client_id))


@bp.route("/clients/<int:client_id>/comments", methods=["POST"])
@section("clients")
def add_comment(client_id: int) -> Any:
    try:
        remote("clients", "add_comment", client_id, request.form.get("text", ""),
               user_id=g.user.id)
    except CrmError as exc:
        return refused(client_id, "comment-form", exc)
    return redirect(url_for("clients.page", client_id=client_id))


@bp.route("/clients/<int:client_id>/merge", methods=["POST"])
@section("clients")
def merge(client_id: int) -> Any:
    try:
        remote("clients", "merge_clients", client_id,
               request.form.get("merged_id", type=int), user_id=g.user.id)
    except CrmError as exc:
        return refused(client_id, "duplicates", exc)
    return redirect(url_for("clients.page", client_id=client_id))

