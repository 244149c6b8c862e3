"""API: the sales funnel and lost deals (A1–A3, A6).  Query parameters are the page's
filter (``start``, ``end``, ``basis``, ``type_id``, ``client_id``, ``client_group_id``,
``manager_id``, ``department``, ``compare``); a manager gets their own deals whatever they
ask.  Every endpoint declares its input and output with the models below (``gateway.api.schema``);
the analytics service checks the filter's values and names a wrong one."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import request

from gateway.api import bp
from gateway.api.schema import Limit, Output, Query, endpoint
from gateway.sections.analytics import ask, chosen_filters

Value = Annotated[str, Limit(100, required=False)]


class Filter(Query):
    start: Value | None = None
    end: Value | None = None
    basis: Value | None = None
    type_id: Value | None = None
    client_id: Value | None = None
    client_group_id: Value | None = None
    manager_id: Value | None = None
    department: Value | None = None
    compare: Value | None = None


class LayerQuery(Filter):
    mode: Literal["cohort", "now", "lost"] = "cohort"
    reason: Annotated[str, Limit(200, required=False)] | None = None


class Funnel(Output):
    filters: dict[str, Any]
    layers: list[dict[str, Any]]


class LayerDeals(Output):
    layer: dict[str, Any]
    mode: str
    deals: list[dict[str, Any]]


class Lost(Output):
    rows: list[dict[str, Any]]
    total: dict[str, Any]


@bp.route("/analytics/funnel")
@endpoint(section="analytics", query=Filter, response=Funnel)
def analytics_funnel(query: Filter) -> Any:
    """Per layer: reached, amount, conversions, drop-off, median days, lost at (with
    reasons), deals now in it, and bottlenecks."""
    return ask("funnel", filters=chosen_filters(request.args))


@bp.route("/analytics/layers/<code>/deals")
@endpoint(section="analytics", query=LayerQuery, response=LayerDeals)
def analytics_layer_deals(code: str, query: LayerQuery) -> Any:
    """The deals of one layer: ``mode`` = cohort (reached it), now, lost (``reason``)."""
    return ask("layer_deals", code, query.mode, filters=chosen_filters(request.args),
               reason=query.reason or None)


@bp.route("/analytics/lost")
@endpoint(section="analytics", query=Filter, response=Lost)
def analytics_lost(query: Filter) -> Any:
    """Lost deals by the status they were lost at and the reason, with amounts."""
    return ask("lost_deals", filters=chosen_filters(request.args))
