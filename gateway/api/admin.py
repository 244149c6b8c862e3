"""API for administrators: statuses, loss reasons, deal types with their processes, users
and section names (the same rules as the administration pages).  Every endpoint declares
its input and output with the models below (``gateway.api.schema``)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import g
from pydantic import Field, RootModel
from sqlalchemy import select

from gateway import sections_names
from gateway.api import bp
from gateway.api.schema import Bool, Input, Items, Limit, Output, SmallId, endpoint
from gateway.auth import revoke_tokens, user_tokens
from gateway.models import User
from gateway.remote import remote
from gateway.sections.admin import save_user
from services.kit.errors import Forbidden, NotFound

Name = Annotated[str, Limit(200)]
Code = Annotated[str, Limit(50)]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
Role = Literal["admin", "head", "manager", "accountant"]
Parts = Annotated[list[dict[str, Any]], Field(max_length=100)]


def need_admin() -> None:
    if "admin" not in g.user.roles:
        raise Forbidden("administration needs the admin role", section="admin")


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "full_name": user.full_name,
            "email": user.email, "roles": user.roles, "active": user.active,
            "department": user.department}


class Status(Output):
    id: int
    code: str
    name: str
    kind: str


class Reason(Output):
    id: int
    name: str
    active: bool


class DealType(Output):
    id: int
    name: str
    stages: list[dict[str, Any]]


class UserOut(Output):
    id: int
    username: str
    full_name: str
    email: str | None
    roles: list[str]
    active: bool
    department: str | None = None


class SectionNamesOut(RootModel[dict[str, dict[str, str]]]):
    """``{"deals": {"ru": "Проекты", "en": "Projects"}, ...}``"""


class StatusChange(Input):
    name: Name = None  # type: ignore[assignment]
    color: Color = None  # type: ignore[assignment]
    kind: Literal["open", "won", "lost"] = None  # type: ignore[assignment]


class StatusCreate(StatusChange):
    name: Name
    code: Code | None = None


class Order(Input):
    ids: Annotated[list[SmallId], Field(max_length=1000)]


class ReasonSave(Input):
    id: SmallId | None = None
    name: Name
    active: Bool | None = None


class Stage(Input):
    id: SmallId | None = None
    code: Code | None = None
    name: Name
    status_id: SmallId
    tasks: Parts = []
    rules: Parts = []
    documents: Parts = []


class DealTypeSave(Input):
    id: SmallId | None = None
    name: Name
    simple: Bool = False
    description: Annotated[str, Limit(2000, required=False)] | None = None
    active: Bool | None = None
    documents: Parts = []
    stages: Annotated[list[Stage], Field(max_length=100)] = []


class UserChange(Input):
    full_name: Name | None = None
    email: Annotated[str, Limit(254, required=False)] | None = None
    password: Annotated[str, Field(min_length=10, max_length=200)] | None = None
    roles: Annotated[list[Role], Field(min_length=1, max_length=4)] | None = None
    active: Bool | None = None


class UserCreate(UserChange):
    username: Annotated[str, Field(pattern=r"^[a-z0-9._-]{2,100}$")]
    full_name: Name
    password: Annotated[str, Field(min_length=10, max_length=200)]
    roles: Annotated[list[Role], Field(min_length=1, max_length=4)]


class SectionNames(RootModel[dict[Literal[sections_names.SECTIONS],  # type: ignore[valid-type]
                                  dict[Literal["ru", "en"],
                                       Annotated[str, Limit(sections_names.LIMIT,
                                                            required=False)]]]]):
    """Names by section and language; an empty name means the default."""


@bp.route("/admin/statuses", methods=["POST"])
@endpoint(section="", body=StatusCreate, response=Status, status=201)
def admin_status_create(body: StatusCreate) -> Any:
    """Add a deal status"""
    need_admin()
    return remote("deals", "save_status", body.sent(), user_id=g.user.id), 201


@bp.route("/admin/statuses/<int:status_id>", methods=["PATCH"])
@endpoint(section="", body=StatusChange, response=Status)
def admin_status_update(status_id: int, body: StatusChange) -> Any:
    """Rename, recolour or re-kind a status; deals keep it (they refer to its id)."""
    need_admin()
    return remote("deals", "save_status", {**body.sent(), "id": status_id},
                  user_id=g.user.id)


@bp.route("/admin/statuses/<int:status_id>", methods=["DELETE"])
@endpoint(section="", status=204, statuses={409: "deals or stages use it"})
def admin_status_delete(status_id: int) -> Any:
    """Delete a status nothing uses"""
    need_admin()
    remote("deals", "delete_status", status_id, user_id=g.user.id)
    return "", 204


@bp.route("/admin/statuses/order", methods=["PUT"])
@endpoint(section="", body=Order, response=Items[Status])
def admin_status_order(body: Order) -> Any:
    """``{"ids": [...]}``: every status id once, in the new order."""
    need_admin()
    return remote("deals", "reorder_statuses", body.ids, user_id=g.user.id)


@bp.route("/admin/loss-reasons", methods=["POST"])
@endpoint(section="", body=ReasonSave, response=Reason, status=201)
def admin_reason_save(body: ReasonSave) -> Any:
    """Add a loss reason, or change one (send its ``id``)"""
    need_admin()
    return remote("deals", "save_loss_reason", body.sent(), user_id=g.user.id), 201


@bp.route("/admin/deal-types", methods=["POST"])
@endpoint(section="", body=DealTypeSave, response=DealType, status=201,
          statuses={409: "a stage with deals cannot be dropped"})
def admin_type_save(body: DealTypeSave) -> Any:
    """Create a deal type (or replace one: send its ``id``) with its process."""
    need_admin()
    return remote("deals", "save_deal_type", body.sent(), user_id=g.user.id), 201


@bp.route("/admin/users")
@endpoint(section="", response=Items[UserOut])
def admin_users() -> Any:
    """Every user"""
    need_admin()
    return [user_json(u) for u in g.db.scalars(select(User).order_by(User.username))]


@bp.route("/admin/users", methods=["POST"])
@endpoint(section="", body=UserCreate, response=UserOut, status=201)
def admin_user_create(body: UserCreate) -> Any:
    """Add a user"""
    need_admin()
    user = save_user({**body.sent(), "active": body.active is not False})
    g.db.commit()
    return user_json(user), 201


@bp.route("/admin/users/<int:user_id>", methods=["PATCH"])
@endpoint(section="", body=UserChange, response=UserOut)
def admin_user_update(user_id: int, body: UserChange) -> Any:
    """Change a user (not the username); an administrator cannot lock themselves out."""
    need_admin()
    user = save_user({k: v for k, v in body.sent().items() if v is not None}, user_id)
    g.db.commit()
    return user_json(user)


def _user(user_id: int) -> User:
    user = g.db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", user_id=user_id)
    return user


class TokenOut(Output):
    id: str
    created_at: str
    expires_at: str
    last_used_at: str | None
    valid: bool


@bp.route("/admin/users/<int:user_id>/tokens")
@endpoint(section="", response=Items[TokenOut], statuses={404: "no such user"})
def admin_user_tokens(user_id: int) -> Any:
    """The user's API tokens: id (start of the hash), issued, expires, last used, valid."""
    need_admin()
    return user_tokens(g.db, _user(user_id))


@bp.route("/admin/users/<int:user_id>/tokens", methods=["DELETE"])
@endpoint(section="", status=204, statuses={404: "no such user"})
def admin_user_tokens_revoke_all(user_id: int) -> Any:
    """Revoke every API token of the user."""
    need_admin()
    revoke_tokens(g.db, _user(user_id))
    g.db.commit()
    return "", 204


@bp.route("/admin/users/<int:user_id>/tokens/<token_id>", methods=["DELETE"])
@endpoint(section="", status=204, statuses={404: "no such user or token"})
def admin_user_token_revoke(user_id: int, token_id: str) -> Any:
    """Revoke one API token of the user, by its id."""
    need_admin()
    if not revoke_tokens(g.db, _user(user_id), token_id):
        raise NotFound(f"token {token_id[:16]} not found", token_id=token_id[:16])
    g.db.commit()
    return "", 204


@bp.route("/admin/section-names")
@endpoint(section="", response=SectionNamesOut)
def admin_section_names() -> Any:
    """``{"deals": {"ru": "Проекты", "en": "Projects"}, ...}``; empty means the default."""
    need_admin()
    return sections_names.stored()


@bp.route("/admin/section-names", methods=["PUT"])
@endpoint(section="", body=SectionNames, response=SectionNamesOut)
def admin_section_names_save(body: SectionNames) -> Any:
    """Rename sections; an empty name means the default again."""
    need_admin()
    names = sections_names.save(g.db, body.model_dump())
    g.db.commit()
    return names
