"""Client loyalty (RFM) and the BCG matrix in the web UI (MISSION A7): the administrator's
rule table with the on-demand recomputation, and the BCG page with its chart, table and
XLSX export for heads and administrators.  Figures come from the analytics service."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from gateway import bcg_chart
from gateway.aggregate import call
from gateway.auth import section
from gateway.formatting import current_zone
from gateway.i18n import extend, translate
from gateway.remote import remote, remote_many
from gateway.sections.admin import admin_only
from gateway.sections.analytics import report_deadline
from services.kit import clock
from services.kit.errors import CrmError, Forbidden, RemoteTimeout, ServiceUnavailable

bp = Blueprint("loyalty", __name__)

UNAVAILABLE = (RemoteTimeout, ServiceUnavailable)
RECOMPUTE_TIMEOUT = 60.0  # seconds: 200 000 clients are scored in well under that
QUADRANTS = ("star", "cash_cow", "question", "dog")

extend({
    "ru": {"rfm.title": "Лояльность (RFM)", "rfm.segment": "Сегмент RFM",
           "rfm.segment.champions": "чемпионы", "rfm.segment.loyal": "лояльные",
           "rfm.segment.promising": "перспективные", "rfm.segment.at_risk": "под угрозой",
           "rfm.segment.hibernating": "спящие", "rfm.segment.lost": "потерянные",
           "rfm.none": "оплат нет", "rfm.unavailable": "сегменты недоступны",
           "rfm.filter_unavailable": "Сегменты RFM сейчас недоступны (аналитика не "
                                     "отвечает): фильтр по сегменту не применён.",
           "rfm.facts": "Последняя оплата {days} дн. назад, оплат: {payments}, всего",
           "rfm.history": "Смены сегмента", "rfm.rules": "Правила сегментов RFM",
           "rfm.rules_hint": "R — давность последней оплаты, F — число оплат, M — сумма; "
                             "каждая оценка 1–5 по квинтилям среди платящих клиентов. "
                             "Правила проверяются сверху вниз, первое подошедшее решает: "
                             "сегменты не пересекаются.",
           "rfm.order": "№", "rfm.meaning": "Смысл", "rfm.recompute": "Пересчитать сейчас",
           "rfm.last_run": "Последний пересчёт", "rfm.next_run": "Следующий ночной",
           "rfm.done": "Пересчитано: клиентов {clients}, сменили сегмент {moved}.",
           "rfm.never": "ещё не было", "rfm.clients": "Клиентов",
           "rfm.group": "Группа компаний", "rfm.all_groups": "все клиенты",
           "bcg.title": "Матрица БКГ", "bcg.by.product_line": "по товарным линиям",
           "bcg.by.deal_type": "по типам сделок (в каталоге нет товарных линий у проданного)",
           "bcg.x": "Доля в НАШИХ продажах (относительно средней линии; не доля рынка)",
           "bcg.y": "Рост к прошлому периоду, %",
           "bcg.star": "звёзды", "bcg.cash_cow": "дойные коровы",
           "bcg.question": "знаки вопроса", "bcg.dog": "собаки",
           "bcg.key": "Линия или тип", "bcg.sales": "Продажи, ₽",
           "bcg.previous": "Прошлый период, ₽", "bcg.share": "Доля в наших продажах, %",
           "bcg.relative": "Относительная доля", "bcg.growth": "Рост, %",
           "bcg.quadrant": "Квадрант", "bcg.new": "новая",
           "bcg.threshold": "Порог роста, %", "bcg.period": "Период {start} – {end} против "
                                                   "{pstart} – {pend}; выигранные сделки",
           "bcg.empty": "Выигранных сделок в периоде нет.",
           "bcg.xlsx": "Скачать Excel", "bcg.show": "Показать",
           "bcg.unavailable": "Отчёт сейчас недоступен: сервис аналитики не отвечает."},
    "en": {"rfm.title": "Loyalty (RFM)", "rfm.segment": "RFM segment",
           "rfm.segment.champions": "champions", "rfm.segment.loyal": "loyal",
           "rfm.segment.promising": "promising", "rfm.segment.at_risk": "at risk",
           "rfm.segment.hibernating": "hibernating", "rfm.segment.lost": "lost",
           "rfm.none": "no payments", "rfm.unavailable": "segments unavailable",
           "rfm.filter_unavailable": "RFM segments are unavailable now (analytics does "
                                     "not answer): the segment filter is not applied.",
           "rfm.facts": "Last payment {days} days ago, payments: {payments}, in all",
           "rfm.history": "Segment changes", "rfm.rules": "RFM segment rules",
           "rfm.rules_hint": "R — how recent the last payment is, F — how many payments, "
                             "M — how much; each scored 1–5 by quintiles among paying "
                             "clients. Rules are checked top to bottom and the first that "
                             "fits decides: segments never overlap.",
           "rfm.order": "#", "rfm.meaning": "Meaning", "rfm.recompute": "Recompute now",
           "rfm.last_run": "Last run", "rfm.next_run": "Next nightly run",
           "rfm.done": "Recomputed: {clients} clients, {moved} changed segment.",
           "rfm.never": "not yet", "rfm.clients": "Clients",
           "rfm.group": "Group of companies", "rfm.all_groups": "every client",
           "bcg.title": "BCG matrix", "bcg.by.product_line": "by product line",
           "bcg.by.deal_type": "by deal type (nothing sold has a catalogue product line)",
           "bcg.x": "Share of OUR sales (against the average line; not market share)",
           "bcg.y": "Growth on the previous period, %",
           "bcg.star": "stars", "bcg.cash_cow": "cash cows",
           "bcg.question": "question marks", "bcg.dog": "dogs",
           "bcg.key": "Line or type", "bcg.sales": "Sales, ₽",
           "bcg.previous": "Previous period, ₽", "bcg.share": "Share of our sales, %",
           "bcg.relative": "Relative share", "bcg.growth": "Growth, %",
           "bcg.quadrant": "Quadrant", "bcg.new": "new",
           "bcg.threshold": "Growth threshold, %", "bcg.period": "Period {start} – {end} "
                                                   "against {pstart} – {pend}; won deals",
           "bcg.empty": "No deals won in the period.",
           "bcg.xlsx": "Download Excel", "bcg.show": "Show",
           "bcg.unavailable": "The report is unavailable: analytics does not answer."},
})


def heads_only(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not {"head", "admin"} & set(g.user.roles):
            raise Forbidden("the BCG matrix is for heads and administrators",
                            section="analytics")
        return view(*args, **kwargs)

    return section("analytics")(wrapper)


# ----------------------------------------------------------------------------- RFM

@bp.route("/admin/rfm")
@admin_only
def rfm_rules() -> Any:
    """The rules with each segment's clients, of one group of companies when picked; the
    rules and the groups are asked at once."""
    group = request.args.get("client_group_id", "").strip() or None
    panels = remote_many({"rules": call("analytics", "rfm_rules", group),
                          "groups": call("clients", "list_client_groups")})
    rules, error = panels["rules"].data, request.args.get("error")
    if not panels["rules"].ok:
        rules, error = None, panels["rules"].error.message  # type: ignore[union-attr]
    return render_template("loyalty/rfm.html", rules=rules, error=error,
                           clients=request.args.get("clients"),
                           moved=request.args.get("moved"),
                           groups=list(panels["groups"].data) if panels["groups"].ok else [],
                           group=group)


@bp.route("/admin/rfm/recompute", methods=["POST"])
@admin_only
def rfm_recompute() -> Any:
    try:
        done = remote("analytics", "recompute_rfm", timeout=RECOMPUTE_TIMEOUT)
    except CrmError as exc:
        return redirect(url_for("loyalty.rfm_rules", error=exc.message))
    return redirect(url_for("loyalty.rfm_rules", clients=done["clients"], moved=done["moved"]))


# ----------------------------------------------------------------------------- BCG

def _filters() -> dict[str, str]:
    return {k: v for k in ("start", "end", "growth") if (v := request.args.get(k, "").strip())}


def _words() -> dict[str, str]:
    words = {code: translate(g.lang, f"bcg.{code}") for code in QUADRANTS}
    words.update(title=translate(g.lang, "bcg.title"), x=translate(g.lang, "bcg.x"),
                 y=translate(g.lang, "bcg.y"))
    return words


def _matrix() -> dict[str, Any]:
    return remote("analytics", "bcg_matrix", _filters(),  # type: ignore[no-any-return]
                  viewer={"user_id": g.user.id, "roles": list(g.user.roles)},
                  timeout=report_deadline())


@bp.route("/analytics/bcg")
@heads_only
def bcg() -> Any:
    matrix, error, status = None, None, 200
    try:
        matrix = _matrix()
    except UNAVAILABLE:
        error, status = translate(g.lang, "bcg.unavailable"), 503
    except CrmError as exc:
        error, status = exc.message, getattr(exc, "http_status", 422)
    chart = bcg_chart.scatter_svg(matrix, _words()) if matrix and matrix["rows"] else None
    return render_template("loyalty/bcg.html", matrix=matrix, chart=chart, error=error,
                           args=_filters(), quadrants=QUADRANTS), status


@bp.route("/analytics/bcg.xlsx")
@heads_only
def bcg_xlsx() -> Any:
    matrix = _matrix()
    headers = [translate(g.lang, k) for k in ("bcg.key", "bcg.sales", "bcg.previous",
                                              "bcg.share", "bcg.relative", "bcg.growth",
                                              "bcg.quadrant")]
    caption = translate(g.lang, "bcg.period", start=matrix["start"], end=matrix["end"],
                        pstart=matrix["previous_start"], pend=matrix["previous_end"])
    names = {code: translate(g.lang, f"bcg.{code}") for code in QUADRANTS}
    body = bcg_chart.xlsx(matrix, headers, caption, names)
    name = f"bcg-{clock.now(current_zone()).date().isoformat()}.xlsx"
    return Response(body, mimetype="application/vnd.openxmlformats-officedocument."
                                    "spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
