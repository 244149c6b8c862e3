"""The JSON REST API under /api/v1 (OpenAPI document at /api/v1/openapi.json).

It calls the same services as the HTML pages; errors are JSON ``{"error": {code, message,
field?, key?, params?, errors?}}`` with 401/403/404/409/413/414/422/503/504.  Endpoints
declare their input and output with ``gateway.api.schema.endpoint``."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import Field

from gateway import auth
from gateway.api.openapi import document
from gateway.api.schema import Input, Limit, Output, endpoint
from gateway.sections import discover
from services.kit.errors import ValidationError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register_routes() -> Blueprint:
    """Import every ``gateway/api/<section>.py``: each adds its routes to ``bp``."""
    discover("gateway.api")
    return bp


def body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("Тело запроса должно быть объектом JSON.", field="body",
                              key="body.invalid")
    return data


def need(name: str) -> None:
    if g.user is None:
        from flask import abort

        abort(401, description="sign in first: POST /api/v1/auth/token, then send "
                               "'Authorization: Bearer <token>'")
    if name and not set(g.user.roles) & auth.SECTION_ROLES[name]:
        from services.kit.errors import Forbidden

        raise Forbidden(f"the {name} section needs one of the roles "
                        f"{', '.join(sorted(auth.SECTION_ROLES[name]))}", section=name)


@bp.route("/openapi.json")
@endpoint()
def openapi() -> Any:
    """This document (OpenAPI 3.1)"""
    # built once per process: the routes and models do not change while it runs (~0.4 s)
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = document()
    return current_app.extensions["openapi"]


class Credentials(Input):
    username: Annotated[str, Limit(100)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class TokenUser(Output):
    id: int
    username: str
    roles: list[str]


class Token(Output):
    token: str
    token_type: Literal["Bearer"]
    expires_at: str
    user: TokenUser


class Me(TokenUser):
    full_name: str
    lang: str


@bp.route("/auth/token", methods=["POST"])
@endpoint(body=Credentials, response=Token,
          statuses={401: "wrong username or password", 429: "too many failed sign-ins"})
def token(body: Credentials) -> Any:
    """A bearer token for the API: send it as ``Authorization: Bearer <token>``"""
    try:
        user = auth.authenticate(g.db, body.username, body.password, auth.client_address(),
                                 current_app.config["CRM"])
    except auth.TooManyAttempts as exc:
        return jsonify({"error": {"code": "too_many_attempts",
                                  "message": f"too many failed sign-ins; try again in "
                                             f"{exc.minutes} min"}}), 429
    if user is None:
        return jsonify({"error": {"code": "bad_credentials",
                                  "message": "wrong username or password"}}), 401
    value, expires = auth.issue_api_token(g.db, user)
    g.db.commit()
    return {"token": value, "token_type": "Bearer", "expires_at": expires.isoformat(),
            "user": {"id": user.id, "username": user.username, "roles": user.roles}}


@bp.route("/me")
@endpoint(section="", response=Me)
def me() -> Any:
    """The signed-in user"""
    u = g.user
    return {"id": u.id, "username": u.username, "full_name": u.full_name,
            "roles": u.roles, "lang": u.lang}
