"""API: a deal's documents and generating one; templates and our requisites for
administrators (the same rules as the pages)."""
from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.api.admin import need_admin
from gateway.api.openapi import describe_body
from gateway.remote import remote
from gateway.sections.documents import link_url
from services.kit.errors import NotFound


def _with_link(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "link": link_url(document["token"])}


@bp.route("/deals/<int:deal_id>/documents")
def deal_documents(deal_id: int) -> Any:
    need("deals")
    panel = remote("documents", "deal_documents", deal_id)
    return jsonify({**panel, "documents": [_with_link(d) for d in panel["documents"]]})


@bp.route("/deals/<int:deal_id>/documents", methods=["POST"])
def generate_document(deal_id: int) -> Any:
    """Generate a document from a template (an invoice for `planned_payment_id`)."""
    need("deals")
    data = body()
    made = remote("documents", "generate_document", deal_id, data.get("template_id"),
                  user_id=g.user.id, planned_payment_id=data.get("planned_payment_id"))
    return jsonify(_with_link(made)), 201


@bp.route("/deals/<int:deal_id>/documents/<int:document_id>/docx")
def document_docx(deal_id: int, document_id: int) -> Any:
    """The DOCX of a document made from a DOCX template, base64 (`filename`,
    `content_b64`)."""
    need("deals")
    if remote("documents", "get_document", document_id)["deal_id"] != deal_id:
        raise NotFound(f"document {document_id}", entity="document", id=document_id)
    return jsonify(remote("documents", "document_docx", document_id))


@bp.route("/documents/templates")
def document_templates() -> Any:
    need("deals")
    return jsonify(remote("documents", "list_templates"))


@bp.route("/documents/templates", methods=["POST"])
def save_document_template() -> Any:
    need_admin()
    return jsonify(remote("documents", "save_template", body(), user_id=g.user.id)), 201


@bp.route("/documents/company", methods=["GET", "PUT"])
def document_company() -> Any:
    need_admin()
    if request.method == "PUT":
        return jsonify(remote("documents", "save_company", body(), user_id=g.user.id))
    return jsonify(remote("documents", "get_company"))


describe_body("api.generate_document", {"type": "object", "required": ["template_id"],
                                        "properties": {"template_id": {"type": "integer"},
                                                       "planned_payment_id": {
                                                           "type": "integer"}}})
describe_body("api.save_document_template", {
    "type": "object", "required": ["kind", "name"],
    "properties": {"id": {"type": "integer"}, "kind": {"enum": ["proposal", "contract",
                                                                "invoice", "act", "custom"]},
                   "name": {"type": "string"},
                   "body": {"type": "string", "description": "an HTML template (Jinja)"},
                   "format": {"enum": ["html", "docx"]},
                   "docx_b64": {"type": "string", "format": "byte",
                                "description": "a DOCX template (docxtpl), base64"},
                   "deal_type_id": {"type": "integer"}, "active": {"type": "boolean"}}})
describe_body("api.document_company", {"type": "object", "properties": {
    key: {"type": "string"} for key in ("name", "inn", "kpp", "bik", "bank_name",
                                        "settlement_account", "correspondent_account",
                                        "address", "director", "vat_rate")}})
