"""API for administrators: statuses, loss reasons, deal types with their processes, users
and section names (the same rules as the administration pages)."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import select

from gateway import sections_names
from gateway.api import body, bp, need
from gateway.api.openapi import describe_body
from gateway.auth import revoke_tokens, user_tokens
from gateway.models import User
from gateway.remote import remote
from gateway.sections.admin import save_user
from services.kit.errors import Forbidden, NotFound, ValidationError


def need_admin() -> None:
    need("")
    if "admin" not in g.user.roles:
        raise Forbidden("administration needs the admin role", section="admin")


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "full_name": user.full_name,
            "email": user.email, "roles": user.roles, "active": user.active,
            "department": user.department}


@bp.route("/admin/statuses", methods=["POST"])
def admin_status_create() -> Any:
    need_admin()
    data = {k: v for k, v in body().items() if k != "id"}
    return jsonify(remote("deals", "save_status", data, user_id=g.user.id)), 201


@bp.route("/admin/statuses/<int:status_id>", methods=["PATCH"])
def admin_status_update(status_id: int) -> Any:
    """Rename, recolour or re-kind a status; deals keep it (they refer to its id)."""
    need_admin()
    return jsonify(remote("deals", "save_status", {**body(), "id": status_id},
                          user_id=g.user.id))


@bp.route("/admin/statuses/<int:status_id>", methods=["DELETE"])
def admin_status_delete(status_id: int) -> Any:
    need_admin()
    remote("deals", "delete_status", status_id, user_id=g.user.id)
    return "", 204


@bp.route("/admin/statuses/order", methods=["PUT"])
def admin_status_order() -> Any:
    """``{"ids": [...]}``: every status id once, in the new order."""
    need_admin()
    ids = body().get("ids")
    if not isinstance(ids, list):
        raise ValidationError("ids: a list of every status id", field="ids")
    return jsonify(remote("deals", "reorder_statuses", ids, user_id=g.user.id))


@bp.route("/admin/loss-reasons", methods=["POST"])
def admin_reason_save() -> Any:
    need_admin()
    return jsonify(remote("deals", "save_loss_reason", body(), user_id=g.user.id)), 201


@bp.route("/admin/deal-types", methods=["POST"])
def admin_type_save() -> Any:
    """Create a deal type (or replace one: send its ``id``) with its process."""
    need_admin()
    return jsonify(remote("deals", "save_deal_type", body(), user_id=g.user.id)), 201


@bp.route("/admin/users")
def admin_users() -> Any:
    need_admin()
    return jsonify([user_json(u) for u in g.db.scalars(select(User).order_by(User.username))])


@bp.route("/admin/users", methods=["POST"])
def admin_user_create() -> Any:
    need_admin()
    user = save_user({**body(), "active": body().get("active", True)})
    g.db.commit()
    return jsonify(user_json(user)), 201


@bp.route("/admin/users/<int:user_id>", methods=["PATCH"])
def admin_user_update(user_id: int) -> Any:
    need_admin()
    data = {k: v for k, v in body().items() if k != "username"}
    user = save_user(data, user_id)
    g.db.commit()
    return jsonify(user_json(user))


def _user(user_id: int) -> User:
    user = g.db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", user_id=user_id)
    return user


@bp.route("/admin/users/<int:user_id>/tokens")
def admin_user_tokens(user_id: int) -> Any:
    """The user's API tokens: id (start of the hash), issued, expires, last used, valid."""
    need_admin()
    return jsonify(user_tokens(g.db, _user(user_id)))


@bp.route("/admin/users/<int:user_id>/tokens", methods=["DELETE"])
def admin_user_tokens_revoke_all(user_id: int) -> Any:
    need_admin()
    revoke_tokens(g.db, _user(user_id))
    g.db.commit()
    return "", 204


@bp.route("/admin/users/<int:user_id>/tokens/<token_id>", methods=["DELETE"])
def admin_user_token_revoke(user_id: int, token_id: str) -> Any:
    need_admin()
    if not revoke_tokens(g.db, _user(user_id), token_id):
        raise NotFound(f"token {token_id[:16]} not found", token_id=token_id[:16])
    g.db.commit()
    return "", 204


@bp.route("/admin/section-names", methods=["GET", "PUT"])
def admin_section_names() -> Any:
    """``{"deals": {"ru": "Проекты", "en": "Projects"}, ...}``; empty means the default."""
    need_admin()
    from flask import request

    if request.method == "PUT":
        names = sections_names.save(g.db, body())
        g.db.commit()
        return jsonify(names)
    return jsonify(sections_names.stored())


STATUS = {"type": "object", "properties": {
    "name": {"type": "string"}, "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    "kind": {"enum": ["open", "won", "lost"]}, "code": {"type": "string"}}}
describe_body("api.admin_status_create", {**STATUS, "required": ["name"]})
describe_body("api.admin_status_update", STATUS)
describe_body("api.admin_status_order", {"type": "object", "required": ["ids"], "properties": {
    "ids": {"type": "array", "items": {"type": "integer"}}}})
describe_body("api.admin_reason_save", {"type": "object", "required": ["name"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "active": {"type": "boolean"}}})
describe_body("api.admin_type_save", {"type": "object", "required": ["name"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "simple": {"type": "boolean"},
    "description": {"type": "string"}, "active": {"type": "boolean"},
    "documents": {"type": "array", "items": {"type": "object"}},
    "stages": {"type": "array", "items": {"type": "object", "required": ["name", "status_id"],
                                          "properties": {
                                              "id": {"type": "integer"},
                                              "code": {"type": "string"},
                                              "name": {"type": "string"},
                                              "status_id": {"type": "integer"},
                                              "tasks": {"type": "array"},
                                              "rules": {"type": "array"},
                                              "documents": {"type": "array"}}}}}})
USER = {"type": "object", "properties": {
    "username": {"type": "string"}, "full_name": {"type": "string"},
    "email": {"type": "string"}, "password": {"type": "string"},
    "roles": {"type": "array", "items": {"enum": ["admin", "head", "manager", "accountant"]}},
    "active": {"type": "boolean"}}}
describe_body("api.admin_user_create", {**USER, "required": ["username", "full_name",
                                                             "password", "roles"]})
describe_body("api.admin_user_update", USER)
describe_body("api.admin_section_names", {"type": "object", "additionalProperties": {
    "type": "object", "properties": {"ru": {"type": "string"}, "en": {"type": "string"}}}})
