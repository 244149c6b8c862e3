"""Writes that a retry must not repeat.

API: a POST/PUT/PATCH/DELETE with an ``Idempotency-Key`` header runs once per user and key
(IETF httpapi draft, Stripe's semantics).  The same key with the same request gets the
stored response back (``Idempotent-Replayed: true``); with another request, a 422; while
the first is still running, a 409.  Keys are kept 24 hours.  The key also travels to the
services with every call the view makes (``idempotency_key``), so a retry after the gateway
died between the service's commit and storing the response is answered by the service from
its own record instead of writing twice.

HTML: every form the gateway renders gets a one-time ``form_token`` beside its CSRF token;
a second submit of the same form does nothing and lands back on the page.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import Response, current_app, g, redirect, request
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from werkzeug.wrappers import Response as WerkzeugResponse

from gateway.models import IdempotentRequest, UsedFormToken
from services.kit import clock
from services.kit.db import table_of
from services.kit.errors import Conflict, ValidationError

HEADER = "Idempotency-Key"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
KEEP = timedelta(hours=24)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_CSRF_FIELD = re.compile(r'(<input type="hidden" name="csrf_token" value="[^"]*">)')


def now() -> datetime:
    return clock.now()


# -- API ----------------------------------------------------------------------------------
def fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode() + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def begin_api_write() -> Response | None:
    """Before the view: claim the key, or answer from what the first request left."""
    key = request.headers.get(HEADER)
    if key is None or request.method not in WRITES or g.get("user") is None \
            or not request.path.startswith("/api/"):
        return None
    if not _KEY.fullmatch(key):
        raise ValidationError(f"{HEADER}: 1-255 visible ASCII characters", field=HEADER,
                              key="idempotency_key.format")
    db, user_id, sent = g.db, g.user.id, fingerprint()
    lease = timedelta(seconds=float(current_app.config["CRM"].get(
        "IDEMPOTENCY_LEASE_SECONDS", 30)))
    db.execute(delete(IdempotentRequest).where(IdempotentRequest.user_id == user_id,
                                               IdempotentRequest.created_at < now() - KEEP))
    claimed = db.execute(insert(table_of(IdempotentRequest))
                         .values(user_id=user_id, key=key, fingerprint=sent)
                         .on_conflict_do_nothing()
                         .returning(IdempotentRequest.key)).first()
    if claimed is None:
        first = db.scalars(select(IdempotentRequest).with_for_update().where(
            IdempotentRequest.user_id == user_id, IdempotentRequest.key == key)).one()
        if first.fingerprint != sent:
            db.rollback()
            raise ValidationError(f"{HEADER}: this key was used for another request",
                                  field=HEADER, key="idempotency_key.reused")
        if first.status is not None:
            db.rollback()
            return _replay(first)
        if first.created_at > now() - lease:
            db.rollback()
            raise Conflict(f"{HEADER}: the first request with this key is still running; "
                           "repeat it in a moment", key="idempotency_key.in_progress")
        # The first request died (the gateway was killed): run again.  The services answer
        # repeats of what it already did from their own record.
        first.created_at = now()
    db.commit()
    g.idempotency_key = key
    g.idempotent_calls = 0
    return None


def _replay(first: IdempotentRequest) -> Response:
    response = Response(first.body or b"", status=first.status, content_type=first.content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def service_key() -> str | None:
    """The key for the next service call of this request (numbered: a view's calls run in
    the same order each time it runs)."""
    key = g.get("idempotency_key")
    if key is None:
        return None
    g.idempotent_calls += 1
    return f"{g.user.id}:{key}:{g.idempotent_calls}"


def finish_api_write(response: Response) -> None:
    """After the view: keep the response for repeats, or free the key after a failure
    (a 5xx wrote nothing a retry must not redo)."""
    key = g.pop("idempotency_key", None)
    if key is None:
        return
    db = g.db
    db.rollback()
    row = db.get(IdempotentRequest, (g.user.id, key))
    if row is None:
        return
    if response.status_code >= 500 or response.direct_passthrough or response.is_streamed:
        db.delete(row)
    else:
        row.status = response.status_code
        row.content_type = response.content_type
        row.body = response.get_data()
    db.commit()


# -- HTML forms ---------------------------------------------------------------------------
def stamp_forms(response: Response) -> None:
    """Give every rendered form a one-time token next to its CSRF token."""
    if response.mimetype != "text/html" or response.direct_passthrough or response.is_streamed:
        return
    html = response.get_data(as_text=True)
    if 'name="csrf_token"' not in html:
        return
    response.set_data(_CSRF_FIELD.sub(
        lambda m: f'{m.group(1)}<input type="hidden" name="form_token" '
                  f'value="{secrets.token_urlsafe(18)}">', html))


def begin_form_submit() -> Response | WerkzeugResponse | None:
    """A form submitted a second time (double click, back and submit again) does nothing."""
    token = request.form.get("form_token") if request.method == "POST" else None
    if not token or g.get("web_session") is None or len(token) > 64:
        return None
    db = g.db
    db.execute(delete(UsedFormToken).where(UsedFormToken.used_at < now() - KEEP))
    fresh = db.execute(insert(table_of(UsedFormToken)).values(token=token)
                       .on_conflict_do_nothing().returning(UsedFormToken.token)).first()
    db.commit()
    if fresh is None:
        return redirect(_back(), code=303)
    g.form_token = token
    return None


def finish_form_submit(response: Response) -> None:
    """A submit that failed may be sent again."""
    token = g.pop("form_token", None)
    if token is not None and response.status_code >= 400:
        g.db.rollback()
        g.db.execute(delete(UsedFormToken).where(UsedFormToken.token == token))
        g.db.commit()


def _back() -> str:
    from gateway.auth import safe_next

    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return "/"
    path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return safe_next(path, "/")
