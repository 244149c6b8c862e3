"""Administration (U1): reference lists (statuses, loss reasons), deal types with their
processes, users and their roles, and the names of the main sections."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from gateway import messages, sections_names
from gateway.aggregate import call
from gateway.auth import end_credentials, hash_password, login_required, revoke_tokens, user_tokens
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.i18n import extend
from gateway.models import ROLES, User
from gateway.remote import remote, remote_many, user_names
from services.kit.errors import CrmError, Forbidden, ValidationError

bp = Blueprint("admin", __name__)

extend({
    "ru": {"section.admin": "Администрирование", "statuses": "Статусы", "kind": "Вид",
           "kind.open": "открыта", "kind.won": "успех", "kind.lost": "проигрыш",
           "color": "Цвет", "order": "Порядок", "up": "↑", "delete": "Удалить",
           "add": "Добавить", "loss_reasons": "Причины проигрыша", "retire": "Скрыть",
           "restore": "Вернуть", "deal_types": "Типы сделок", "simple_mode": "Простой режим",
           "edit": "Изменить", "users": "Пользователи", "roles": "Роли", "active": "Активен",
           "new_password": "Новый пароль", "full_name": "Имя", "section_names": "Названия разделов",
           "admin.name_ru": "По-русски", "admin.name_en": "По-английски",
           "role.admin": "администратор", "role.head": "руководитель",
           "role.manager": "менеджер", "role.accountant": "бухгалтер",
           "stages": "Этапы", "code": "Код", "tasks": "Задачи при входе",
           "rules": "Правила",
           "description": "Описание", "saved": "Сохранено",
           "api_tokens": "Токены API", "no_tokens": "нет", "revoke": "Отозвать",
           "revoke_token_confirm": "Отозвать токен? Программы с ним потеряют доступ.",
           "last_used": "последний вход", "token_invalid": "недействителен",
           "department": "Отдел",
           "assignee.manager": "ответственный по сделке", "assignee.role": "роль: {role}",
           "trigger.fully_paid": "сделка оплачена полностью",
           "trigger.payment_received": "поступила оплата",
           "trigger.tasks_done": "задачи этапа выполнены",
           "stage.add": "Добавить этап", "stage.remove": "Убрать этап",
           "stage.task_add": "Добавить задачу", "stage.rule_add": "Добавить правило",
           "stage.doc_add": "Добавить документ", "row.remove": "Убрать",
           "stage.hours": "Через, часов", "stage.assignee": "Кому",
           "stage.task_text": "Что сделать",
           "stage.when": "Когда", "stage.move_to": "перевести на этап",
           "stage.code_hint": "латиницей; пусто — по названию", "stage.doc_title": "Название",
           "stage.doc_url": "Ссылка", "stage.n": "Этап {n}", "section.rename": "Раздел «{name}»"},
    "en": {"section.admin": "Administration", "statuses": "Statuses", "kind": "Kind",
           "kind.open": "open", "kind.won": "won", "kind.lost": "lost",
           "color": "Colour", "order": "Order", "up": "↑", "delete": "Delete",
           "add": "Add", "loss_reasons": "Loss reasons", "retire": "Hide",
           "restore": "Restore", "deal_types": "Deal types", "simple_mode": "Simple mode",
           "edit": "Edit", "users": "Users", "roles": "Roles", "active": "Active",
           "new_password": "New password", "full_name": "Name", "section_names": "Section names",
           "admin.name_ru": "In Russian", "admin.name_en": "In English",
           "role.admin": "administrator", "role.head": "head",
           "role.manager": "manager", "role.accountant": "accountant",
           "stages": "Stages", "code": "Code", "tasks": "Tasks on entry",
           "rules": "Rules",
           "department": "Department",
           "assignee.manager": "the deal's manager", "assignee.role": "role: {role}",
           "trigger.fully_paid": "the deal is fully paid",
           "trigger.payment_received": "a payment is received",
           "trigger.tasks_done": "the stage's tasks are done",
           "stage.add": "Add a stage", "stage.remove": "Remove the stage",
           "stage.task_add": "Add a task", "stage.rule_add": "Add a rule",
           "stage.doc_add": "Add a document", "row.remove": "Remove",
           "stage.hours": "In, hours", "stage.assignee": "For", "stage.task_text": "To do",
           "stage.when": "When", "stage.move_to": "move to stage",
           "stage.code_hint": "Latin letters; empty: from the name", "stage.doc_title": "Title",
           "stage.doc_url": "Link", "stage.n": "Stage {n}", "section.rename": "Section “{name}”",
           "description": "Description", "saved": "Saved",
           "api_tokens": "API tokens", "no_tokens": "none", "revoke": "Revoke",
           "revoke_token_confirm": "Revoke the token? Programs using it lose access.",
           "last_used": "last used", "token_invalid": "invalid"},
})

MIN_PASSWORD = 10
USERNAME = re.compile(r"^[a-z0-9._-]{2,100}$")


def admin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "admin" not in g.user.roles:
            raise Forbidden("administration needs the admin role", section="admin")
        return view(*args, **kwargs)

    return login_required(wrapper)


def done(error: CrmError | None = None, endpoint: str = "admin.index", **values: Any) -> Any:
    if error is not None:
        values["error"] = error.message
    return redirect(url_for(endpoint, **values))


@bp.route("/admin")
@admin_only
def index(form: Form = NO_FORM) -> Any:
    panels = remote_many({"statuses": call("deals", "list_statuses"),
                          "reasons": call("deals", "list_loss_reasons", include_inactive=True),
                          "types": call("deals", "list_deal_types", include_inactive=True)})
    users = g.db.scalars(select(User).order_by(User.username)).all()
    tokens = {u.id: user_tokens(g.db, u) for u in users}
    return render_template("admin/index.html", panels=panels, users=users, roles=ROLES,
                           tokens=tokens,
                           sections=sections_names.SECTIONS, names=sections_names.stored(),
                           error=request.args.get("error"), form=form)


def refused(form_id: str, exc: CrmError) -> Any:
    """The administration page again, form ``form_id`` as typed, errors at its fields."""
    return index(failed(form_id, exc)), status_of(exc)


def row_form(kind: str) -> str:
    """The id of the posted form: ``status-3`` for a row, ``new-status`` for the new one."""
    row = request.form.get("id", "")
    return f"{kind}-{row}" if row.isdigit() else f"new-{kind}"


def _run(method: str, *args: Any, form_id: str = "admin") -> Any:
    try:
        remote("deals", method, *args, user_id=g.user.id)
    except CrmError as exc:
        return refused(form_id, exc)
    return done()


@bp.route("/admin/statuses", methods=["POST"])
@admin_only
def save_status() -> Any:
    data = {k: request.form.get(k) for k in ("id", "name", "color", "kind", "code")
            if request.form.get(k)}
    try:
        # a new open status lands before the won and lost ones (the service does it)
        remote("deals", "save_status", data, user_id=g.user.id)
    except CrmError as exc:
        return refused(row_form("status"), exc)
    return done()


@bp.route("/admin/statuses/<int:status_id>/up", methods=["POST"])
@admin_only
def status_up(status_id: int) -> Any:
    ids = [s["id"] for s in remote("deals", "list_statuses")]
    i = ids.index(status_id) if status_id in ids else 0
    if i > 0:
        ids[i - 1], ids[i] = ids[i], ids[i - 1]
    return _run("reorder_statuses", ids, form_id="statuses")


@bp.route("/admin/statuses/<int:status_id>/delete", methods=["POST"])
@admin_only
def delete_status(status_id: int) -> Any:
    return _run("delete_status", status_id, form_id="statuses")


@bp.route("/admin/loss-reasons", methods=["POST"])
@admin_only
def save_reason() -> Any:
    data: dict[str, Any] = {"name": request.form.get("name", "")}
    if request.form.get("id"):
        data["id"] = request.form["id"]
    if "active" in request.form:
        data["active"] = request.form["active"] == "1"
    return _run("save_loss_reason", data, form_id=row_form("reason"))


RULE_TRIGGERS = ("fully_paid", "payment_received", "tasks_done")


def _rows(form: Any, prefix: str, *names: str) -> list[dict[str, str]]:
    """Parallel inputs ``<prefix>_<name>`` as rows; a row left wholly blank is dropped."""
    columns = {n: form.getlist(f"{prefix}_{n}") for n in names}
    count = max((len(v) for v in columns.values()), default=0)
    rows = [{n: (v[i] if i < len(v) else "").strip() for n, v in columns.items()}
            for i in range(count)]
    return [r for r in rows if any(r.values())]


def stage_from_form(form: Any, index: str) -> dict[str, Any] | None:
    """One stage block of the editor (``stage_<index>_...``); None when left blank."""
    p = f"stage_{index}"
    name, code = form.get(f"{p}_name", "").strip(), form.get(f"{p}_code", "").strip()
    tasks = [{"due_hours": r["hours"] or "24", "assignee": r["assignee"] or "manager",
              "text": r["text"]}
             for r in _rows(form, f"{p}_task", "hours", "assignee", "text")
             if r["text"] or r["hours"]]  # the assignee select alone is no task
    rules = [{"on": r["on"], "to_stage": r["to"]}
             for r in _rows(form, f"{p}_rule", "on", "to") if r["on"]]
    documents = [{"title": r["title"], "url": r["url"]}
                 for r in _rows(form, f"{p}_doc", "title", "url")]
    if not name and not code and not tasks and not rules and not documents:
        return None
    return {"id": form.get(f"{p}_id") or None, "code": code or None, "name": name,
            "status_id": form.get(f"{p}_status_id", ""), "tasks": tasks, "rules": rules,
            "documents": documents}


def deal_type_from_form(form: Any) -> tuple[dict[str, Any], list[str]]:
    """The deal type the editor posted, and the editor's block index of each stage kept
    (a service error about ``stages.1`` belongs to the second block that was filled)."""
    stages, indexes = [], []
    for index in form.getlist("stage_index"):
        stage = stage_from_form(form, index)
        if stage is not None:
            stages.append(stage)
            indexes.append(index)
    data: dict[str, Any] = {"name": form.get("name", ""), "simple": form.get("simple") == "1",
                            "description": form.get("description", ""),
                            "active": form.get("active") == "1",
                            "documents": [{"title": r["title"], "url": r["url"]}
                                          for r in _rows(form, "doc", "title", "url")],
                            "stages": stages}
    if form.get("id"):
        data["id"] = form["id"]
    return data, indexes


def stage_errors(exc: CrmError, indexes: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """A refused save's messages: per editor block for ``stages.N...``, the rest for the
    form as a whole."""
    if not isinstance(exc, ValidationError):
        return {}, [exc.message]
    per_stage: dict[str, list[str]] = {}
    general: list[str] = []
    for field, texts in messages.field_errors(exc).items():
        parts = field.split(".")
        if parts[0] == "stages" and len(parts) > 1 and parts[1].isdigit() \
                and int(parts[1]) < len(indexes):
            per_stage.setdefault(indexes[int(parts[1])], []).extend(texts)
        else:
            general.extend(texts)
    return per_stage, general


def type_page(found: dict[str, Any] | None, indexes: list[str] | None = None,
              errors: tuple[dict[str, list[str]], list[str]] = ({}, []),
              status: int = 200) -> Any:
    panels = remote_many({"statuses": call("deals", "list_statuses")})
    if not panels["statuses"].ok:
        raise panels["statuses"].error  # type: ignore[misc]
    deal_type = found or {"stages": [], "simple": True, "active": True}
    blocks = indexes or [str(i) for i in range(len(deal_type["stages"]))]
    return render_template("admin/type.html", deal_type=deal_type,
                           stages=list(zip(blocks, deal_type["stages"], strict=False)),
                           next_index=max([int(b) for b in blocks] + [-1]) + 1,
                           statuses=panels["statuses"].data, triggers=RULE_TRIGGERS,
                           assignees=assignee_choices(), stage_errors=errors[0],
                           general_errors=errors[1], error=request.args.get("error")), status


def assignee_choices() -> list[tuple[str, str]]:
    """Who a stage's task goes to: the deal's manager, everyone of a role, or one user."""
    choices = [("manager", g.t("assignee.manager"))]
    choices += [(f"role:{r}", g.t("assignee.role", role=g.t(f"role.{r}"))) for r in ROLES]
    choices += [(f"user:{uid}", name) for uid, name in user_names().items()]
    return choices


@bp.route("/admin/types/new")
@bp.route("/admin/types/<int:type_id>")
@admin_only
def deal_type(type_id: int | None = None) -> Any:
    types = remote("deals", "list_deal_types", include_inactive=True)
    found = next((t for t in types if t["id"] == type_id), None)
    if type_id is not None and found is None:
        return done(ValidationError("Такого типа сделки нет.", field="type_id",
                                    key="deal_type.not_found"))
    return type_page(found)


@bp.route("/admin/types", methods=["POST"])
@admin_only
def save_type() -> Any:
    data, indexes = deal_type_from_form(request.form)
    try:
        saved = remote("deals", "save_deal_type", data, user_id=g.user.id)
    except CrmError as exc:
        # the editor again as typed, each message at the stage it concerns
        return type_page(data, indexes, stage_errors(exc, indexes), status_of(exc))
    return done(endpoint="admin.deal_type", type_id=saved["id"])


# ------------------------------------------------------------------------------ users

def checked_roles(values: list[str]) -> list[str]:
    roles = [r for r in values if r in ROLES]
    if not roles:
        raise ValidationError("Выберите хотя бы одну роль.", field="roles", key="roles.required")
    return roles


def save_user(data: dict[str, Any], user_id: int | None = None) -> User:
    """Create or change a user; an administrator cannot lock themselves out."""
    user = g.db.get(User, user_id) if user_id else None
    if user_id and user is None:
        raise ValidationError("Такого пользователя нет.", field="user", key="user.not_found")
    if user is None:
        username = str(data.get("username") or "").strip().lower()
        if not USERNAME.match(username):
            raise ValidationError("Логин: от 2 до 100 латинских букв, цифр, «.», «_» или «-».",
                                  field="username", key="username.format",
                                  params={"min": 2, "max": 100})
        if g.db.scalar(select(func.count()).where(User.username == username)):
            raise ValidationError(f"Логин «{username}» уже занят.", field="username",
                                  key="username.taken", params={"value": username})
        if not data.get("password"):
            raise ValidationError("Обязательное поле.", field="password", key="required")
        user = User(username=username, lang="ru")
        g.db.add(user)
    if "full_name" in data:
        name = str(data.get("full_name") or "").strip()
        if not name or len(name) > 200:
            raise ValidationError("Имя: от 1 до 200 символов.", field="full_name",
                                  key="full_name.length", params={"min": 1, "max": 200})
        user.full_name = name
    if "roles" in data:
        user.roles = checked_roles(data["roles"])
    if "active" in data:
        if user.id is not None and user.active and not data["active"]:
            end_credentials(user)
        user.active = bool(data["active"])
    if "email" in data:
        user.email = str(data["email"] or "").strip() or None
    if "department" in data:
        department = str(data["department"] or "").strip()
        if len(department) > 100:
            raise ValidationError("Название отдела длиннее 100 символов.", field="department",
                                  key="department.too_long", params={"max": 100})
        user.department = department or None
    if data.get("password"):
        if len(str(data["password"])) < MIN_PASSWORD:
            raise ValidationError(f"Пароль не короче {MIN_PASSWORD} символов.",
                                  field="password", key="password.too_short",
                                  params={"min": MIN_PASSWORD})
        user.password_hash = hash_password(str(data["password"]))
        if user.id is not None:
            end_credentials(user)
    if user.id == g.user.id and ("admin" not in user.roles or not user.active):
        raise ValidationError("Нельзя снять права администратора с самого себя.",
                              field="roles", key="roles.own_admin")
    g.db.flush()
    return user


@bp.route("/admin/users", methods=["POST"])
@admin_only
def user_save() -> Any:
    form = request.form
    data: dict[str, Any] = {"full_name": form.get("full_name"), "roles": form.getlist("roles"),
                            "active": form.get("active") == "1", "email": form.get("email"),
                            "department": form.get("department"),
                            "password": form.get("password"), "username": form.get("username")}
    try:
        save_user(data, int(form["id"]) if form.get("id") else None)
        g.db.commit()
    except CrmError as exc:
        g.db.rollback()
        return refused(row_form("user"), exc)
    return done()


@bp.route("/admin/users/<int:user_id>/tokens/revoke", methods=["POST"])
@admin_only
def user_tokens_revoke(user_id: int) -> Any:
    """Revoke one API token of a user (``token`` in the form) or all of them."""
    user = g.db.get(User, user_id)
    if user is None:
        return done(ValidationError("Такого пользователя нет.", field="user",
                                    key="user.not_found"))
    revoke_tokens(g.db, user, request.form.get("token") or None)
    g.db.commit()
    return done()


@bp.route("/admin/section-names", methods=["POST"])
@admin_only
def section_names() -> Any:
    names = {s: {lang: request.form.get(f"{s}.{lang}", "") for lang in ("ru", "en")}
             for s in sections_names.SECTIONS}
    try:
        sections_names.save(g.db, names)
        g.db.commit()
    except CrmError as exc:
        g.db.rollback()
        return refused("section-names", exc)
    return done()


# ------------------------------------------------------------------- system health
# Each service's own health answer, and the queues an administrator watches: deliveries
# of notifications by status, call recordings waiting by status.
HEALTH_QUEUES = {"deliveries": ("notifications", "delivery_stats"),
                 "recordings": ("telephony", "recording_backlog")}

extend({
    "ru": {"admin.health": "Состояние системы", "admin.health_service": "Сервис",
           "admin.health_state": "Состояние", "admin.health_ok": "работает",
           "admin.health_down": "не отвечает", "admin.queue.deliveries": "Уведомления",
           "admin.queue.recordings": "Записи звонков", "admin.queue_status": "Статус",
           "admin.queue_count": "Сколько"},
    "en": {"admin.health": "System health", "admin.health_service": "Service",
           "admin.health_state": "State", "admin.health_ok": "up",
           "admin.health_down": "not answering", "admin.queue.deliveries": "Notifications",
           "admin.queue.recordings": "Call recordings", "admin.queue_status": "Status",
           "admin.queue_count": "Count"},
})


def queue_rows(counts: dict[str, int] | None) -> list[tuple[str, int]]:
    """A queue's counts by status, the largest first (``None``: the service is down)."""
    return sorted((counts or {}).items(), key=lambda item: (-item[1], item[0]))


@bp.route("/admin/health")
@admin_only
def health() -> Any:
    from services.kit.config import SERVICES

    panels = remote_many({**{name: call(name, "health") for name in SERVICES},
                          **{queue: call(service, method)
                             for queue, (service, method) in HEALTH_QUEUES.items()}})
    return render_template(
        "admin/health.html", services=[(name, panels[name].ok) for name in SERVICES],
        queues=[(queue, panels[queue].ok, queue_rows(panels[queue].data))
                for queue in HEALTH_QUEUES])
