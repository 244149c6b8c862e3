"""People and access (U1): users with roles, argon2 passwords, database-backed sessions,
CSRF on every form, rate-limited login, bearer tokens for the API."""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from gateway.models import ApiToken, LoginAttempt, User, UserSetting, WebSession
from services.kit import clock
from services.kit.db import rowcount
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
    return clock.now()


def check_rate_limit(db: Session, username: str, address: str, config: dict[str, Any]) -> None:
    window = int(config.get("LOGIN_WINDOW_SECONDS", 900))
    limit = int(config.get("LOGIN_MAX_FAILURES", 5))
    since = now() - timedelta(seconds=window)
    by_user = db.scalar(select(func.count()).where(LoginAttempt.username == username,
                                                   LoginAttempt.at > since))
    by_address = db.scalar(select(func.count()).where(LoginAttempt.address == address,
                                                      LoginAttempt.at > since))
    if int(by_user or 0) >= limit or int(by_address or 0) >= limit * 4:
        raise TooManyAttempts(max(1, window // 60))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
USERNAME_MAX = 100  # LoginAttempt.username
ADDRESS_MAX = 64  # LoginAttempt.address


def limiter_key(value: str, limit: int) -> str:
    """What a failed attempt is counted under: whatever a client sends (NUL, control
    characters, any length) becomes a value the table takes, so recording never fails."""
    return _CONTROL.sub("", value).strip().lower()[:limit] or "-"


_dummy_hash: str | None = None


def _burn_a_verify(password: str) -> None:
    """Spend what a real check costs, so an unknown name answers as slowly as a known one
    and timing tells nobody which names exist."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hasher.hash(secrets.token_urlsafe(16))
    try:
        hasher.verify(_dummy_hash, password)
    except (VerificationError, InvalidHashError):
        pass


def authenticate(db: Session, username: str, password: str, address: str,
                 config: dict[str, Any]) -> User | None:
    """The user, or None for a wrong name or password; raises TooManyAttempts."""
    key = limiter_key(username, USERNAME_MAX)
    address = limiter_key(address, ADDRESS_MAX)
    check_rate_limit(db, key, address, config)
    # a name that needed cleaning names nobody (user names are plain); it is still counted
    clean = key == username.strip().lower()
    user = db.scalars(select(User).where(User.username == key, User.active)).first() \
        if clean else None
    try:
        if user is None:
            _burn_a_verify(password)
        elif hasher.verify(user.password_hash, password):
            db.execute(delete(LoginAttempt).where(LoginAttempt.username == key))
            return user
    except (VerificationError, InvalidHashError):
        pass
    db.add(LoginAttempt(username=key, address=address))
    db.commit()
    return None


def open_web_session(db: Session, user: User, days: int) -> str:
    token = secrets.token_urlsafe(32)
    db.add(WebSession(token_hash=token_hash(token), user_id=user.id,
                      csrf_token=secrets.token_urlsafe(24),
                      credentials_version=user.credentials_version,
                      expires_at=now() + timedelta(days=days)))
    return token


def issue_api_token(db: Session, user: User, days: int = 30) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = now() + timedelta(days=days)
    db.add(ApiToken(token_hash=token_hash(token), user_id=user.id, expires_at=expires,
                    credentials_version=user.credentials_version))
    return token, expires


def end_credentials(user: User) -> None:
    """After a password change or a deactivation: every session and token issued before
    stops working (they carry the version they were issued under)."""
    user.credentials_version = (user.credentials_version or 1) + 1
    mine = g.get("web_session")
    if mine is not None and mine.user_id == user.id and user.active:
        mine.credentials_version = user.credentials_version  # who changed it stays in


def token_id(row: ApiToken) -> str:
    """How people name a token: the start of its hash (the token itself is never stored)."""
    return row.token_hash[:16]


def user_tokens(db: Session, user: User) -> list[dict[str, Any]]:
    rows = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                      .order_by(ApiToken.created_at.desc())).all()
    return [{"id": token_id(r), "created_at": r.created_at.isoformat(),
             "expires_at": r.expires_at.isoformat(),
             "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
             "valid": r.expires_at > now() and user.active
             and r.credentials_version == user.credentials_version} for r in rows]


def revoke_tokens(db: Session, user: User, one: str | None = None) -> int:
    """Delete one of the user's tokens (by its id) or all of them; how many went."""
    query = delete(ApiToken).where(ApiToken.user_id == user.id)
    if one is not None:
        if not re.fullmatch(r"[0-9a-f]{16}", one):
            return 0
        query = query.where(ApiToken.token_hash.startswith(one))
    return rowcount(db.execute(query))


def holder(db: Session, kind: type[WebSession] | type[ApiToken],
           token: str) -> tuple[Any, User, dict[str, Any]] | None:
    """The session (or API token) a secret opens, with its user and the user's settings, in
    ONE statement: the row must not have expired and its user must be active and still on
    the credentials version it was issued under (a password change or a deactivation ends
    it at once).  Asked afresh on every request, nothing kept between them: a logout, a
    revocation or a deactivation takes effect on the very next request."""
    found = db.execute(_holder_query(kind), {"token_hash": token_hash(token),
                                             "now": now()}).first()
    return None if found is None else (found[0], found[1], dict(found[2] or {}))


@functools.cache
def _holder_query(kind: type[WebSession] | type[ApiToken]) -> Any:
    """Built once: every request runs it, and a statement built anew is compiled-cache
    keyed anew (about half a millisecond of the request)."""
    settings = (select(func.jsonb_object_agg(UserSetting.key, UserSetting.value))
                .where(UserSetting.user_id == User.id).scalar_subquery())
    return select(kind, User, settings).join(User, User.id == kind.user_id).where(
        kind.token_hash == bindparam("token_hash"), kind.expires_at > bindparam("now"),
        User.active, User.credentials_version == kind.credentials_version)


def load_user() -> None:
    """Before each request: who is asking, through a cookie or a bearer token."""
    g.user = g.web_session = None
    g.via_api_token = False
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        found = holder(g.db, ApiToken, header[7:].strip())
        if found is not None:
            token, g.user, g.user_settings = found
            g.via_api_token = True
            if token.last_used_at is None or token.last_used_at < now() - timedelta(minutes=5):
                token.last_used_at = now()  # for the administrator's list; not every call
                g.db.commit()
        return
    cookie = request.cookies.get(COOKIE)
    if cookie:
        found = holder(g.db, WebSession, cookie)
        if found is not None:
            g.web_session, g.user, g.user_settings = found


def user_setting(key: str) -> Any:
    """The signed-in user's setting ``key`` (None: not set), as read with the session at
    the start of this request (a page asks for the view mode and the time zone: no
    statement of their own)."""
    settings = g.get("user_settings")
    if settings is None:  # a user set without signing in (a test, a command)
        row = g.db.get(UserSetting, (g.user.id, key))
        return None if row is None else row.value
    return settings.get(key)


def setting_changed(key: str, value: Any) -> None:
    """This request changed a setting: what it reads from now on is the new value."""
    settings = g.get("user_settings")
    if settings is not None:
        settings[key] = value


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
    """The peer's address.  X-Forwarded-For counts only when TRUSTED_PROXIES says how many
    proxies stand in front (ProxyFix then rewrites ``remote_addr``, see ``app.py``): trusted
    from anyone, a rotated header would escape the limit and a forged one lock a victim out."""
    return request.remote_addr or "-"


def safe_next(target: str | None, fallback: str) -> str:
    r"""A same-site path to go to after signing in, or ``fallback``.

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so
    ``/\t/evil.example`` and ``/\\evil.example`` both mean ``//evil.example``: anything
    holding them, a scheme or a host is refused rather than repaired."""
    if not target or _CONTROL.search(target) or "\\" in target or target != target.strip():
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


def same_origin_post() -> bool:
    """Login CSRF (a page signing the victim into the attacker's account) is stopped by
    the browser's own word about where a form came from: a cross-site POST carries
    ``Sec-Fetch-Site: cross-site`` or a foreign ``Origin``.  Programs send neither."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        if not same_origin_post():
            abort(400, description="sign-in forms are accepted from this site only")
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
            response = redirect(safe_next(request.args.get("next"), home()))
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
    return redirect(safe_next(request.form.get("next"), "/"))
