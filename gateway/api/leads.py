"""API: the lead inbox.  ``POST /leads`` is for other programs (a per-source key in
``X-Api-Key``, made by an administrator); the rest is for signed-in people."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.api.openapi import describe_body, public
from gateway.auth import client_address
from gateway.remote import remote
from services.kit.errors import Forbidden

LEAD_BODY = {"type": "object", "properties": {
    "external_id": {"type": "string", "description": "your own id: a repeat is the same lead"},
    "name": {"type": "string"}, "phone": {"type": "string", "description": "any format"},
    "email": {"type": "string", "format": "email"}, "company": {"type": "string"},
    "inn": {"type": "string", "pattern": r"^\d{10}(\d{2})?$"}, "message": {"type": "string"},
    "page_url": {"type": "string", "format": "uri"},
    **{k: {"type": "string"} for k in ("utm_source", "utm_medium", "utm_campaign",
                                         "utm_term", "utm_content")}},
    "description": "phone or email is required"}


@bp.route("/leads", methods=["POST"])
def leads_submit() -> Any:
    """A lead from another program (header ``X-Api-Key``).  201 when new, 200 for a
    repeat of the same ``external_id``; 403 for an unknown or revoked key."""
    lead = remote("intake", "submit_api_lead", request.headers.get("X-Api-Key", ""), body(),
                  remote_addr=client_address())
    return jsonify(lead), 201 if lead.pop("created") else 200


public("api.leads_submit")
describe_body("api.leads_submit", LEAD_BODY)


@bp.route("/leads")
def leads_list() -> Any:
    """The inbox: ``status`` = open (default) | all | new | accepted | attached | rejected
    | spam."""
    need("deals")
    status = request.args.get("status", "open")
    return jsonify(remote("intake", "list_leads", status=None if status == "all" else status,
                          limit=request.args.get("limit", 50, type=int),
                          offset=request.args.get("offset", 0, type=int)))


@bp.route("/leads/<int:lead_id>")
def leads_get(lead_id: int) -> Any:
    """One lead with the clients it may already be (``duplicates``)."""
    need("deals")
    return jsonify(remote("intake", "get_lead", lead_id))


@bp.route("/leads/<int:lead_id>/accept", methods=["POST"])
def leads_accept(lead_id: int) -> Any:
    """Client, contact and deal — or the deal for ``client_id`` / the duplicate found.
    A retry returns the same result."""
    need("deals")
    data = request.get_json(silent=True) or {}
    return jsonify(remote("intake", "accept_lead", lead_id, user_id=g.user.id, data=data)), 201


describe_body("api.leads_accept", {"type": "object", "properties": {
    "client_id": {"type": "integer"}, "client_name": {"type": "string"},
    "deal_name": {"type": "string"}}})


@bp.route("/leads/<int:lead_id>/attach", methods=["POST"])
def leads_attach(lead_id: int) -> Any:
    """The lead's message into an open deal's feed."""
    need("deals")
    return jsonify(remote("intake", "attach_lead", lead_id, body().get("deal_id"),
                          user_id=g.user.id)), 201


describe_body("api.leads_attach", {"type": "object", "required": ["deal_id"],
                                   "properties": {"deal_id": {"type": "integer"}}})


@bp.route("/leads/<int:lead_id>/reject", methods=["POST"])
def leads_reject(lead_id: int) -> Any:
    """Reject (``reason``; "spam" by default)."""
    need("deals")
    data = request.get_json(silent=True) or {}
    return jsonify(remote("intake", "reject_lead", lead_id, user_id=g.user.id,
                          reason=str(data.get("reason") or "spam"))), 201


@bp.route("/leads/keys", methods=["POST"])
def leads_key_create() -> Any:
    """A new source key (administrators); the key is in this answer only."""
    need("")
    if "admin" not in g.user.roles:
        raise Forbidden("API keys are for administrators", section="leads")
    return jsonify(remote("intake", "create_api_key", body().get("name"),
                          user_id=g.user.id)), 201


describe_body("api.leads_key_create", {"type": "object", "required": ["name"],
                                       "properties": {"name": {"type": "string"}}})


@bp.route("/leads/keys/<int:key_id>/revoke", methods=["POST"])
def leads_key_revoke(key_id: int) -> Any:
    """Revoke a source key: its next request is refused (403)."""
    need("")
    if "admin" not in g.user.roles:
        raise Forbidden("API keys are for administrators", section="leads")
    return jsonify(remote("intake", "revoke_api_key", key_id, user_id=g.user.id)), 201


@bp.route("/deals/<int:deal_id>/emails", methods=["POST"])
def deals_email(deal_id: int) -> Any:
    """E-mail a contact of the deal (``contact_id``, ``subject``, ``text``, optional
    ``request_id``: the same id sends once); the reply threads back into the deal."""
    need("deals")
    data = body()
    return jsonify(remote("intake", "send_email", deal_id, data.get("contact_id"),
                          str(data.get("subject") or ""), str(data.get("text") or ""),
                          user_id=g.user.id, request_id=data.get("request_id"))), 201


describe_body("api.deals_email", {"type": "object", "required": ["contact_id", "text"],
                                  "properties": {"contact_id": {"type": "integer"},
                                                 "subject": {"type": "string"},
                                                 "text": {"type": "string"},
                                                 "request_id": {"type": "string"}}})
