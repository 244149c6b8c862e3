"""Deals section pages (D1–D12): the board (kanban or table) with its filter bar, and the
deal page with its panels and forms."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from gateway import auth, formatting, header, probability_view, sections_names
from gateway import feed as files
from gateway.aggregate import call
from gateway.auth import section
from gateway.deal_cards import AWAITED, fill_probabilities
from gateway.deal_page import budget_summary, feed_of, load_deal_page
from gateway.formatting import current_zone, typed_moment
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.i18n import STRINGS, extend
from gateway.models import User, UserSetting
from gateway.reference import lists_of, reference_lists
from gateway.remote import remote, remote_many, user_names
from gateway.timing import phase, with_timing
from services.kit import clock
from services.kit.errors import CrmError, ValidationError

bp = Blueprint("deals", __name__)

VIEW_KEY = "deals.view"
PAGE = 20
# the table's clickable headers, in the order shown (the deals service's sort keys)
TABLE_SORTS = ("name", "status", "manager", "planned_close_on", "amount", "created_at")
FILTER_FIELDS = ("status", "type_id", "client_id", "client", "amount_min", "amount_max",
                 "created_from", "created_to", "closed_from", "closed_to", "has_task", "q")

extend({
    "ru": {
        "kanban": "Канбан", "table": "Таблица", "no_tasks": "Нет задач", "deals_count": "сделок",
        "my_deals": "Мои сделки", "all_managers": "Все менеджеры", "filter": "Фильтр",
        "apply": "Применить", "reset": "Сбросить", "any": "любой", "type": "Тип сделки",
        "stage": "Этап", "amount_from": "Сумма от", "amount_to": "до",
        "created": "Создана", "closed": "Закрыта", "from": "с", "to": "по",
        "has_task": "Задачи", "with_tasks": "есть открытые", "without_tasks": "нет открытых",
        "text_search": "Название или клиент", "load_more": "Ещё", "no_type": "без типа",
        "move_refused": "Перемещение отклонено", "loss_reason": "Причина проигрыша",
        "loss_comment": "Комментарий", "cancel": "Отмена", "confirm": "Подтвердить",
        "edit_deal": "Параметры сделки", "expected_amount": "Ожидаемая сумма",
        "client_id": "Клиент (ID)", "documents": "Документы этапа",
        "remove": "Убрать", "make_main": "Сделать основным",
        "add_from_client": "Вернуть из клиента",
        "comment": "Комментарий", "attach": "Файлы", "send": "Отправить",
        "reminders": "Задачи", "reminder_text": "Что сделать", "due_at": "Когда",
        "assignee": "Кому", "add_reminder": "Поставить задачу", "done": "Выполнено",
        "completed": "Выполнена задача", "open_tasks": "Открытые задачи",
        "orders": "Заказы", "order_no": "Номер", "order_date": "Дата", "lines": "Позиции",
        "new_order": "Новый заказ", "add_line": "Добавить строку", "qty": "Кол-во",
        "price": "Цена", "discount": "Скидка, %", "total": "Итого", "goods": "Товар",
        "service": "Услуга", "calculator": "Калькулятор стоимости",
        "save_calculation": "Сохранить расчёт", "payment_plan": "Создать график платежей",
        "parts": "Платежей", "first_due": "Первый платёж", "plan_created": "График создан",
        "environment": "Окружение сделки", "competitor": "Конкурент",
        "subcontractor": "Субподрядчик", "influencer": "Влияющее лицо", "role": "Роль",
        "note": "Заметка", "add_party": "Добавить", "history": "История изменений",
        "field": "Поле", "was": "Было", "became": "Стало", "who": "Кто", "when": "Когда",
        "recording": "Запись разговора", "order_status.new": "Новый",
        "order_status.confirmed": "Подтверждён", "order_status.shipped": "Отгружен",
        "order_status.done": "Выполнен", "order_status.cancelled": "Отменён",
        "settings": "Настройки", "deal_type_process": "Процесс", "by_rule": "по правилу",
        "contact_position": "Должность", "email": "E-mail",
        "move_to": "Переместить в…", "move_to_named": "Переместить «{name}» в другой статус",
        "move": "Переместить",
        "reminder_in_past": "Срок задачи уже прошёл. Поставить задачу с прошедшей датой?",
        "deal_amount": "Сумма сделки", "budget.source.calculation": "из расчёта",
        "budget.source.typed": "введена вручную", "budget.no_plan": "графика платежей нет",
        "budget.explained": "Ожидаемая сумма — из калькулятора или введённая вручную. Бюджет — "
                            "сумма графика платежей. Сумма сделки на карточке — бюджет, когда "
                            "есть график, иначе ожидаемая сумма.",
        "budget.gap": "График платежей ({plan}) не совпадает с расчётом ({expected}).",
        "budget.plan_from_calc": "Создать план из расчёта (+{gap})",
        "budget.from_calculation": "По расчёту",
        "budget.update_calc": "Обновить расчёт по графику",
        "hist.status": "Статус", "hist.stage": "Этап", "hist.loss_reason": "Причина проигрыша",
        "hist.created": "Сделка создана", "hist.name": "Название", "hist.client_id": "Клиент",
        "hist.client_name": "Клиент", "hist.manager_id": "Менеджер", "hist.type_id": "Тип сделки",
        "hist.expected_amount": "Ожидаемая сумма", "hist.amount": "Сумма сделки",
        "hist.contact_added": "Добавлен контакт", "hist.contact_removed": "Убран контакт",
        "hist.main_contact": "Основной контакт", "hist.order": "Заказ",
        "hist.payment_plan": "График платежей", "hist.competitor": "Конкурент",
        "hist.subcontractor": "Субподрядчик", "hist.influencer": "Влияющее лицо",
        "hist.planned_close_on": "Плановая дата закрытия",
        "planned_close_on": "Плановая дата закрытия", "planned_close.none": "не задана",
        "planned_close.passed": "прошла", "source": "Источник",
        "source.manual": "вручную", "source.web_form": "веб-форма", "source.api": "API",
        "source.email": "e-mail", "source.call": "звонок", "source.questionnaire": "анкета",
        "sort_by": "Сортировать: {name}", "planned_close_short": "План закрытия",
    },
    "en": {
        "kanban": "Kanban", "table": "Table", "no_tasks": "No tasks", "deals_count": "deals",
        "my_deals": "My deals", "all_managers": "All managers", "filter": "Filter",
        "apply": "Apply", "reset": "Reset", "any": "any", "type": "Deal type",
        "stage": "Stage", "amount_from": "Amount from", "amount_to": "to",
        "created": "Created", "closed": "Closed", "from": "from", "to": "to",
        "has_task": "Tasks", "with_tasks": "has open", "without_tasks": "none open",
        "text_search": "Name or client", "load_more": "More", "no_type": "no type",
        "move_refused": "Move refused", "loss_reason": "Loss reason",
        "loss_comment": "Comment", "cancel": "Cancel", "confirm": "Confirm",
        "edit_deal": "Deal details", "expected_amount": "Expected amount",
        "client_id": "Client (ID)", "documents": "Stage documents",
        "remove": "Remove", "make_main": "Make main", "add_from_client": "Add back from client",
        "comment": "Comment", "attach": "Files", "send": "Send",
        "reminders": "Tasks", "reminder_text": "To do", "due_at": "When",
        "assignee": "For", "add_reminder": "Add task", "done": "Done",
        "completed": "Task done", "open_tasks": "Open tasks",
        "orders": "Orders", "order_no": "Number", "order_date": "Date", "lines": "Lines",
        "new_order": "New order", "add_line": "Add line", "qty": "Qty",
        "price": "Price", "discount": "Discount, %", "total": "Total", "goods": "Goods",
        "service": "Service", "calculator": "Cost calculator",
        "save_calculation": "Save calculation", "payment_plan": "Create payment plan",
        "parts": "Payments", "first_due": "First payment", "plan_created": "Plan created",
        "environment": "Deal environment", "competitor": "Competitor",
        "subcontractor": "Subcontractor", "influencer": "Influencer", "role": "Role",
        "note": "Note", "add_party": "Add", "history": "Change history",
        "field": "Field", "was": "Was", "became": "Became", "who": "Who", "when": "When",
        "recording": "Call recording", "order_status.new": "New",
        "order_status.confirmed": "Confirmed", "order_status.shipped": "Shipped",
        "order_status.done": "Done", "order_status.cancelled": "Cancelled",
        "settings": "Settings", "deal_type_process": "Process", "by_rule": "by rule",
        "contact_position": "Position", "email": "E-mail",
        "move_to": "Move to…", "move_to_named": "Move “{name}” to another status",
        "move": "Move",
        "reminder_in_past": "This date has already passed. Add the task anyway?",
        "deal_amount": "Deal amount", "budget.source.calculation": "from the calculation",
        "budget.source.typed": "typed in", "budget.no_plan": "no payment plan",
        "budget.explained": "Expected amount: from the calculator or typed in. Budget: the sum "
                            "of the payment plan. The card shows the budget once there is a "
                            "plan, else the expected amount.",
        "budget.gap": "The payment plan ({plan}) differs from the calculation ({expected}).",
        "budget.plan_from_calc": "Create the plan from the calculation (+{gap})",
        "budget.from_calculation": "From the calculation",
        "budget.update_calc": "Update the calculation from the plan",
        "hist.status": "Status", "hist.stage": "Stage", "hist.loss_reason": "Loss reason",
        "hist.created": "Deal created", "hist.name": "Name", "hist.client_id": "Client",
        "hist.client_name": "Client", "hist.manager_id": "Manager", "hist.type_id": "Deal type",
        "hist.expected_amount": "Expected amount", "hist.amount": "Deal amount",
        "hist.contact_added": "Contact added", "hist.contact_removed": "Contact removed",
        "hist.main_contact": "Main contact", "hist.order": "Order",
        "hist.payment_plan": "Payment plan", "hist.competitor": "Competitor",
        "hist.subcontractor": "Subcontractor", "hist.influencer": "Influencer",
        "hist.planned_close_on": "Planned close date",
        "planned_close_on": "Planned close date", "planned_close.none": "not set",
        "planned_close.passed": "passed", "source": "Source",
        "source.manual": "manual", "source.web_form": "web form", "source.api": "API",
        "source.email": "e-mail", "source.call": "call", "source.questionnaire": "questionnaire",
        "sort_by": "Sort by {name}", "planned_close_short": "Planned close",
    },
})


def back(endpoint: str, error: CrmError | None = None, **values: Any) -> Any:
    """After a form post: back to the page, with the error shown if there was one."""
    if error is not None:
        values["error"] = error.message
    return redirect(url_for(endpoint, **values))


# ------------------------------------------------------------------------ the board

def default_manager(user: User) -> int | None:
    """D3: a manager starts on their own deals; a head or administrator on everyone's."""
    return user.id if "manager" in user.roles else None


def board_filter(args: Any, user: User) -> dict[str, Any]:
    """The service's filter from the query string; ``manager=all`` removes the default."""
    manager = args.get("manager", "")
    if manager == "all":
        manager_id = None
    elif manager.isdigit():
        manager_id = int(manager)
    else:
        manager_id = default_manager(user)
    chosen = {k: args.get(k) for k in FILTER_FIELDS if args.get(k)}
    return {"manager_id": manager_id, **chosen}


def table_sort(args: Any) -> str | None:
    """The table's order from the query string (``amount``, ``-amount``); anything else is
    the default order, newest first."""
    chosen = str(args.get("sort") or "")
    return chosen if chosen.removeprefix("-") in TABLE_SORTS else None


def view_mode(user: User) -> str:
    """The mode asked for (remembered for next time) or the one remembered (D1)."""
    chosen = request.args.get("mode")
    stored = auth.user_setting(VIEW_KEY)
    if chosen in ("kanban", "table"):
        if stored != chosen:  # nothing to write when it is the remembered one already
            row = g.db.get(UserSetting, (user.id, VIEW_KEY))
            if row is None:
                g.db.add(UserSetting(user_id=user.id, key=VIEW_KEY, value=chosen))
            else:
                row.value = chosen
            g.db.commit()
            auth.setting_changed(VIEW_KEY, chosen)
        return chosen
    return stored if stored in ("kanban", "table") else "kanban"


def managers() -> dict[int, str]:
    return user_names()


def history_rows(deal: dict[str, Any], names: dict[int, str]) -> list[dict[str, Any]]:
    """The deal's history as people read it: field names, status/stage/type/manager names
    and amounts instead of the codes and ids the service records."""
    statuses = {s["code"]: s["name"] for s in deal.get("statuses") or []}
    stages = {st["code"]: st["name"] for ty in deal.get("types") or [] for st in ty["stages"]}
    types = {str(ty["id"]): ty["name"] for ty in deal.get("types") or []}
    shown: dict[str, Any] = {
        "status": lambda v: statuses.get(v, v), "stage": lambda v: stages.get(v, v),
        "type_id": lambda v: types.get(str(v), v),
        "manager_id": lambda v: names.get(int(v), v) if str(v).isdigit() else v,
        "client_id": lambda v: f"№{v}",
        "amount": formatting.money, "expected_amount": formatting.money,
        "planned_close_on": lambda v: formatting.format_date(v, current_zone()),
    }
    rows = []
    for h in deal.get("history") or []:
        field = str(h["field"])
        label_key = f"hist.{field}"
        label = g.t(label_key) if label_key in STRINGS["ru"] else field
        if field.startswith("order "):
            label = f"{g.t('hist.order')} {field.removeprefix('order ')}"
        show = shown.get(field, lambda v: v)
        rows.append({**h, "label": label,
                     "old": show(h["old_value"]) if h["old_value"] not in (None, "") else "",
                     "new": show(h["new_value"]) if h["new_value"] not in (None, "") else ""})
    return rows


@bp.route("/")
def root() -> Any:
    return redirect(auth.home() if g.user is not None else url_for("auth.login"))


@bp.route("/deals")
@section("deals")
def index() -> Any:
    return board_page(NO_FORM)


def board_page(form: Form) -> Any:
    mode = view_mode(g.user)
    filters = board_filter(request.args, g.user)
    # the reference lists come with the page's data (one call, not two), from the gateway's
    # copy unless deals says they changed
    reference = {"revision": reference_lists().latest()}
    main = (call("deals", "board", filters, per_column=PAGE, reference=reference)
            if mode == "kanban" else
            call("deals", "search_deals", filters, limit=50, sort=table_sort(request.args),
                 reference=reference))
    looked_up: dict[str, Any] = {}

    def meanwhile() -> None:
        # once the page's own calls are on their way (each publish costs about a
        # millisecond, and the board waits for deals, not for the header): the header's
        # counts (bell, open leads), which travel with the page's data, not after it ...
        header.ask_early()
        # ... and what the page reads from the gateway's own database (the managers'
        # names, the user's time zone, renamed sections), while the services work
        looked_up["names"] = managers()
        current_zone()
        sections_names.stored()

    panels = remote_many({"main": main}, meanwhile=meanwhile)
    if not panels["main"].ok:
        raise panels["main"].error  # type: ignore[misc]
    lists = lists_of(panels["main"].data["reference"])
    query = {k: v for k, v in request.args.items(multi=False) if k not in ("mode", "error")}
    names = looked_up["names"]
    # the cards' estimates are asked of analytics as soon as the board names its cards,
    # and the page is written while analytics works: each card's chip goes in after
    asked = probability_view.ask_probabilities(
        [d["id"] for col in panels["main"].data["columns"] for d in col["deals"]]
    ) if mode == "kanban" else None
    page = render_template("deals/index.html", mode=mode, data=panels["main"].data,
                           probabilities=AWAITED if asked is not None else {},
                           sort=table_sort(request.args),
                           sorts=TABLE_SORTS, filters=filters, query=query, types=lists["types"],
                           reasons=lists["loss_reasons"], statuses=lists["statuses"],
                           managers=names, error=request.args.get("error"), form=form)
    if asked is None:
        return page
    return fill_probabilities(page, probability_view.cards_shown(asked, g.t, names))


@bp.route("/deals/more")
@section("deals")
def more() -> Any:
    """The next page of a column (``status``) or of the table, as HTML (infinite scroll)."""
    filters = board_filter(request.args, g.user)
    after = request.args.get("after", type=int)
    status = request.args.get("column")
    if status:
        page = remote("deals", "board_column", status, filters, after=after, limit=PAGE)
        names = managers()
        return render_template("deals/_cards.html", deals=page["deals"],
                               probabilities=probability_view.card_probabilities(
                                   [d["id"] for d in page["deals"]], g.t, names),
                               next_after=page["next_after"], managers=names,
                               statuses=remote("deals", "list_statuses"))
    page = remote("deals", "search_deals", filters, after=after, limit=50,
                  sort=table_sort(request.args))
    statuses = {s["code"]: s for s in remote("deals", "list_statuses")}
    return render_template("deals/_rows.html", deals=page["items"], statuses=statuses,
                           next_after=page["next_after"], managers=managers())


@bp.route("/deals", methods=["POST"])
@section("deals")
def create() -> Any:
    """Checked with the API's model first, so every wrong field is shown at once."""
    from gateway.api.deals import DealCreate
    from gateway.api.schema import validate

    data = {k: v for k in ("name", "client_id", "type_id", "expected_amount")
            if (v := request.form.get(k))}
    try:
        deal = remote("deals", "create_deal", validate(DealCreate, data, "").sent(),
                      user_id=g.user.id)
    except CrmError as exc:
        form = failed("new-deal", exc, {"client_id": "client_query"},
                      ("name", "client_query", "type_id", "expected_amount"))
        return board_page(form), 422
    return redirect(url_for("deals.page", deal_id=deal["id"]))


# --------------------------------------------------------------------- the deal page

@bp.route("/deals/<int:deal_id>")
@section("deals")
def page(deal_id: int, form: Form = NO_FORM) -> Any:
    with phase("rpc"):
        header.ask_early(unread=False)  # the open leads' count; the bell's comes with the page
        panels = load_deal_page(deal_id, g.user.id)
    deal = panels["deal"]
    with phase("render"):
        names = managers()
        html = render_template("deals/page.html", deal_id=deal_id, panels=panels,
                               feed=feed_of(panels), managers=names,
                               history=history_rows(deal.data, names) if deal.ok else [],
                               budget=budget_summary(deal.data) if deal.ok else None,
                               probability=probability_view.view(
                                   panels["probability"].data
                                   if panels["probability"].ok else None, g.t, names),
                               now=clock.now(current_zone()),
                               error=request.args.get("error"), form=form)
    return with_timing(make_response(html))


def refused(deal_id: int, form_id: str, exc: CrmError,
            inputs: dict[str, str] | None = None) -> Any:
    """The deal page again with form ``form_id`` as the user left it and its errors beside
    the fields (the form's action carries its anchor, so the browser stays there)."""
    return page(deal_id, failed(form_id, exc, inputs)), status_of(exc)


def _post(deal_id: int, form_id: str, method: str, *args: Any,
          inputs: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """Run one command of a deal page form: back to the page, or the form refused."""
    try:
        remote("deals", method, *args, user_id=g.user.id, **kwargs)
    except CrmError as exc:
        return refused(deal_id, form_id, exc, inputs)
    return redirect(url_for("deals.page", deal_id=deal_id))


def _version() -> int | None:
    value = request.form.get("version", "")
    return int(value) if value.isdigit() else None


@bp.route("/deals/<int:deal_id>/edit", methods=["POST"])
@section("deals")
def edit(deal_id: int) -> Any:
    changes = {k: request.form[k] for k in ("name", "manager_id", "type_id", "client_id",
                                            "expected_amount", "probability",
                                            "planned_close_on")
               if k in request.form}
    form_id = "budget-gap" if request.form.get("form_id") == "budget-gap" else "deal-edit"
    return _post(deal_id, form_id, "update_deal", deal_id, changes, version=_version())


@bp.route("/deals/<int:deal_id>/status", methods=["POST"])
@section("deals")
def change_status(deal_id: int) -> Any:
    return _post(deal_id, "status-form", "change_status", deal_id, request.form.get("status", ""),
                 version=_version(), loss_reason_id=request.form.get("loss_reason_id") or None,
                 loss_comment=request.form.get("loss_comment") or None)


@bp.route("/deals/<int:deal_id>/move", methods=["POST"])
@section("deals")
def move(deal_id: int) -> Any:
    """The card's "move to" menu: the keyboard's way across the kanban, back to the board."""
    back_to = request.form.get("back") or ""
    if not back_to.startswith("/deals") or back_to.startswith("//"):
        back_to = url_for("deals.index")
    try:
        remote("deals", "change_status", deal_id, request.form.get("status", ""),
               version=_version(), user_id=g.user.id)
    except CrmError as exc:
        separator = "&" if "?" in back_to else "?"
        return redirect(f"{back_to}{separator}{urlencode({'error': exc.message})}")
    return redirect(back_to)


@bp.route("/deals/<int:deal_id>/stage", methods=["POST"])
@section("deals")
def change_stage(deal_id: int) -> Any:
    return _post(deal_id, "stage-form", "change_stage", deal_id, request.form.get("stage", ""),
                 version=_version(), loss_reason_id=request.form.get("loss_reason_id") or None,
                 loss_comment=request.form.get("loss_comment") or None)


@bp.route("/deals/<int:deal_id>/contacts", methods=["POST"])
@section("deals")
def add_contact(deal_id: int) -> Any:
    if request.form.get("contact_id"):
        data: dict[str, Any] = {"contact_id": request.form["contact_id"]}
    else:
        data = {"name": request.form.get("name", ""),
                "position": request.form.get("position") or None,
                "phones": [p for p in [request.form.get("phone", "").strip()] if p],
                "emails": [e for e in [request.form.get("email", "").strip()] if e]}
    form_id = "contact-from-client" if "contact_id" in request.form else "add-contact"
    return _post(deal_id, form_id, "add_deal_contact", deal_id, data,
                 inputs={"phones": "phone", "emails": "email"})


@bp.route("/deals/<int:deal_id>/contacts/<int:contact_id>/remove", methods=["POST"])
@section("deals")
def remove_contact(deal_id: int, contact_id: int) -> Any:
    return _post(deal_id, "contacts", "remove_deal_contact", deal_id, contact_id)


@bp.route("/deals/<int:deal_id>/contacts/<int:contact_id>/main", methods=["POST"])
@section("deals")
def main_contact(deal_id: int, contact_id: int) -> Any:
    return _post(deal_id, "contacts", "set_main_contact", deal_id, contact_id)


def save_uploads(field: str = "files") -> list[dict[str, Any]]:
    """Store the request's files on the volume; on a refused one, remove those stored."""
    config = current_app.config["CRM"]
    folder, limit = files.files_dir(config), files.max_file_bytes(config)
    stored: list[files.StoredFile] = []
    try:
        for upload in request.files.getlist(field):
            if upload.filename:
                stored.append(files.store(upload.stream, upload.filename, folder, limit, field))
    except ValidationError:
        files.remove_stored(folder, [s.key for s in stored])
        raise
    return [s.as_dict() for s in stored]


def add_comment_with_files(deal_id: int, text: str) -> dict[str, Any]:
    """One place for the page and the API: files first, then the comment naming them; a
    refused comment takes its files back off the volume."""
    attachments = save_uploads()
    try:
        return remote("deals", "add_comment", deal_id, text, attachments,  # type: ignore[no-any-return]
                      user_id=g.user.id)
    except CrmError:
        files.remove_stored(files.files_dir(current_app.config["CRM"]),
                            [a["key"] for a in attachments])
        raise


@bp.route("/deals/<int:deal_id>/comments", methods=["POST"])
@section("deals")
def comment(deal_id: int) -> Any:
    try:
        add_comment_with_files(deal_id, request.form.get("text", ""))
    except CrmError as exc:
        return refused(deal_id, "comment-form", exc)
    return redirect(url_for("deals.page", deal_id=deal_id))


def send_attachment(deal_id: int, key: str) -> Any:
    """A comment's file, only through the deal it belongs to.  Images show inline; any
    other file is a download, so an uploaded page never runs in our origin."""
    meta = remote("deals", "attachment", deal_id, key)
    try:
        path = files.open_stored(files.files_dir(current_app.config["CRM"]), key)
    except (FileNotFoundError, ValidationError):
        abort(404)
    image = str(meta["content_type"]).startswith("image/")
    response = send_file(path, mimetype=meta["content_type"], as_attachment=not image,
                         download_name=meta["name"], max_age=3600)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.route("/deals/<int:deal_id>/files/<key>")
@section("deals")
def attachment(deal_id: int, key: str) -> Any:
    return send_attachment(deal_id, key)


@bp.route("/deals/<int:deal_id>/reminders", methods=["POST"])
@section("deals")
def add_reminder(deal_id: int) -> Any:
    return _post(deal_id, "reminder-form", "create_reminder", deal_id,
                 {"text": request.form.get("text"),
                  "due_at": typed_moment(request.form.get("due_at")),
                  "assignee_id": request.form.get("assignee_id")})


@bp.route("/deals/<int:deal_id>/reminders/<int:reminder_id>/complete", methods=["POST"])
@section("deals")
def complete_reminder(deal_id: int, reminder_id: int) -> Any:
    return _post(deal_id, "reminders", "complete_reminder", reminder_id)


def form_lines() -> list[dict[str, Any]]:
    """Line items from the form's parallel lists; a row left blank is skipped."""
    columns = {k: request.form.getlist(f"line_{k}")
               for k in ("kind", "name", "quantity", "unit_price", "discount", "catalogue_id")}
    lines = []
    for i in range(len(columns["name"])):
        row = {k: (v[i] if i < len(v) else "") for k, v in columns.items()}
        if any(row[k].strip() for k in ("name", "unit_price")):
            lines.append({k: v for k, v in row.items() if v.strip() or k == "name"})
    return lines


@bp.route("/deals/<int:deal_id>/orders", methods=["POST"])
@section("deals")
def create_order(deal_id: int) -> Any:
    return _post(deal_id, "order-form", "create_order", deal_id, {
        "order_date": request.form.get("order_date") or None,
        "comment": request.form.get("comment", ""), "lines": form_lines()})


@bp.route("/deals/<int:deal_id>/orders/<int:order_id>/status", methods=["POST"])
@section("deals")
def order_status(deal_id: int, order_id: int) -> Any:
    return _post(deal_id, "orders", "change_order_status", order_id, request.form.get("status", ""),
                 version=_version())


@bp.route("/deals/<int:deal_id>/calculation", methods=["POST"])
@section("deals")
def save_calculation(deal_id: int) -> Any:
    return _post(deal_id, "calculator-form", "save_calculation", deal_id, form_lines())


@bp.route("/deals/<int:deal_id>/calculation/plan", methods=["POST"])
@section("deals")
def payment_plan(deal_id: int) -> Any:
    return _post(deal_id, "plan-form", "create_payment_plan", deal_id,
                 {"parts": request.form.get("parts"),
                  "first_due_date": request.form.get("first_due_date")})


@bp.route("/deals/<int:deal_id>/parties", methods=["POST"])
@section("deals")
def add_party(deal_id: int) -> Any:
    return _post(deal_id, "party-form", "add_party", deal_id,
                 {k: request.form.get(k) for k in ("role", "client_id", "name", "note")})


@bp.route("/deals/<int:deal_id>/parties/<int:party_id>/remove", methods=["POST"])
@section("deals")
def remove_party(deal_id: int, party_id: int) -> Any:
    return _post(deal_id, "parties", "remove_party", deal_id, party_id)
