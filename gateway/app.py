"""The web gateway: HTML pages for people, a JSON API for programs, both calling the same
services over RabbitMQ."""
from __future__ import annotations

import logging
import re
import threading
import uuid
from typing import Any

from flask import Flask, g, jsonify, make_response, render_template, request
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import auth, edge, formatting, idempotency, messages
from gateway.deal_cards import kanban_cards, table_rows
from gateway.forms import NO_FORM
from gateway.i18n import translate
from gateway.redact import redact
from gateway.rpc import RpcClient
from gateway.urls import id_url
from services.kit.config import load_component_config
from services.kit.db import make_engine
from services.kit.errors import CrmError, RemoteFailure, ValidationError

log = logging.getLogger("crm.gateway")


class Services:
    """The RPC client, made on first use in each process (gunicorn forks after import)."""

    def __init__(self, amqp_uri: str, timeout: float) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self._client: RpcClient | None = None
        self._lock = threading.Lock()

    @property
    def rpc(self) -> RpcClient:
        with self._lock:
            if self._client is None:
                self._client = RpcClient(self.amqp_uri, timeout=self.timeout)
            return self._client


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    crm = config or load_component_config("gateway")
    app.config["CRM"] = crm
    app.config["MAX_CONTENT_LENGTH"] = int(crm.get("MAX_UPLOAD_BYTES", 50 * 1024 * 1024))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    engine = make_engine(crm["DB_URL"], pool_size=int(crm.get("DB_POOL_SIZE", 10)))
    app.extensions["db"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["services"] = Services(crm["AMQP_URI"], float(crm.get("RPC_TIMEOUT", 5)))
    proxies = int(crm.get("TRUSTED_PROXIES", 0) or 0)
    if proxies > 0:
        # X-Forwarded-For/-Proto/-Host are believed only as far as the configured number of
        # proxies in front of us; the hop before them is the client.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies, x_host=proxies)

    from gateway.api import register_routes
    from gateway.sections import discover

    app.register_blueprint(auth.bp)
    for module in discover("gateway.sections"):
        app.register_blueprint(module.bp)
    app.register_blueprint(register_routes())
    formatting.register(app)
    app.add_template_global(id_url, "id_url")
    app.add_template_global(kanban_cards, "kanban_cards")
    app.add_template_global(table_rows, "table_rows")
    # Browsers ask for /favicon.ico on every page whatever the page links.
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.svg"))
    messages.init_app(app)
    edge.init_app(app)
    _wire_requests(app)
    _wire_errors(app)
    return app


# Pages load scripts from our own origin only: no inline script and no inline handler can
# run, so markup that slipped through escaping still cannot execute.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; object-src 'none'; "
                           "base-uri 'self'; frame-ancestors 'none'; form-action 'self'; "
                           "img-src 'self' data:; style-src 'self' 'unsafe-inline'")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id() -> str:
    """The caller's X-Request-Id when it is a short plain token (it goes into logs and
    back into a header), else a fresh one."""
    sent = request.headers.get("X-Request-Id", "")
    return sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex[:16]


def _wire_requests(app: Flask) -> None:
    @app.before_request
    def open_request() -> Any:
        g.request_id = request_id()
        g.db = app.extensions["db"]()
        auth.load_user()
        g.lang = (g.user.lang if g.user is not None else None) or request.args.get("lang") or "ru"
        g.t = lambda key, **params: translate(g.lang, key, **params)
        auth.check_csrf()
        return idempotency.begin_api_write() or idempotency.begin_form_submit()

    @app.teardown_request
    def close_request(exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.after_request
    def stamp(response: Any) -> Any:
        idempotency.finish_api_write(response)
        idempotency.finish_form_submit(response)
        idempotency.stamp_forms(response)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    # every page's forms start untouched; a refused post renders with its own ``form``
    # (a global, so the partials other sections include see it too)
    app.jinja_env.globals["form"] = NO_FORM

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        return {"t": g.get("t", lambda key, **_: key), "user": g.get("user"),
                "csrf_token": g.web_session.csrf_token if g.get("web_session") else "",
                "lang": g.get("lang", "ru"), "can": auth.can}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz" or \
        request.accept_mimetypes.best == "application/json"


def validation_body(exc: ValidationError) -> dict[str, Any]:
    """``{code, field, key, params, message, errors}``: the first error rendered in the
    request's language, and every error of the input in ``errors``."""
    items = messages.error_items(exc)
    first = items[0]
    return {**{k: v for k, v in exc.to_dict().items() if k != "errors"},
            "code": exc.code, "field": first["field"], "key": first["key"],
            "params": first["params"], "message": first["message"], "errors": items}


def _wire_errors(app: Flask) -> None:
    def respond(status: int, body: dict[str, Any]) -> Any:
        if wants_json():
            return jsonify({"error": body}), status
        return render_template("error.html", status=status, error=body), status

    @app.errorhandler(CrmError)
    def crm_error(exc: CrmError) -> Any:
        if isinstance(exc, ValidationError):
            return respond(exc.http_status, validation_body(exc))
        return respond(exc.http_status, exc.to_dict())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        body: dict[str, Any] = {"code": exc.name.lower().replace(" ", "_"),
                                "message": exc.description}
        limit = {413: (messages.HTTP_KEYS[413], app.config["MAX_CONTENT_LENGTH"]),
                 414: (messages.HTTP_KEYS[414], edge.MAX_URL_BYTES)}.get(exc.code or 0)
        if limit is not None:  # name the limit, so a caller knows what to change
            key, size = limit
            body.update(key=key, params={"limit": size}, limit=size,
                        message=messages.render(key, {"limit": size}, exc.description or ""))
        response = make_response(respond(exc.code or 500, body))
        valid = getattr(exc, "valid_methods", None)
        if valid:  # a 405 says what is allowed (RFC 9110)
            response.headers["Allow"] = ", ".join(valid)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        error_id = uuid.uuid4().hex[:12]
        if isinstance(exc, RemoteFailure):
            log.error("error %s: remote %s", error_id, exc)
        else:
            log.exception("error %s on %s %s", error_id, request.method, redact(request.path))
        return respond(500, {"code": "internal_error", "error_id": error_id,
                             "message": f"Something went wrong; quote error id {error_id}"})
