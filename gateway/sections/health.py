"""``/healthz``: the state of the gateway's database and of each service, as JSON."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from sqlalchemy import text

from gateway.aggregate import call
from gateway.remote import remote_many
from services.kit.config import SERVICES

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Any:
    panels = remote_many({name: call(name, "health") for name in SERVICES}, budget=1.5)
    services = {name: ("ok" if p.ok else "unavailable") for name, p in panels.items()}
    try:
        g.db.execute(text("SELECT 1"))
        services["gateway_db"] = "ok"
    except Exception:
        services["gateway_db"] = "unavailable"
    healthy = all(state == "ok" for state in services.values())
    return jsonify({"status": "ok" if healthy else "degraded", "services": services}), \
        (200 if healthy else 503)
