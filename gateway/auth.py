"""People and access (U1): users with roles, argon2 passwords, database-backed sessions,
CSRF on every form, rate-limited login, bearer tokens for the API."""
from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gateway.models import ApiToken, LoginAttempt, User, WebSession
from services.kit.errors import Forbidden

COOKIE = "crm_session"
hasher = PasswordHasher()
bp = Blueprint("auth", __name__)

# Who may open which section (U1).
SECTION_ROLES = {
    "deals": {"manager", "head", "admin"},
    "clients": {"manager", "head", "admin", "accountant"},
    "payments": {"accountant", "head", "admin", "manager"},
    # heads and administrators see everyone's funnel, a manager their own (A3)
    "analytics": {"manager", "head", "admin"},
}


class TooManyAttempts(Exception):
    def __init__(self, minutes: int) -> None:
        super().__init__(minutes)
        self.minutes = minutes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return hasher.hash(password)


def now() -> datetime:
    return datetime.now(UTC)


def check_rate_limit(db: Session, username: str, address: str, config: dict[str, Any]) -> None:
    window = int(config.get("LOGIN_WINDOW_SECONDS", 900))
    limit = int(config.get("LOGIN_MAX_FAILURES", 5))
    since = now() - timedelta(seconds=window)
    by_user = db.scalar(select(func.count()).where(LoginAttempt.username == username,
                                                   LoginAttempt.at > since))
    by_address = db.scalar(select(func.count()).where(LoginAttempt.address == address,
                                                      LoginAttempt.at > since))
    if by_user >= limit or by_address >= limit * 4:
        raise TooManyAttempts(max(1, window // 60))


def authenticate(db: Session, username: str, password: str, address: str,
                 config: dict[str, Any]) -> User | None:
    """The user, or None for a wrong name or password; raises TooManyAttempts."""
    username = username.strip().lower()
    check_rate_limit(db, username, address, config)
    user = db.scalars(select(User).where(User.username == username, User.active)).first()
    try:
        if user is not None and hasher.verify(user.password_hash, password):
            db.execute(delete(LoginAttempt).where(LoginAttempt.username == username))
            return user
    except (VerificationError, InvalidHashError):
        pass
    db.add(LoginAttempt(username=username, address=address))
    db.commit()
    return None


def open_web_session(db: Session, user: User, days: int) -> str:
    token = secrets.token_urlsafe(32)
    db.add(WebSession(token_hash=token_hash(token), user_id=user.id,
                      csrf_token=secrets.token_urlsafe(24),
                      expires_at=now() + timedelta(days=days)))
    return token


def issue_api_token(db: Session, user: User, days: int = 30) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = now() + timedelta(days=days)
    db.add(ApiToken(token_hash=token_hash(token), user_id=user.id, expires_at=expires))
    return token, expires


def load_user() -> None:
    """Before each request: who is asking, through a cookie or a bearer token."""
    g.user = g.web_session = None
    g.via_api_token = False
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        row = g.db.get(ApiToken, token_hash(header[7:].strip()))
        if row is not None and row.expires_at > now():
            g.user = g.db.get(User, row.user_id)
            g.via_api_token = True
        return
    cookie = request.cookies.get(COOKIE)
    if cookie:
        row = g.db.get(WebSession, token_hash(cookie))
        if row is not None and row.expires_at > now():
            g.web_session = row
            g.user = g.db.get(User, row.user_id)
    if g.user is not None and not g.user.active:
        g.user = None


def check_csrf() -> None:
    """Every state-changing request made with the session cookie carries the token."""
    if request.method in ("GET", "HEAD", "OPTIONS") or g.web_session is None:
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    if not secrets.compare_digest(sent, g.web_session.csrf_token):
        abort(400, description="CSRF token missing or wrong: reload the page and try again")


def can(section_name: str) -> bool:
    """May the signed-in user open this section?  (Templates use it to build the menu.)"""
    user = g.get("user")
    return user is not None and bool(set(user.roles) & SECTION_ROLES[section_name])


def home() -> str:
    """Where a user lands after signing in: the first section their roles open."""
    return url_for("deals.index") if can("deals") else url_for("clients.index")


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.user is None:
            if request.path.startswith("/api/"):
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapper


def section(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Login plus one of the roles the section needs."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not set(g.user.roles) & SECTION_ROLES[name]:
                raise Forbidden(f"the {name} section needs one of the roles "
                                f"{', '.join(sorted(SECTION_ROLES[name]))}", section=name)
            return view(*args, **kwargs)

        return login_required(wrapper)

    return decorate


def client_address() -> str:
    return (request.access_route[0] if request.access_route else request.remote_addr) or "-"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        try:
            user = authenticate(g.db, request.form.get("username", ""),
                                request.form.get("password", ""), client_address(),
                                current_app.config["CRM"])
        except TooManyAttempts as exc:
            return render_template("login.html", error=g.t("too_many", minutes=exc.minutes)), 429
        if user is None:
            error = g.t("bad_login")
        else:
            days = int(current_app.config["CRM"].get("SESSION_DAYS", 14))
            token = open_web_session(g.db, user, days)
            g.db.commit()
            g.user = user
            target = request.args.get("next", "")
            # only local paths: an open redirect would let a link send people elsewhere
            response = redirect(target if target.startswith("/") and not target.startswith("//")
                                else home())
            response.set_cookie(COOKIE, token, httponly=True, samesite="Lax",
                                secure=request.is_secure, max_age=14 * 86400)
            return response
    return render_template("login.html", error=error), (200 if error is None else 401)


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if g.web_session is not None:
        g.db.delete(g.web_session)
        g.db.commit()
    response = redirect(url_for("auth.login"))
    response.delete_cookie(COOKIE)
    return response


@bp.route("/lang/<code>", methods=["POST"])
@login_required
def set_language(code: str) -> Any:
    if code in ("ru", "en"):
        g.user.lang = code
        g.db.commit()
    target = request.form.get("next", "/")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")
