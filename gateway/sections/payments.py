"""Payments section: the deal page's payment plan (P1, P2), overdue payments, the cash-flow
forecast with its chart and XLSX export (P3), statement imports, own accounts and the
review queue (P4)."""
from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, redirect, render_template, request, send_file, url_for
from werkzeug.datastructures import FileStorage

from gateway.auth import section
from gateway.formatting import current_zone
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.i18n import extend
from gateway.messages import render as render_message
from gateway.remote import remote, user_names
from gateway.sections.deals import back, refused
from services.kit import clock
from services.kit.config import ROOT
from services.kit.errors import CrmError, Forbidden, ValidationError

bp = Blueprint("payments", __name__)

# Who sees the money of everyone: overdue lists, statements, the review queue, corrections.
FINANCE_ROLES = {"accountant", "head", "admin"}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
CHUNK = 1024 * 1024

extend({
    "ru": {
        "payments.forecast": "Прогноз поступлений", "payments.overdue": "Просроченные платежи",
        "payments.imports": "Выписки", "payments.review": "Разбор поступлений",
        "payments.accounts": "Наши счета", "payments.credit": "Переплата",
        "payments.overdue_total": "Просрочено", "payments.currency": "Валюта",
        "payments.invoice": "Счёт №", "payments.contract": "Договор №",
        "payments.comment": "Комментарий", "payments.move": "Перенести срок",
        "payments.new_due": "Новый срок", "payments.reason": "Причина",
        "payments.moves": "Переносы срока", "payments.cancel": "Отменить",
        "payments.cancelled": "Отменён", "payments.receipts": "Поступления",
        "payments.received_on": "Дата поступления", "payments.source": "Источник",
        "payments.source.manual": "вручную", "payments.source.bank": "банк",
        "payments.source.online": "онлайн", "payments.correct": "Исправить",
        "payments.cancel_receipt": "Отменить поступление",
        "payments.corrections": "Исправления поступлений",
        "payments.correction.correction": "исправлено",
        "payments.correction.cancellation": "отменено",
        "payments.days_overdue": "Дней просрочки", "payments.deal": "Сделка",
        "payments.client": "Клиент", "payments.manager": "Менеджер",
        "payments.no_manager": "не назначен", "payments.total": "Итого",
        "payments.period": "Период", "payments.expected": "Ожидается",
        "payments.received_line": "Получено", "payments.received_to_date": "Получено нарастающим",
        "payments.later": "Позже", "payments.granularity": "Шаг",
        "payments.day": "День", "payments.week": "Неделя", "payments.month": "Месяц",
        "payments.periods": "Периодов вперёд", "payments.past": "Периодов назад",
        "payments.show": "Показать", "payments.export": "Скачать XLSX",
        "payments.everyone": "Все менеджеры", "payments.by_manager": "По менеджерам",
        "payments.upload": "Загрузить выписку", "payments.file": "Файл (1С, camt.053, MT940)",
        "payments.filename": "Файл", "payments.format": "Формат",
        "payments.job_status": "Состояние", "payments.job.queued": "в очереди",
        "payments.job.running": "обрабатывается", "payments.job.done": "готово",
        "payments.job.failed": "отклонён", "payments.progress": "Ход обработки",
        "payments.phase.reading": "чтение файла", "payments.phase.matching": "сопоставление",
        "payments.phase.done": "готово", "payments.phase.retry": "повтор",
        "payments.records": "Записей", "payments.credits": "Поступлений",
        "payments.debits": "Списаний", "payments.new": "Новых",
        "payments.duplicates": "Уже были", "payments.matched": "Сопоставлено",
        "payments.to_review": "На разбор", "payments.unmatched": "Не сопоставлено",
        "payments.ignored": "Пропущено (списания, сторно)",
        "payments.foreign_account": "На чужие счета", "payments.warnings": "Предупреждения",
        "payments.unknown_accounts": "Счета из выписки, которых нет в списке наших",
        "payments.add_account": "Добавить в наши счета", "payments.account": "Счёт",
        "payments.account_name": "Название", "payments.remove": "Убрать",
        "payments.error_at": "Ошибка в файле", "payments.transactions": "Операции",
        "payments.date": "Дата", "payments.number": "№", "payments.payer": "Плательщик",
        "payments.purpose": "Назначение", "payments.reasons": "Почему",
        "payments.candidates": "Подходящие платежи", "payments.confirm": "Подтвердить",
        "payments.split": "Разделить", "payments.dismiss": "Не оплата клиента",
        "payments.note": "Примечание", "payments.unallocated": "Не распределено",
        "payments.queue_empty": "Всё разобрано", "payments.status.review": "сомнительно",
        "payments.status.unmatched": "не найдено", "payments.status.matched": "сопоставлено",
        "payments.status.resolved": "разобрано", "payments.status.dismissed": "не оплата",
        "payments.status.ignored": "пропущено", "payments.status.foreign_account": "чужой счёт",
        "payments.payment_id": "Платёж №", "payments.other_payment": "Другой платёж",
        "payments.allocations": "Платёж №: сумма, по строке",
        "payments.all_imports": "Все загрузки", "payments.import": "Загрузка",
        "payments.none": "Нет", "payments.chart": "График", "payments.all": "Все",
    },
    "en": {
        "payments.forecast": "Cash-flow forecast", "payments.overdue": "Overdue payments",
        "payments.imports": "Statements", "payments.review": "Review queue",
        "payments.accounts": "Our accounts", "payments.credit": "Credit",
        "payments.overdue_total": "Overdue", "payments.currency": "Currency",
        "payments.invoice": "Invoice no.", "payments.contract": "Contract no.",
        "payments.comment": "Comment", "payments.move": "Move due date",
        "payments.new_due": "New due date", "payments.reason": "Reason",
        "payments.moves": "Due date moves", "payments.cancel": "Cancel",
        "payments.cancelled": "Cancelled", "payments.receipts": "Receipts",
        "payments.received_on": "Received on", "payments.source": "Source",
        "payments.source.manual": "manual", "payments.source.bank": "bank",
        "payments.source.online": "online", "payments.correct": "Correct",
        "payments.cancel_receipt": "Cancel receipt",
        "payments.corrections": "Receipt corrections",
        "payments.correction.correction": "corrected",
        "payments.correction.cancellation": "cancelled",
        "payments.days_overdue": "Days overdue", "payments.deal": "Deal",
        "payments.client": "Client", "payments.manager": "Manager",
        "payments.no_manager": "unassigned", "payments.total": "Total",
        "payments.period": "Period", "payments.expected": "Expected",
        "payments.received_line": "Received", "payments.received_to_date": "Received to date",
        "payments.later": "Later", "payments.granularity": "Step",
        "payments.day": "Day", "payments.week": "Week", "payments.month": "Month",
        "payments.periods": "Periods ahead", "payments.past": "Periods back",
        "payments.show": "Show", "payments.export": "Download XLSX",
        "payments.everyone": "All managers", "payments.by_manager": "By manager",
        "payments.upload": "Upload a statement", "payments.file": "File (1C, camt.053, MT940)",
        "payments.filename": "File", "payments.format": "Format",
        "payments.job_status": "Status", "payments.job.queued": "queued",
        "payments.job.running": "processing", "payments.job.done": "done",
        "payments.job.failed": "refused", "payments.progress": "Progress",
        "payments.phase.reading": "reading the file", "payments.phase.matching": "matching",
        "payments.phase.done": "done", "payments.phase.retry": "retrying",
        "payments.records": "Records", "payments.credits": "Credits",
        "payments.debits": "Debits", "payments.new": "New",
        "payments.duplicates": "Seen before", "payments.matched": "Matched",
        "payments.to_review": "To review", "payments.unmatched": "Unmatched",
        "payments.ignored": "Skipped (debits, reversals)",
        "payments.foreign_account": "To other accounts", "payments.warnings": "Warnings",
        "payments.unknown_accounts": "Accounts in the file that are not in our list",
        "payments.add_account": "Add to our accounts", "payments.account": "Account",
        "payments.account_name": "Name", "payments.remove": "Remove",
        "payments.error_at": "Error in the file", "payments.transactions": "Transactions",
        "payments.date": "Date", "payments.number": "No.", "payments.payer": "Payer",
        "payments.purpose": "Purpose", "payments.reasons": "Why",
        "payments.candidates": "Candidate payments", "payments.confirm": "Confirm",
        "payments.split": "Split", "payments.dismiss": "Not a client payment",
        "payments.note": "Note", "payments.unallocated": "Unallocated",
        "payments.queue_empty": "Nothing to review", "payments.status.review": "doubtful",
        "payments.status.unmatched": "unmatched", "payments.status.matched": "matched",
        "payments.status.resolved": "resolved", "payments.status.dismissed": "not a payment",
        "payments.status.ignored": "skipped", "payments.status.foreign_account": "other account",
        "payments.payment_id": "Payment no.", "payments.other_payment": "Another payment",
        "payments.allocations": "Payment no.: amount, one per line",
        "payments.all_imports": "All uploads", "payments.import": "Upload",
        "payments.none": "None", "payments.chart": "Chart", "payments.all": "All",
    },
})


# Why a transaction matched or not, as services/payments/domain/matching.py words it (English),
# shown in the user's language.
REASONS_RU: list[tuple[re.Pattern[str], str]] = [(re.compile(p), r) for p, r in (
    (r"^payer INN (\d+) is the client's$", r"ИНН плательщика \1 — ИНН клиента"),
    (r"^amount (\S+) equals the outstanding (\S+)$", r"сумма \1 равна остатку \2"),
    (r"^amount (\S+) is part of the outstanding (\S+)$", r"сумма \1 — часть остатка \2"),
    (r"^the purpose names invoice (.+)$", r"в назначении указан счёт \1"),
    (r"^the purpose names contract (.+)$", r"в назначении указан договор \1"),
    (r"^paid (\d+) days from the due date (\S+)$", r"оплачено в \1 дн. от срока \2"),
    (r"^(\d+) planned payments fit equally well; choose one$",
     r"подходят одинаково (\1): выберите платёж"),
    (r"^(\d+) planned payments of this client have this amount; choose one$",
     r"у клиента \1 платежа с такой суммой: выберите"),
    (r"^(\d+) planned payments are named in the purpose with this amount; choose one$",
     r"в назначении названы \1 платежа с такой суммой: выберите"),
    (r"^paid by INN (\d+), not the client's (.+)$",
     r"заплатил ИНН \1, а не клиент (\2)"),
    (r"^the file gives no payer INN$", "в файле нет ИНН плательщика"),
    (r"^no open planned payment fits the payer INN, amount or the documents named in the "
     r"purpose$", "нет открытого платежа с таким ИНН, суммой или документом из назначения"),
    (r"^outgoing payment$", "списание, не поступление"),
    (r"^a bank reversal, not a client payment$", "сторно банка, не оплата клиента"),
    (r"^the planned payment changed while the statement was imported; check it$",
     "платёж изменился во время загрузки выписки — проверьте"),
    (r"^receipt (\d+) was cancelled: (.*)$", r"поступление \1 отменено: \2"),
)]


def reason_text(reason: str) -> str:
    if g.get("lang", "ru") != "ru":
        return reason
    for pattern, replacement in REASONS_RU:
        if pattern.match(reason):
            return pattern.sub(replacement, reason)
    return reason


@bp.app_template_filter("payment_reason")
def payment_reason(reason: str) -> str:
    return reason_text(str(reason))


def is_finance() -> bool:
    user = g.get("user")  # error pages render before the user is loaded too
    return bool(user is not None and set(user.roles) & FINANCE_ROLES)


def need_finance() -> None:
    if not is_finance():
        raise Forbidden("this needs one of the roles " + ", ".join(sorted(FINANCE_ROLES)),
                        section="payments")


@bp.app_context_processor
def payment_roles() -> dict[str, Any]:
    return {"payments_finance": is_finance()}


# --- statement files -----------------------------------------------------------------------


def statements_dir() -> Path:
    folder = Path(str(current_app.config["CRM"].get("STATEMENTS_DIR") or "var/statements"))
    return folder if folder.is_absolute() else ROOT / folder


def max_statement_bytes() -> int:
    return int(current_app.config["CRM"].get("STATEMENTS_MAX_BYTES") or DEFAULT_MAX_BYTES)


def store_upload(stream: IO[bytes]) -> str:
    """Copy an uploaded file to STATEMENTS_DIR/uploads in chunks (never whole in memory),
    refusing it past the size limit; returns the stored name the payments service takes."""
    limit = max_statement_bytes()
    uploads = statements_dir() / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    stored = uuid.uuid4().hex
    partial = uploads / f"{stored}.part"
    written = 0
    try:
        with partial.open("wb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise ValidationError(f"Файл больше предела в {limit} байт.", field="file",
                                          key="file.too_large",
                                          params={"size": written, "max": limit})
                out.write(chunk)
        if written == 0:
            raise ValidationError("Файл пустой.", field="file", key="file.empty")
        os.replace(partial, uploads / stored)
    finally:
        partial.unlink(missing_ok=True)
    return stored


def queue_statement(stream: IO[bytes], filename: str) -> dict[str, Any]:
    stored = store_upload(stream)
    try:
        return remote("payments", "create_import",
                      {"stored_name": stored, "filename": filename[:255] or "statement"},
                      user_id=g.user.id)
    except CrmError as exc:
        if exc.http_status != 504:  # after a timeout the job may exist: keep its file
            (statements_dir() / "uploads" / stored).unlink(missing_ok=True)
        raise


def uploaded_file() -> FileStorage:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Выберите файл выписки.", field="file", key="file.required")
    return upload


# --- forecast ------------------------------------------------------------------------------


def forecast_query(args: Any) -> dict[str, Any]:
    query = {k: args.get(k) for k in ("granularity", "periods", "past", "manager_id",
                                      "currency") if args.get(k)}
    if not is_finance():  # a manager forecasts their own deals
        query["manager_id"] = g.user.id
    return query


def forecast_xlsx(data: dict[str, Any], names: dict[int, str], t: Callable[..., str]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, LineChart, Reference
    from openpyxl.styles import Font

    def number(value: Any) -> Decimal | None:
        return None if value in (None, "") else Decimal(str(value))

    book = Workbook()
    sheet = book.active
    sheet.title = t("payments.forecast")[:31]
    bold = Font(bold=True)
    sheet.append([t("payments.forecast"), data["currency"], str(data["today"])])
    sheet.append([t("payments.period"), t("payments.expected"), t("payments.received_line"),
                  t("payments.received_to_date")])
    for cell in sheet[2]:
        cell.font = bold
    first = sheet.max_row + 1
    for p in data["periods"]:
        sheet.append([p["label"], number(p["expected"]), number(p["received"]),
                      number(p["received_to_date"])])
    last = sheet.max_row
    sheet.append([t("payments.overdue_total"), number(data["overdue"])])
    sheet.append([t("payments.later"), number(data["later"])])
    sheet.append([t("payments.total"), number(data["expected_total"]),
                  number(data["received_total"])])
    for row in sheet.iter_rows(min_row=first, min_col=2, max_col=4):
        for cell in row:
            cell.number_format = "#,##0.00"
    sheet.column_dimensions["A"].width = 18
    for column in "BCD":
        sheet.column_dimensions[column].width = 16
    if data["periods"]:
        bars = BarChart()
        bars.title = t("payments.forecast")
        bars.add_data(Reference(sheet, min_col=2, min_row=2, max_row=last), titles_from_data=True)
        bars.set_categories(Reference(sheet, min_col=1, min_row=first, max_row=last))
        line = LineChart()
        line.add_data(Reference(sheet, min_col=4, min_row=2, max_row=last), titles_from_data=True)
        bars += line
        bars.width, bars.height = 22, 10
        sheet.add_chart(bars, "F2")

    people = book.create_sheet(t("payments.by_manager")[:31])
    people.append([t("payments.manager"), t("payments.overdue_total"),
                   *[p["label"] for p in data["periods"]], t("payments.later"),
                   t("payments.total")])
    for cell in people[1]:
        cell.font = bold
    for m in data["managers"]:
        name = names.get(m["manager_id"]) if m["manager_id"] is not None else None
        people.append([name or (f"#{m['manager_id']}" if m["manager_id"] is not None
                                else t("payments.no_manager")),
                       number(m["overdue"]), *[number(v) for v in m["expected"]],
                       number(m["later"]), number(m["total_expected"])])
    for row in people.iter_rows(min_row=2, min_col=2):
        for cell in row:
            cell.number_format = "#,##0.00"
    people.column_dimensions["A"].width = 28
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- the deal page panel's forms -------------------------------------------------------------


def _deal_action(deal_id: int, fn: Callable[[], Any], form_id: str = "add-payment") -> Any:
    try:
        fn()
    except CrmError as exc:
        return refused(deal_id, form_id, exc)
    return redirect(url_for("deals.page", deal_id=deal_id) + "#panel-payments")


def _form(*names: str) -> dict[str, Any]:
    return {n: request.form.get(n) for n in names if request.form.get(n) not in (None, "")}


@bp.route("/deals/<int:deal_id>/payments", methods=["POST"])
@section("payments")
def add(deal_id: int) -> Any:
    return _deal_action(deal_id, lambda: remote(
        "payments", "add_planned_payment", deal_id,
        _form("amount", "due_date", "currency", "comment", "invoice_number", "contract_number"),
        user_id=g.user.id))


@bp.route("/deals/<int:deal_id>/payments/<int:payment_id>/receive", methods=["POST"])
@section("payments")
def receive(deal_id: int, payment_id: int) -> Any:
    return _deal_action(deal_id, lambda: remote(
        "payments", "mark_received", payment_id, _form("amount", "received_on", "comment"),
        user_id=g.user.id), f"receive-{payment_id}")


@bp.route("/deals/<int:deal_id>/payments/<int:payment_id>/move", methods=["POST"])
@section("payments")
def move(deal_id: int, payment_id: int) -> Any:
    return _deal_action(deal_id, lambda: remote(
        "payments", "move_due_date", payment_id, _form("due_date", "reason"),
        user_id=g.user.id), f"move-{payment_id}")


@bp.route("/deals/<int:deal_id>/payments/<int:payment_id>/cancel", methods=["POST"])
@section("payments")
def cancel(deal_id: int, payment_id: int) -> Any:
    return _deal_action(deal_id, lambda: remote(
        "payments", "cancel_planned_payment", payment_id, _form("reason"), user_id=g.user.id),
        f"cancel-{payment_id}")


@bp.route("/deals/<int:deal_id>/receipts/<int:receipt_id>/correct", methods=["POST"])
@section("payments")
def correct_receipt(deal_id: int, receipt_id: int) -> Any:
    need_finance()
    return _deal_action(deal_id, lambda: remote(
        "payments", "correct_receipt", receipt_id, _form("amount", "received_on", "reason"),
        user_id=g.user.id), f"correct-{receipt_id}")


@bp.route("/deals/<int:deal_id>/receipts/<int:receipt_id>/cancel", methods=["POST"])
@section("payments")
def cancel_receipt(deal_id: int, receipt_id: int) -> Any:
    need_finance()
    return _deal_action(deal_id, lambda: remote(
        "payments", "cancel_receipt", receipt_id, _form("reason"), user_id=g.user.id),
        f"cancel-receipt-{receipt_id}")


# --- section pages ---------------------------------------------------------------------------


@bp.route("/payments")
@section("payments")
def index() -> Any:
    return redirect(url_for("payments.review" if is_finance() else "payments.forecast"))


@bp.route("/payments/forecast")
@section("payments")
def forecast() -> Any:
    try:
        data = remote("payments", "forecast", forecast_query(request.args))
    except ValidationError as exc:
        data = remote("payments", "forecast", forecast_query({}))
        return render_template("payments/forecast.html", data=data, names=user_names(),
                               error=exc.message, args=request.args)
    if request.args.get("format") == "xlsx":
        content = forecast_xlsx(data, user_names(), g.t)
        today = clock.now(current_zone()).date()
        name = f"forecast-{data['granularity']}-{today.isoformat()}.xlsx"
        return send_file(io.BytesIO(content), as_attachment=True, download_name=name,
                         mimetype="application/vnd.openxmlformats-officedocument."
                                  "spreadsheetml.sheet")
    return render_template("payments/forecast.html", data=data, names=user_names(),
                           error=request.args.get("error"), args=request.args)


@bp.route("/payments/overdue")
@section("payments")
def overdue() -> Any:
    need_finance()
    query = {k: request.args.get(k) for k in ("manager_id", "page") if request.args.get(k)}
    data = remote("payments", "overdue_payments", query)
    return render_template("payments/overdue.html", data=data, names=user_names(),
                           args=request.args, error=request.args.get("error"))


@bp.route("/payments/imports")
@section("payments")
def imports() -> Any:
    need_finance()
    data = remote("payments", "list_imports", {"page": request.args.get("page") or 1})
    accounts = remote("payments", "list_own_accounts")
    for job in data["items"]:
        job["error_text"] = import_error(job)
    return render_template("payments/imports.html", data=data, accounts=accounts,
                           max_bytes=max_statement_bytes(), error=request.args.get("error"))


@bp.route("/payments/imports", methods=["POST"])
@section("payments")
def upload() -> Any:
    need_finance()
    try:
        file = uploaded_file()
        job = queue_statement(file.stream, file.filename or "statement")
    except CrmError as exc:
        return back("payments.imports", exc)
    return redirect(url_for("payments.import_page", job_id=job["id"]))


@bp.route("/payments/imports/<int:job_id>")
@section("payments")
def import_page(job_id: int) -> Any:
    need_finance()
    job = remote("payments", "get_import", job_id)
    status = request.args.get("status") or None
    transactions = remote("payments", "import_transactions", job_id,
                          {"status": status, "page": request.args.get("page") or 1}) \
        if job["status"] == "done" else None
    return render_template("payments/import.html", job=job, transactions=transactions,
                           status=status, error=request.args.get("error"),
                           job_error=import_error(job))


def import_error(job: dict[str, Any]) -> str:
    """Why an import failed, in the reader's language: the statement parser's key with its
    line, field and value ("Строка 47: в поле «Сумма» не сумма: «12,3x»."); a job without a
    key (failed before keys existed, or an unexpected failure) says where and what as
    the service wrote it."""
    if not job.get("error"):
        return ""
    location = job.get("error_location") or ""
    fallback = f"{location}: {job['error']}" if location and not str(
        job["error"]).startswith(location) else str(job["error"])
    return render_message(job.get("error_key"), job.get("error_params") or {}, fallback)


@bp.route("/payments/accounts", methods=["POST"])
@section("payments")
def add_account() -> Any:
    need_finance()
    target = request.form.get("next") or ""
    try:
        remote("payments", "add_own_account", _form("account", "name"), user_id=g.user.id)
    except CrmError as exc:
        if target.startswith("/payments/"):
            return redirect(f"{target}?{urlencode({'error': exc.message})}")
        return back("payments.imports", exc)
    return redirect(target if target.startswith("/payments/") else url_for("payments.imports"))


@bp.route("/payments/accounts/<account>/delete", methods=["POST"])
@section("payments")
def remove_account(account: str) -> Any:
    need_finance()
    try:
        remote("payments", "remove_own_account", account, user_id=g.user.id)
    except CrmError as exc:
        return back("payments.imports", exc)
    return redirect(url_for("payments.imports"))


@bp.route("/payments/review")
@section("payments")
def review(form: Form = NO_FORM) -> Any:
    need_finance()
    query = {k: request.args.get(k) for k in ("status", "page") if request.args.get(k)}
    data = remote("payments", "review_queue", query)
    return render_template("payments/review.html", data=data, names=user_names(),
                           args=request.args, error=request.args.get("error"), form=form)


def parse_allocations(text: str) -> list[dict[str, str]]:
    """"12: 1000,00" lines (payment id: amount) from the split form."""
    parts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        payment_id, sep, amount = line.partition(":")
        if not sep:
            raise ValidationError(f"Строка {number}: пишите «номер платежа: сумма».",
                                  field="allocations", key="allocations.line",
                                  params={"line": number})
        parts.append({"payment_id": payment_id.strip().lstrip("#№"), "amount": amount.strip()})
    return parts


@bp.route("/payments/review/<int:transaction_id>", methods=["POST"])
@section("payments")
def resolve(transaction_id: int) -> Any:
    need_finance()
    action = request.form.get("action", "")
    data: dict[str, Any] = {"action": action, **_form("payment_id", "note")}
    if request.form.get("other_payment_id"):  # a payment that was not among the candidates
        data["payment_id"] = request.form["other_payment_id"].strip().lstrip("#№")
    try:
        if action == "split":
            data["allocations"] = parse_allocations(request.form.get("allocations", ""))
        remote("payments", "resolve_transaction", transaction_id, data, user_id=g.user.id)
    except CrmError as exc:
        form_id = f"{action if action in ('split', 'dismiss') else 'confirm'}-{transaction_id}"
        return review(failed(form_id, exc,
                             {"payment_id": "other_payment_id"})), status_of(exc)
    kept: dict[str, Any] = ({"status": request.args["status"]}
                            if request.args.get("status") else {})
    return redirect(url_for("payments.review", **kept))
