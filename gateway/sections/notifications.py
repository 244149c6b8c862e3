"""In-app notifications: the bell and its list (N1)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, url_for

from gateway.auth import login_required
from gateway.remote import remote

bp = Blueprint("notifications", __name__)


@bp.route("/notifications")
@login_required
def index() -> Any:
    return render_template("notifications.html",
                           result=remote("notifications", "list_for_user", g.user.id))


@bp.route("/notifications/read", methods=["POST"])
@login_required
def mark_read() -> Any:
    remote("notifications", "mark_read", g.user.id)
    return redirect(url_for("notifications.index"))
