"""The weighted pipeline beside the cash-flow forecast (MISSION A5) on one page,
/analytics/forecast: Σ amount × win probability of the open deals by expected close month
(analytics.weighted_pipeline) and the receipts expected by due date (payments.forecast),
a server-side SVG chart of both and an Excel export.  A service that does not answer
leaves its half marked unavailable; the other half is still shown."""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, g, render_template, request
from markupsafe import Markup, escape

from gateway.aggregate import call
from gateway.auth import section
from gateway.formatting import chart_money, current_zone, figure
from gateway.i18n import extend
from gateway.messages import error_items
from gateway.remote import remote_many, user_names
from gateway.sections.analytics import analytics_call, ask_page, choices, pick_from, report_deadline
from gateway.sections.payments import forecast_query
from services.kit import clock
from services.kit.errors import RemoteTimeout, ServiceUnavailable, ValidationError

bp = Blueprint("pipeline", __name__)

extend({
    "ru": {
        "pl.title": "Прогноз продаж и поступлений",
        "pl.weighted": "Взвешенная воронка", "pl.cash": "Ожидаемые поступления",
        "pl.month": "Месяц", "pl.deals": "Сделок", "pl.amount": "Сумма, ₽",
        "pl.weighted_sum": "Σ сумма × вероятность, ₽", "pl.later": "позже",
        "pl.total": "Итого", "pl.unestimated": "Без оценки (мало истории): {n} сделок на {sum} ₽",
        "pl.by_manager": "По менеджерам", "pl.by_department": "По отделам",
        "pl.no_manager": "без менеджера", "pl.months": "Месяцев",
        "pl.xlsx": "Скачать Excel", "pl.unavailable": "Сейчас недоступно: сервис не отвечает.",
        "pl.expected": "Ожидается по графику, ₽", "pl.overdue": "Просрочено, ₽",
        "pl.explained": "Сделка ожидается в месяце плановой даты закрытия или, если её нет, "
                        "через типичный срок сделок её типа; вероятность — оценка по "
                        "закрытым сделкам.",
        "pl.forecast_link": "Прогноз", "pl.performance_link": "Менеджеры",
        "pl.deals_title": "Крупнейшие сделки прогноза", "pl.deal": "Сделка",
        "pl.client": "Клиент", "pl.percent": "Вероятность, %", "pl.close_on": "Закрытие",
        "pl.basis": "Дата по", "pl.basis_planned": "плановой дате закрытия",
        "pl.basis_cycle": "типичному сроку: {days} дн.", "pl.by_hand": "вручную",
    },
    "en": {
        "pl.title": "Sales and cash-flow forecast",
        "pl.weighted": "Weighted pipeline", "pl.cash": "Expected receipts",
        "pl.month": "Month", "pl.deals": "Deals", "pl.amount": "Amount, ₽",
        "pl.weighted_sum": "Σ amount × probability, ₽", "pl.later": "later",
        "pl.total": "Total", "pl.unestimated": "Not estimated (too little history): "
                                                "{n} deals, {sum} ₽",
        "pl.by_manager": "By manager", "pl.by_department": "By department",
        "pl.no_manager": "no manager", "pl.months": "Months",
        "pl.xlsx": "Download Excel", "pl.unavailable": "Unavailable: the service does not answer.",
        "pl.expected": "Due by the plan, ₽", "pl.overdue": "Overdue, ₽",
        "pl.explained": "A deal is expected in the month of its planned close date or, "
                        "without one, after the typical cycle of its type; the probability "
                        "is estimated from closed deals.",
        "pl.forecast_link": "Forecast", "pl.performance_link": "Managers",
        "pl.deals_title": "The biggest deals of the forecast", "pl.deal": "Deal",
        "pl.client": "Client", "pl.percent": "Probability, %", "pl.close_on": "Close",
        "pl.basis": "Dated by", "pl.basis_planned": "the planned close date",
        "pl.basis_cycle": "the typical cycle: {days} days", "pl.by_hand": "by hand",
    },
})

FILTERS = ("manager_id", "department", "months")
WIDTH, HEIGHT, LEFT, BOTTOM = 760, 260, 70, 40
COLORS = ("#2563eb", "#16a34a")
FONT = "DejaVu Sans, Arial, sans-serif"


def chosen(args: Mapping[str, str]) -> dict[str, str]:
    return {k: args[k] for k in FILTERS if args.get(k)}


def bars_svg(labels: Sequence[str], series: Sequence[tuple[str, Sequence[Decimal]]],
             title: str = "") -> Markup:
    """Grouped vertical bars, one group per month, one bar per series, a legend on top."""
    top = max((v for _, values in series for v in values), default=Decimal(0)) or Decimal(1)
    group = (WIDTH - LEFT - 10) / max(1, len(labels))
    bar = group * 0.8 / max(1, len(series))
    plot = HEIGHT - BOTTOM - 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-chart" role="img" '
             f'aria-label="{escape(title)}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'font-family="{FONT}" font-size="11"><title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="{HEIGHT - BOTTOM + 2}" fill="#6b7280">0</text>']
    for s, (name, _) in enumerate(series):
        x = LEFT + s * 260
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{COLORS[s % 2]}"/>'
                     f'<text x="{x + 18}" y="14" fill="#1f2937">{escape(name)}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="34" text-anchor="end" fill="#6b7280">'
                 f'{escape(chart_money(top))}</text>')
    for i, label in enumerate(labels):
        x0 = LEFT + i * group + group * 0.1
        for s, (name, values) in enumerate(series):
            value = values[i] if i < len(values) else Decimal(0)
            h = float(value / top) * plot
            y = HEIGHT - BOTTOM - h
            parts.append(f'<rect x="{x0 + s * bar:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" '
                         f'height="{h:.1f}" fill="{COLORS[s % 2]}" data-month="{escape(label)}">'
                         f'<title>{escape(name)} · {escape(label)}: {escape(chart_money(value))} ₽'
                         f'</title></rect>')
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle" fill="#374151">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _cash_by_month(cash: Mapping[str, Any] | None, months: Sequence[str]) -> list[Decimal]:
    """payments' monthly periods matched to the pipeline's months by their first day."""
    if not cash:
        return [Decimal(0)] * len(months)
    by_start = {str(p.get("start", ""))[:7]: figure(p.get("expected")) for p in cash["periods"]}
    return [by_start.get(m, Decimal(0)) for m in months]


def gather() -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """(pipeline, cash-flow, error of a refused filter); an unanswered half is None.

    Both halves and the filter's choices are asked at once, under one deadline."""
    filters = chosen(request.args)
    asked = request.args.get("months", "")
    months = int(asked) if asked.isdigit() and 0 < int(asked) <= 24 else 6
    panels = remote_many({
        "cash": call("payments", "forecast", forecast_query(
            {"granularity": "month", "periods": str(months),
             **({"manager_id": filters["manager_id"]} if "manager_id" in filters else {})})),
        "types": call("deals", "list_deal_types"),
        "groups": call("clients", "list_client_groups"),
        "pipe": analytics_call("weighted_pipeline", filters)}, budget=report_deadline())
    g.analytics_pick = pick_from(panels["types"].data or [], panels["groups"].data or [])
    if isinstance(panels["pipe"].error, ValidationError):
        return None, None, " ".join(e["message"] for e in error_items(panels["pipe"].error))
    return panels["pipe"].data, panels["cash"].data, None


@bp.route("/analytics/forecast")
@section("analytics")
def forecast() -> Any:
    pipe, cash, error = gather()
    names = user_names()
    chart = None
    if pipe:
        labels = pipe["months"]
        chart = bars_svg(labels, [
            (g.t("pl.weighted"), [figure(pipe["total"][m]["weighted"]) for m in labels]),
            (g.t("pl.cash"), _cash_by_month(cash, labels))], title=g.t("pl.title"))
    return render_template("analytics/forecast.html", pipe=pipe, cash=cash, chart=chart,
                           error=error, names=names, pick=choices(),
                           filters=chosen(request.args), money=chart_money,
                           cash_by_month=_cash_by_month), 422 if error else 200


@bp.route("/analytics/forecast.xlsx")
@section("analytics")
def forecast_xlsx() -> Any:
    pipe, cash, error = gather()
    if error or pipe is None:
        return forecast()
    body = workbook(pipe, cash, user_names())
    return Response(body, mimetype="application/vnd.openxmlformats-officedocument."
                                    "spreadsheetml.sheet", headers={
        "Content-Disposition":
            f'attachment; filename="forecast-{clock.now(current_zone()).date()}.xlsx"'})


def workbook(pipe: Mapping[str, Any], cash: Mapping[str, Any] | None,
             names: Mapping[int, str]) -> bytes:
    """The months with both figures (numbers as numbers) and a native column chart, then
    the per-manager and per-department sheets."""
    import xlsxwriter

    t = g.t
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    fmt = book.add_format({"num_format": "# ##0.00"})
    sheet = book.add_worksheet(t("pl.weighted")[:31])
    sheet.write(0, 0, t("pl.title"), bold)
    sheet.write_row(2, 0, [t("pl.month"), t("pl.deals"), t("pl.amount"), t("pl.weighted_sum"),
                           t("pl.expected")], bold)
    labels = [*pipe["months"], "later"]
    receipts = _cash_by_month(cash, pipe["months"]) + [figure(cash["later"]) if cash else 0]
    for i, month in enumerate(labels, start=3):
        cell = pipe["total"][month]
        sheet.write_string(i, 0, t("pl.later") if month == "later" else month)
        sheet.write_number(i, 1, int(cell["deals"]))
        sheet.write_number(i, 2, float(figure(cell["amount"])), fmt)
        sheet.write_number(i, 3, float(figure(cell["weighted"])), fmt)
        sheet.write_number(i, 4, float(receipts[i - 3]), fmt)
    last = 2 + len(labels)
    sheet.write_string(last + 1, 0, t("pl.total"), bold)
    sheet.write_number(last + 1, 3, float(figure(pipe["weighted"])), fmt)
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 4, 20)
    chart = book.add_chart({"type": "column"})
    for col in (3, 4):
        chart.add_series({"name": [sheet.name, 2, col],
                          "categories": [sheet.name, 3, 0, last, 0],
                          "values": [sheet.name, 3, col, last, col]})
    chart.set_title({"name": t("pl.title")})
    sheet.insert_chart(2, 6, chart)
    for title, rows, key in ((t("pl.by_manager"), pipe["managers"], "manager_id"),
                             (t("pl.by_department"), pipe["departments"], "department")):
        page = book.add_worksheet(title[:31])
        page.write_row(0, 0, [title, *[t("pl.later") if m == "later" else m for m in labels],
                              t("pl.total")], bold)
        for r, row in enumerate(rows, start=1):
            who = row[key]
            shown = (names.get(who, f"#{who}") if key == "manager_id" and who is not None
                     else (who if who is not None else t("pl.no_manager")))
            page.write_string(r, 0, str(shown))
            for c, month in enumerate(labels, start=1):
                page.write_number(r, c, float(figure(row["by_month"][month]["weighted"])), fmt)
            page.write_number(r, len(labels) + 1, float(figure(row["weighted"])), fmt)
        page.set_column(0, 0, 28)
        page.set_column(1, len(labels) + 1, 16)
    book.close()
    return out.getvalue()


# --- manager performance (MISSION A7) ------------------------------------------------------

extend({
    "ru": {
        "mp.title": "Работа менеджеров", "mp.rank": "Место", "mp.created": "Создано",
        "mp.won": "Выиграно", "mp.lost": "Проиграно", "mp.conversion": "Конверсия, %",
        "mp.avg_cycle": "Цикл в среднем, дн.", "mp.median_cycle": "Цикл, медиана, дн.",
        "mp.won_amount": "Сумма выигранных, ₽", "mp.received": "Поступило, ₽",
        "mp.no_task": "Открытых без задачи", "mp.overdue": "Просроченных задач",
        "mp.calls_made": "Звонков сделано", "mp.calls_missed": "Пропущено звонков",
        "mp.first_response": "Первая реакция, ч", "mp.from": "С", "mp.to": "по",
        "mp.chart": "Выиграно сделок и сумма, по местам",
        "mp.client_group": "Группа компаний", "mp.all_groups": "все клиенты",
    },
    "en": {
        "mp.title": "Manager performance", "mp.rank": "Rank", "mp.created": "Created",
        "mp.won": "Won", "mp.lost": "Lost", "mp.conversion": "Conversion, %",
        "mp.avg_cycle": "Average cycle, days", "mp.median_cycle": "Median cycle, days",
        "mp.won_amount": "Won amount, ₽", "mp.received": "Received, ₽",
        "mp.no_task": "Open without a task", "mp.overdue": "Overdue tasks",
        "mp.calls_made": "Calls made", "mp.calls_missed": "Calls missed",
        "mp.first_response": "First response, h", "mp.from": "From", "mp.to": "to",
        "mp.chart": "Deals won and their amount, by rank",
        "mp.client_group": "Group of companies", "mp.all_groups": "every client",
    },
})

COLUMNS = ("created", "won", "lost", "conversion", "avg_cycle_days", "median_cycle_days",
           "won_amount", "received", "open_without_task", "overdue_tasks", "calls_made",
           "calls_missed", "first_response_hours")
HEADERS = ("mp.created", "mp.won", "mp.lost", "mp.conversion", "mp.avg_cycle",
           "mp.median_cycle", "mp.won_amount", "mp.received", "mp.no_task", "mp.overdue",
           "mp.calls_made", "mp.calls_missed", "mp.first_response")
MONEY_COLUMNS = ("won_amount", "received")


@bp.route("/analytics/performance")
@section("analytics")
def performance() -> Any:
    """Heads and administrators only: the service refuses anyone else (403)."""
    from gateway.analytics_report import bars_svg

    filters = {k: request.args[k] for k in ("start", "end", "department", "client_group_id")
               if request.args.get(k)}
    names = user_names()
    error = None
    report = None
    try:
        report = ask_page("manager_performance", filters)
    except ValidationError as exc:
        error = " ".join(e["message"] for e in error_items(exc))
    except (RemoteTimeout, ServiceUnavailable):
        report = None
    chart = None
    if report and report["managers"]:
        def label(row: Mapping[str, Any]) -> str:
            who = row["manager_id"]
            return f'{row["rank"]}. ' + (names.get(who, f"#{who}") if who is not None
                                         else g.t("pl.no_manager"))
        chart = bars_svg([{**r, "count": r["won"], "amount": r["won_amount"]}
                          for r in report["managers"]], label, title=g.t("mp.chart"))
    return render_template("analytics/performance.html", report=report, error=error,
                           filters=filters, names=names, pick=choices(), chart=chart,
                           groups=choices()["groups"],
                           columns=list(zip(COLUMNS, HEADERS, strict=True)),
                           money_columns=MONEY_COLUMNS, money=chart_money), 422 if error else 200
