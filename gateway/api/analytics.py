"""API: the sales funnel and lost deals (A1–A3, A6).  Query parameters are the page's
filter (``start``, ``end``, ``basis``, ``type_id``, ``client_id``, ``manager_id``,
``department``, ``compare``); a manager gets their own deals whatever they ask."""
from __future__ import annotations

from typing import Any

from flask import jsonify, request

from gateway.api import bp, need
from gateway.sections.analytics import ask, chosen_filters


@bp.route("/analytics/funnel")
def analytics_funnel() -> Any:
    """Per layer: reached, amount, conversions, drop-off, median days, lost at (with
    reasons), deals now in it, and bottlenecks."""
    need("analytics")
    return jsonify(ask("funnel", filters=chosen_filters(request.args)))


@bp.route("/analytics/layers/<code>/deals")
def analytics_layer_deals(code: str) -> Any:
    """The deals of one layer: ``mode`` = cohort (reached it), now, lost (``reason``)."""
    need("analytics")
    return jsonify(ask("layer_deals", code, request.args.get("mode", "cohort"),
                       filters=chosen_filters(request.args),
                       reason=request.args.get("reason") or None))


@bp.route("/analytics/lost")
def analytics_lost() -> Any:
    """Lost deals by the status they were lost at and the reason, with amounts."""
    need("analytics")
    return jsonify(ask("lost_deals", filters=chosen_filters(request.args)))
