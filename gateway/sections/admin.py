"""Administration (U1): reference lists (statuses, loss reasons), deal types with their
processes, users and their roles, and the names of the main sections."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from gateway import sections_names
from gateway.aggregate import call
from gateway.auth import end_credentials, hash_password, login_required, revoke_tokens, user_tokens
from gateway.forms import NO_FORM, Form, failed, status_of
from gateway.i18n import extend
from gateway.models import ROLES, User
from gateway.remote import remote, remote_many
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
           "admin.name_ru": "по-русски", "admin.name_en": "по-английски",
           "role.admin": "администратор", "role.head": "руководитель",
           "role.manager": "менеджер", "role.accountant": "бухгалтер",
           "stages": "Этапы", "code": "Код", "tasks": "Задачи при входе",
           "tasks_hint": "часов | manager или role:head или user:ID | текст",
           "rules": "Правила",
           "rules_hint": "fully_paid / payment_received / tasks_done -> код этапа",
           "docs_hint": "название | ссылка", "description": "Описание", "saved": "Сохранено",
           "api_tokens": "Токены API", "no_tokens": "нет", "revoke": "Отозвать",
           "revoke_token_confirm": "Отозвать токен? Программы с ним потеряют доступ.",
           "last_used": "последний вход", "token_invalid": "недействителен",
           "department": "Отдел"},
    "en": {"section.admin": "Administration", "statuses": "Statuses", "kind": "Kind",
           "kind.open": "open", "kind.won": "won", "kind.lost": "lost",
           "color": "Colour", "order": "Order", "up": "↑", "delete": "Delete",
           "add": "Add", "loss_reasons": "Loss reasons", "retire": "Hide",
           "restore": "Restore", "deal_types": "Deal types", "simple_mode": "Simple mode",
           "edit": "Edit", "users": "Users", "roles": "Roles", "active": "Active",
           "new_password": "New password", "full_name": "Name", "section_names": "Section names",
           "admin.name_ru": "in Russian", "admin.name_en": "in English",
           "role.admin": "administrator", "role.head": "head",
           "role.manager": "manager", "role.accountant": "accountant",
           "stages": "Stages", "code": "Code", "tasks": "Tasks on entry",
           "tasks_hint": "hours | manager or role:head or user:ID | text",
           "rules": "Rules",
           "rules_hint": "fully_paid / payment_received / tasks_done -> stage code",
           "department": "Department",
           "docs_hint": "title | link", "description": "Description", "saved": "Saved",
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
    return _run("save_status", {k: request.form.get(k) for k in ("id", "name", "color", "kind",
                                                                  "code") if request.form.get(k)},
                form_id=row_form("status"))


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


def parse_stage_lines(text: str, field: str, kind: str) -> list[dict[str, Any]]:
    """The process editor's plain-text rows: ``24 | manager | Call`` (tasks),
    ``fully_paid -> won`` (rules), ``Instruction | https://...`` (documents)."""
    items: list[dict[str, Any]] = []
    for n, raw in enumerate(line for line in (text or "").splitlines() if line.strip()):
        if kind == "rules":
            on, arrow, to_stage = raw.partition("->")
            if not arrow:
                raise ValidationError("Пишите «событие -> код этапа».", field=f"{field}.{n}",
                                      key="stage.rule_line")
            items.append({"on": on.strip(), "to_stage": to_stage.strip()})
            continue
        parts = [p.strip() for p in raw.split("|")]
        if kind == "tasks":
            if len(parts) != 3:
                raise ValidationError("Пишите «часов | кому | текст».", field=f"{field}.{n}",
                                      key="stage.task_line")
            items.append({"due_hours": parts[0], "assignee": parts[1], "text": parts[2]})
        else:
            if len(parts) != 2:
                raise ValidationError("Пишите «название | ссылка».", field=f"{field}.{n}",
                                      key="stage.document_line")
            items.append({"title": parts[0], "url": parts[1]})
    return items


def deal_type_from_form(form: Any) -> dict[str, Any]:
    columns = {k: form.getlist(f"stage_{k}") for k in ("id", "code", "name", "status_id",
                                                       "tasks", "rules", "documents")}
    stages = []
    for i in range(len(columns["name"])):
        row = {k: (v[i] if i < len(v) else "") for k, v in columns.items()}
        if not row["name"].strip() and not row["code"].strip():
            continue
        f = f"stages.{len(stages)}"
        stages.append({"id": row["id"] or None, "code": row["code"].strip() or None,
                       "name": row["name"], "status_id": row["status_id"],
                       "tasks": parse_stage_lines(row["tasks"], f"{f}.tasks", "tasks"),
                       "rules": parse_stage_lines(row["rules"], f"{f}.rules", "rules"),
                       "documents": parse_stage_lines(row["documents"], f"{f}.documents",
                                                      "documents")})
    data: dict[str, Any] = {"name": form.get("name", ""), "simple": form.get("simple") == "1",
                            "description": form.get("description", ""),
                            "active": form.get("active") == "1",
                            "documents": parse_stage_lines(form.get("documents", ""),
                                                           "documents", "documents"),
                            "stages": stages}
    if form.get("id"):
        data["id"] = form["id"]
    return data


@bp.route("/admin/types/new")
@bp.route("/admin/types/<int:type_id>")
@admin_only
def deal_type(type_id: int | None = None) -> Any:
    panels = remote_many({"statuses": call("deals", "list_statuses"),
                          "types": call("deals", "list_deal_types", include_inactive=True)})
    for panel in panels.values():
        if not panel.ok:
            raise panel.error  # type: ignore[misc]
    found = next((t for t in panels["types"].data if t["id"] == type_id), None)
    if type_id is not None and found is None:
        return done(ValidationError("Такого типа сделки нет.", field="type_id",
                                    key="deal_type.not_found"))
    return render_template("admin/type.html", deal_type=found or {"stages": [], "simple": True,
                                                                  "active": True},
                           statuses=panels["statuses"].data, error=request.args.get("error"))


@bp.route("/admin/types", methods=["POST"])
@admin_only
def save_type() -> Any:
    try:
        saved = remote("deals", "save_deal_type", deal_type_from_form(request.form),
                       user_id=g.user.id)
    except CrmError as exc:
        if request.form.get("id"):
            return done(exc, "admin.deal_type", type_id=int(request.form["id"]))
        return done(exc, "admin.deal_type")
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
