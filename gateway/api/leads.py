"""API: the lead inbox.  ``POST /leads`` is for other programs (a per-source key in
``X-Api-Key``, made by an administrator); the rest is for signed-in people.  Every endpoint
declares its input and output with the models below (``gateway.api.schema``)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import g, request
from pydantic import Field

from gateway.api import bp
from gateway.api.openapi import public
from gateway.api.schema import Id, Input, Limit, Output, Query, endpoint
from gateway.auth import client_address
from gateway.remote import remote
from services.kit.errors import Forbidden

Short = Annotated[str, Limit(500, required=False)]


def admin() -> None:
    if "admin" not in g.user.roles:
        raise Forbidden("API keys are for administrators", section="leads")


class Lead(Output):
    id: int
    status: str


class LeadPage(Output):
    total: int
    items: list[Lead]


class ApiKey(Output):
    id: int
    name: str


class LeadIn(Input):
    """Phone or email is required."""

    external_id: Annotated[str, Limit(200)] | None = Field(
        None, description="your own id: a repeat is the same lead")
    name: Short = ""
    phone: Annotated[str, Limit(40, required=False)] = Field("", description="any format")
    email: Annotated[str, Limit(254, required=False)] = ""
    company: Short = ""
    inn: Annotated[str, Limit(12, required=False)] = ""
    message: Annotated[str, Limit(10_000, required=False)] = ""
    page_url: Annotated[str, Limit(2000, required=False)] = ""
    referrer: Annotated[str, Limit(2000, required=False)] = Field(
        "", description="the page that led to page_url")
    utm_source: Short = ""
    utm_medium: Short = ""
    utm_campaign: Short = ""
    utm_term: Short = ""
    utm_content: Short = ""


class Accept(Input):
    client_id: Id | None = None
    client_name: Short = ""
    deal_name: Short = ""


class Attach(Input):
    deal_id: Id


class Reject(Input):
    reason: Annotated[str, Limit(200, required=False)] = "spam"


class KeyCreate(Input):
    name: Annotated[str, Limit(200)]


class Email(Input):
    contact_id: Id
    subject: Short = ""
    text: Annotated[str, Limit(100_000)]
    request_id: Annotated[str, Limit(100)] | None = Field(
        None, description="the same id sends once")


class LeadsQuery(Query):
    status: Literal["open", "all", "new", "accepted", "attached", "rejected", "spam"] = "open"
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


@bp.route("/leads", methods=["POST"])
@endpoint(body=LeadIn, response=Lead, status=201,
          statuses={200: "a repeat of the same external_id",
                    403: "unknown or revoked X-Api-Key"})
def leads_submit(body: LeadIn) -> Any:
    """A lead from another program (header ``X-Api-Key``).  201 when new, 200 for a
    repeat of the same ``external_id``; 403 for an unknown or revoked key."""
    lead = remote("intake", "submit_api_lead", request.headers.get("X-Api-Key", ""),
                  body.sent(), remote_addr=client_address())
    return lead, 201 if lead.pop("created") else 200


public("api.leads_submit")


@bp.route("/leads")
@endpoint(section="deals", query=LeadsQuery, response=LeadPage)
def leads_list(query: LeadsQuery) -> Any:
    """The inbox: ``status`` = open (default) | all | new | accepted | attached | rejected
    | spam."""
    return remote("intake", "list_leads", status=None if query.status == "all" else query.status,
                  limit=query.limit, offset=query.offset)


@bp.route("/leads/<int:lead_id>")
@endpoint(section="deals", response=Lead)
def leads_get(lead_id: int) -> Any:
    """One lead with the clients it may already be (``duplicates``)."""
    return remote("intake", "get_lead", lead_id)


@bp.route("/leads/<int:lead_id>/accept", methods=["POST"])
@endpoint(section="deals", body=Accept, body_required=False, response=Lead, status=201,
          statuses={409: "decided already, or being accepted"})
def leads_accept(lead_id: int, body: Accept) -> Any:
    """Client, contact and deal — or the deal for ``client_id`` / the duplicate found.
    A retry returns the same result."""
    return remote("intake", "accept_lead", lead_id, user_id=g.user.id, data=body.sent()), 201


@bp.route("/leads/<int:lead_id>/attach", methods=["POST"])
@endpoint(section="deals", body=Attach, response=Lead, status=201,
          statuses={409: "decided already"})
def leads_attach(lead_id: int, body: Attach) -> Any:
    """The lead's message into an open deal's feed."""
    return remote("intake", "attach_lead", lead_id, body.deal_id, user_id=g.user.id), 201


@bp.route("/leads/<int:lead_id>/reject", methods=["POST"])
@endpoint(section="deals", body=Reject, body_required=False, response=Lead, status=201,
          statuses={409: "decided already"})
def leads_reject(lead_id: int, body: Reject) -> Any:
    """Reject (``reason``; "spam" by default)."""
    return remote("intake", "reject_lead", lead_id, user_id=g.user.id,
                  reason=body.reason or "spam"), 201


@bp.route("/leads/keys", methods=["POST"])
@endpoint(section="", body=KeyCreate, response=ApiKey, status=201)
def leads_key_create(body: KeyCreate) -> Any:
    """A new source key (administrators); the key is in this answer only."""
    admin()
    return remote("intake", "create_api_key", body.name, user_id=g.user.id), 201


@bp.route("/leads/keys/<int:key_id>/revoke", methods=["POST"])
@endpoint(section="", response=ApiKey, status=201)
def leads_key_revoke(key_id: int) -> Any:
    """Revoke a source key: its next request is refused (403)."""
    admin()
    return remote("intake", "revoke_api_key", key_id, user_id=g.user.id), 201


@bp.route("/deals/<int:deal_id>/emails", methods=["POST"])
@endpoint(section="deals", body=Email, status=201)
def deals_email(deal_id: int, body: Email) -> Any:
    """E-mail a contact of the deal; the reply threads back into the deal."""
    return remote("intake", "send_email", deal_id, body.contact_id, body.subject, body.text,
                  user_id=g.user.id, request_id=body.request_id), 201
