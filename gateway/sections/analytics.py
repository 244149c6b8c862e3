"""The sales funnel (A1–A4) and lost deals (A6) in the web UI.  Figures come from the
analytics service; the filter lives in the URL, so a link to a slice can be sent on.
When analytics does not answer, the page says the report is unavailable and the rest of
the CRM goes on working."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, render_template, request, url_for
from sqlalchemy import select

from gateway import analytics_report as charts
from gateway.aggregate import Call, Panel, call
from gateway.auth import section
from gateway.formatting import chart_money
from gateway.i18n import extend, translate
from gateway.messages import error_items
from gateway.models import User
from gateway.remote import remote_many
from services.kit.errors import RemoteTimeout, ServiceUnavailable, ValidationError

bp = Blueprint("analytics", __name__)

FILTER_KEYS = ("start", "end", "basis", "type_id", "client_id", "manager_id", "department",
               "compare", "client_group_id")
# a wide slice over a large history takes seconds; longer than this counts as unavailable
# (REPORT_DEADLINE in the gateway's configuration overrides it)
CALL_TIMEOUT = 6.0
UNAVAILABLE = (RemoteTimeout, ServiceUnavailable)

extend({
    "ru": {
        "section.analytics": "Аналитика", "an.funnel": "Воронка продаж",
        "an.cohort": "прошли через этап", "an.now": "сейчас на этапе",
        "an.layer": "Этап", "an.reached": "Дошли", "an.amount": "Сумма, ₽",
        "an.conv_next": "В следующий", "an.conv_first": "От первого", "an.drop": "Отвал",
        "an.median": "Медиана, дней", "an.lost_at": "Проиграно здесь",
        "an.now_count": "Сейчас", "an.now_amount": "Сумма сейчас, ₽",
        "an.period": "Период", "an.basis": "По дате", "an.basis.created": "создания",
        "an.basis.closed": "закрытия", "an.type": "Тип сделки", "an.all": "все",
        "an.manager": "Менеджер", "an.department": "Отдел", "an.client": "Клиент",
        "an.client_group": "Группа компаний", "an.group_words": "; группа компаний: {group}",
        "an.compare": "сравнить с прошлым периодом", "an.show": "Показать",
        "an.unavailable": "Отчёт сейчас недоступен: сервис аналитики не отвечает. "
                          "Остальная CRM работает; попробуйте открыть отчёт позже.",
        "an.bottleneck": "Узкое место", "an.lowest": "самая низкая конверсия",
        "an.dropped": "конверсия упала больше чем на {points} п.п. к прошлому периоду",
        "an.bottleneck_text": "Узкое место: «{name}» — {why} ({conv} переходят дальше).",
        "an.no_bottleneck": "Узких мест нет: сделок в периоде пока нет.",
        "an.deals_total": "Сделок в когорте: {n}", "an.revenue": "Поступило денег: {sum} ₽",
        "an.previous": "Прошлый период", "an.pdf": "Скачать PDF", "an.xlsx": "Скачать Excel",
        "an.lost": "Проигранные сделки", "an.reason": "Причина", "an.count": "Сделок",
        "an.deal": "Сделка", "an.days": "Дней в статусе", "an.back": "К воронке",
        "an.no_deals": "Сделок нет", "an.layer_deals": "«{name}»: {mode}",
        "an.mode.cohort": "дошли до этапа", "an.mode.now": "сейчас на этапе",
        "an.mode.lost": "проиграны на этапе", "an.stage_funnel": "Этапы процесса «{name}»",
        "an.filter_words": "Период {start} – {end} по дате {basis}; тип: {type}; "
                           "менеджер: {manager}; отдел: {department}; клиент: {client}",
    },
    "en": {
        "section.analytics": "Analytics", "an.funnel": "Sales funnel",
        "an.cohort": "went through the stage", "an.now": "in the stage now",
        "an.layer": "Stage", "an.reached": "Reached", "an.amount": "Amount, ₽",
        "an.conv_next": "To next", "an.conv_first": "From first", "an.drop": "Drop-off",
        "an.median": "Median, days", "an.lost_at": "Lost here",
        "an.now_count": "Now", "an.now_amount": "Amount now, ₽",
        "an.period": "Period", "an.basis": "By date", "an.basis.created": "created",
        "an.basis.closed": "closed", "an.type": "Deal type", "an.all": "all",
        "an.manager": "Manager", "an.department": "Department", "an.client": "Client",
        "an.client_group": "Group of companies", "an.group_words": "; group of companies: {group}",
        "an.compare": "compare with the previous period", "an.show": "Show",
        "an.unavailable": "The report is unavailable: the analytics service does not "
                          "answer. The rest of the CRM works; try again later.",
        "an.bottleneck": "Bottleneck", "an.lowest": "the lowest conversion",
        "an.dropped": "conversion fell by more than {points} points against the previous "
                      "period",
        "an.bottleneck_text": "Bottleneck: “{name}” — {why} ({conv} move on).",
        "an.no_bottleneck": "No bottleneck: no deals in the period yet.",
        "an.deals_total": "Deals in the cohort: {n}", "an.revenue": "Money received: {sum} ₽",
        "an.previous": "Previous period", "an.pdf": "Download PDF",
        "an.xlsx": "Download Excel", "an.lost": "Lost deals", "an.reason": "Reason",
        "an.count": "Deals", "an.deal": "Deal", "an.days": "Days in status",
        "an.back": "Back to the funnel", "an.no_deals": "No deals",
        "an.layer_deals": "“{name}”: {mode}", "an.mode.cohort": "reached the stage",
        "an.mode.now": "in the stage now", "an.mode.lost": "lost at the stage",
        "an.stage_funnel": "Stages of “{name}”",
        "an.filter_words": "Period {start} – {end} by date {basis}; type: {type}; "
                           "manager: {manager}; department: {department}; client: {client}",
    },
})


def chosen_filters(args: Mapping[str, str]) -> dict[str, Any]:
    """The filter as the URL gives it (empty values dropped)."""
    return {k: args[k] for k in FILTER_KEYS if args.get(k)}


def viewer() -> dict[str, Any]:
    return {"user_id": g.user.id, "roles": list(g.user.roles)}


def people() -> dict[str, str]:
    """Everyone's department, for the department slice (users live in the gateway)."""
    return {str(u.id): u.department or "" for u in g.db.scalars(select(User))}


def report_deadline() -> float:
    return float(current_app.config["CRM"].get("REPORT_DEADLINE", CALL_TIMEOUT))


def analytics_call(method: str, *args: Any, **kwargs: Any) -> Call:
    return call("analytics", method, *args, viewer=viewer(), people=people(),
                actor={"id": g.user.id, "roles": list(g.user.roles)}, **kwargs)


def ask(method: str, *args: Any, **kwargs: Any) -> Any:
    """One analytics call (the JSON API: no choices to show)."""
    return _answer(remote_many({"main": analytics_call(method, *args, **kwargs)},
                               budget=report_deadline())["main"])


def ask_page(method: str, *args: Any, **kwargs: Any) -> Any:
    """The page's analytics call and the filter's choices, sent at once under one deadline.

    With services down the page answers after one deadline, not one per call in turn. The
    choices are kept for the request, so the error page does not ask for them again."""
    panels = remote_many({"main": analytics_call(method, *args, **kwargs),
                          "types": call("deals", "list_deal_types"),
                          "groups": call("clients", "list_client_groups")},
                         budget=report_deadline())
    g.analytics_pick = pick_from(panels["types"].data or [], panels["groups"].data or [])
    return _answer(panels["main"])


def _answer(panel: Panel) -> Any:
    if panel.error is not None:
        raise panel.error
    return panel.data


def choices() -> dict[str, Any]:
    if "analytics_pick" not in g:
        panels = remote_many({"types": call("deals", "list_deal_types"),
                              "groups": call("clients", "list_client_groups")},
                             budget=report_deadline())
        g.analytics_pick = pick_from(panels["types"].data or [], panels["groups"].data or [])
    pick: dict[str, Any] = g.analytics_pick
    return pick


def pick_from(types: list[Any], groups: list[Any]) -> dict[str, Any]:
    # the slices without their lists of names when deals or clients does not answer
    users = list(g.db.scalars(select(User).where(User.active).order_by(User.full_name)))
    return {"managers": [u for u in users if {"manager", "head"} & set(u.roles)],
            "departments": sorted({u.department for u in users if u.department}),
            "types": types, "groups": groups, "names": {u.id: u.full_name for u in users}}


def filter_words(funnel: Mapping[str, Any], pick: Mapping[str, Any], lang: str) -> str:
    f = funnel["filters"]
    everyone = translate(lang, "an.all")
    type_name = next((t["name"] for t in pick["types"] if t["id"] == f.get("type_id")),
                     everyone)
    return translate(lang, "an.filter_words",
                     start=_ru_date(f["start"]), end=_ru_date(f["end"]),
                     basis=translate(lang, f"an.basis.{f['basis']}"), type=type_name,
                     manager=pick["names"].get(f.get("manager_id") or 0, everyone),
                     department=f.get("department") or everyone,
                     client=f.get("client_id") or everyone) + _group_words(f, pick, lang)


def _group_words(f: Mapping[str, Any], pick: Mapping[str, Any], lang: str) -> str:
    group = f.get("client_group_id")
    if not group:
        return ""
    name = next((x["name"] for x in pick.get("groups") or () if x["id"] == group), group)
    return translate(lang, "an.group_words", group=name)


def _ru_date(iso: str) -> str:
    return date.fromisoformat(str(iso)[:10]).strftime("%d.%m.%Y")


def bottleneck_lines(funnel: Mapping[str, Any], lang: str) -> list[str]:
    lines = []
    for row in funnel["layers"]:
        for why in row.get("bottleneck") or ():
            reason = (translate(lang, "an.lowest") if why == "lowest" else
                      translate(lang, "an.dropped", points=funnel["margin_points"]))
            lines.append(translate(lang, "an.bottleneck_text", name=row["name"], why=reason,
                                   conv=charts.pct(row["conversion_next"])))
    return lines


def layer_link(code: str, mode: str = "cohort", **extra: str) -> str:
    args: dict[str, Any] = {**chosen_filters(request.args), "mode": mode, **extra}
    return url_for("analytics.layer", code=code, **args)


def unavailable(pick: dict[str, Any]) -> tuple[str, int]:
    return render_template("analytics/index.html", funnel=None, pick=pick,
                           filters=chosen_filters(request.args),
                           unavailable=True), 503


def refused(exc: ValidationError, pick: dict[str, Any]) -> tuple[str, int]:
    return render_template("analytics/index.html", funnel=None, pick=pick,
                           filters=chosen_filters(request.args),
                           error=" ".join(e["message"] for e in error_items(exc)),
                           error_field=exc.details.get("field")), 422


@bp.route("/analytics")
@section("analytics")
def index() -> Any:
    try:
        funnel = ask_page("funnel", filters=chosen_filters(request.args))
    except UNAVAILABLE:
        return unavailable(choices())
    except ValidationError as exc:
        return refused(exc, choices())
    pick = choices()
    words = {"title": translate(g.lang, "an.funnel")}
    return render_template("analytics/index.html", funnel=funnel, pick=pick,
                           filters=chosen_filters(request.args),
                           chart=charts.funnel_svg(funnel["layers"], layer_link, words),
                           bottlenecks=bottleneck_lines(funnel, g.lang),
                           words=filter_words(funnel, pick, g.lang), money=chart_money,
                           pct=charts.pct, layer_link=layer_link)


@bp.route("/analytics/layers/<code>")
@section("analytics")
def layer(code: str) -> Any:
    mode = request.args.get("mode", "cohort")
    try:
        found = ask_page("layer_deals", code, mode, filters=chosen_filters(request.args),
                    reason=request.args.get("reason") or None)
    except UNAVAILABLE:
        return unavailable(choices())
    except ValidationError as exc:
        return refused(exc, choices())
    pick = choices()
    return render_template("analytics/layer.html", found=found, pick=pick,
                           filters=chosen_filters(request.args), money=chart_money)


@bp.route("/analytics/lost")
@section("analytics")
def lost() -> Any:
    try:
        report = ask_page("lost_deals", filters=chosen_filters(request.args))
    except UNAVAILABLE:
        return unavailable(choices())
    except ValidationError as exc:
        return refused(exc, choices())
    pick = choices()

    def link(row: Mapping[str, Any]) -> str:
        return layer_link(row["status"], "lost", reason=row["reason"]) if row["status"] \
            else url_for("analytics.lost", **chosen_filters(request.args))

    chart = charts.bars_svg(report["rows"], lambda r: f"{r['status_name']} · {r['reason']}",
                            link, title=translate(g.lang, "an.lost"))
    return render_template("analytics/lost.html", report=report, pick=pick, chart=chart,
                           filters=chosen_filters(request.args), money=chart_money,
                           link=link)


def _everything(with_deals: bool = True
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
    """The funnel (and each layer's deals) from one pass of the service over the cohort."""
    filters = chosen_filters(request.args)
    if not with_deals:
        funnel = ask_page("funnel", filters=filters)
        return choices(), funnel, {}
    funnel = ask_page("funnel_export", filters=filters)
    return choices(), funnel, funnel.pop("layer_deals")


def _download(body: bytes, mimetype: str, name: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}")
    return response


@bp.route("/analytics/export.pdf")
@section("analytics")
def export_pdf() -> Any:
    try:
        pick, funnel, _ = _everything(with_deals=False)
    except UNAVAILABLE:
        return unavailable(choices())
    except ValidationError as exc:
        return refused(exc, choices())
    html = render_template("analytics/pdf.html", funnel=funnel,
                           chart=charts.funnel_svg(funnel["layers"]),
                           bottlenecks=bottleneck_lines(funnel, g.lang),
                           words=filter_words(funnel, pick, g.lang), money=chart_money,
                           pct=charts.pct)
    return _download(charts.pdf(html), "application/pdf",
                     f"funnel-{funnel['filters']['start']}-{funnel['filters']['end']}.pdf")


@bp.route("/analytics/export.xlsx")
@section("analytics")
def export_xlsx() -> Any:
    try:
        pick, funnel, deals = _everything()
    except UNAVAILABLE:
        return unavailable(choices())
    except ValidationError as exc:
        return refused(exc, choices())
    words = {"lowest": translate(g.lang, "an.lowest"),
             "dropped": translate(g.lang, "an.dropped", points=funnel["margin_points"])}
    body = charts.xlsx(funnel, filter_words(funnel, pick, g.lang), deals, pick["names"],
                       lambda deal_id: url_for("deals.page", deal_id=deal_id, _external=True),
                       words)
    return _download(body, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     f"funnel-{funnel['filters']['start']}-{funnel['filters']['end']}.xlsx")
