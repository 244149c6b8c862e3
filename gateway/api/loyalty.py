"""API of client loyalty (RFM) and the BCG matrix: the same figures as the pages, from the
analytics service.  Segments are read by anyone who sees clients; the rule table and the
recomputation are for administrators; the BCG matrix for heads and administrators."""
from __future__ import annotations

from typing import Annotated, Any

from flask import g
from pydantic import Field

from gateway.api import bp
from gateway.api.admin import need_admin
from gateway.api.schema import Day, Output, Query, endpoint
from gateway.remote import remote
from gateway.sections.analytics import report_deadline
from gateway.sections.loyalty import RECOMPUTE_TIMEOUT
from services.kit import parse
from services.kit.errors import Forbidden, ValidationError


class SegmentsQuery(Query):
    # within the edge's 4096-byte URL limit (gateway/edge.py), so a too long list is a 422
    # naming the field, never a 414: a page of the list is at most 200 ids
    ids: Annotated[str, Field(max_length=3000, description="client ids, comma-separated "
                                                           "(at most 500)")]


class Recomputed(Output):
    clients: int
    moved: int
    segments: dict[str, int]


class Rules(Output):
    rules: list[dict[str, Any]]


class ClientLoyalty(Output):
    score: dict[str, Any] | None
    history: list[dict[str, Any]]


class BcgQuery(Query):
    start: Day | None = None
    end: Day | None = None
    growth: Annotated[str, Field(max_length=20)] | None = Field(
        None, description="growth threshold, percent (default 10)")


class Bcg(Output):
    by: str
    rows: list[dict[str, Any]]


def _ids(text: str) -> list[int]:
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) > 500:
        raise ValidationError("Не больше 500 клиентов за раз.", "ids",
                              key="rfm.too_many_clients", params={"max": 500})
    return [parse.identifier(p.strip(), "ids") for p in parts]


@bp.route("/clients/segments")
@endpoint(section="clients", query=SegmentsQuery, response=dict[str, dict[str, Any]])
def clients_segments(query: SegmentsQuery) -> Any:
    """RFM scores and segments of these clients ({client id: score}); a client that never
    paid is absent."""
    return remote("analytics", "client_segments", _ids(query.ids))


@bp.route("/clients/<int:client_id>/loyalty")
@endpoint(section="clients", response=ClientLoyalty)
def clients_loyalty(client_id: int) -> Any:
    """A client's RFM score and its segment changes, newest first"""
    return remote("analytics", "client_loyalty", client_id)


@bp.route("/admin/rfm/rules")
@endpoint(section="", response=Rules)
def rfm_rules() -> Any:
    """The RFM segment rules, checked top to bottom (administrators)"""
    need_admin()
    return remote("analytics", "rfm_rules")


@bp.route("/admin/rfm/recompute", methods=["POST"])
@endpoint(section="", response=Recomputed, body_required=False)
def rfm_recompute() -> Any:
    """Recompute every client's RFM segment now (administrators)"""
    need_admin()
    return remote("analytics", "recompute_rfm", timeout=RECOMPUTE_TIMEOUT)


@bp.route("/analytics/bcg")
@endpoint(section="analytics", query=BcgQuery, response=Bcg)
def analytics_bcg(query: BcgQuery) -> Any:
    """The BCG matrix over our own sales (share of OUR sales, not market share) against
    growth on the previous period of the same length (heads and administrators)"""
    if not {"head", "admin"} & set(g.user.roles):
        raise Forbidden("the BCG matrix is for heads and administrators", section="analytics")
    filters = {k: v for k, v in query.model_dump(mode="json").items() if v is not None}
    return remote("analytics", "bcg_matrix", filters,
                  viewer={"user_id": g.user.id, "roles": list(g.user.roles)},
                  timeout=report_deadline())
