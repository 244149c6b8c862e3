"""API: a deal's documents and generating one; templates and our requisites for
administrators (the same rules as the pages).  Every endpoint declares its input and output
with the models below (``gateway.api.schema``)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import g
from pydantic import create_model

from gateway.api import bp
from gateway.api.admin import need_admin
from gateway.api.schema import Bool, Id, Input, Items, Limit, Output, SmallId, endpoint
from gateway.remote import remote
from gateway.sections.documents import link_url
from services.kit.contract import documents as templating
from services.kit.errors import NotFound

Short = Annotated[str, Limit(500, required=False)]


def _with_link(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "link": link_url(document["token"])}


class Document(Output):
    id: int
    token: str
    link: str


class Panel(Output):
    documents: list[Document]
    templates: list[dict[str, Any]]


class Template(Output):
    id: int
    kind: str
    name: str


class Generate(Input):
    template_id: SmallId
    planned_payment_id: Id | None = None


class TemplateSave(Input):
    id: SmallId | None = None
    kind: Literal["proposal", "contract", "invoice", "act", "custom"]
    name: Annotated[str, Limit(200)]
    body: Annotated[str, Limit(200_000, required=False)] = ""
    format: Literal["html", "docx"] = "html"
    # a DOCX template (docxtpl), base64; the service checks it before it is saved
    docx_b64: Annotated[str, Limit(8_000_000, required=False)] = ""
    deal_type_id: SmallId | None = None
    active: Bool | None = None


# every field of our company the templates can print (the service checks digits)
Company = create_model(  # type: ignore[call-overload]  # stubs take no **dict of fields
    "Company", __base__=Input,
    **{name: (Short, "") for name in templating.PLACEHOLDERS["company"]})


@bp.route("/deals/<int:deal_id>/documents")
@endpoint(section="deals", response=Panel)
def deal_documents(deal_id: int) -> Any:
    """The deal's documents (each with its client link) and the templates to make more"""
    panel = remote("documents", "deal_documents", deal_id)
    return {**panel, "documents": [_with_link(d) for d in panel["documents"]]}


@bp.route("/deals/<int:deal_id>/documents", methods=["POST"])
@endpoint(section="deals", body=Generate, response=Document, status=201)
def generate_document(deal_id: int, body: Generate) -> Any:
    """Generate a document from a template (an invoice for `planned_payment_id`)."""
    made = remote("documents", "generate_document", deal_id, body.template_id,
                  user_id=g.user.id, planned_payment_id=body.planned_payment_id)
    return _with_link(made), 201


class DocxFile(Output):
    filename: str
    content_b64: str


@bp.route("/deals/<int:deal_id>/documents/<int:document_id>/docx")
@endpoint(section="deals", response=DocxFile, statuses={404: "no such document or no DOCX"})
def document_docx(deal_id: int, document_id: int) -> Any:
    """The DOCX of a document made from a DOCX template, base64 (`filename`,
    `content_b64`)."""
    if remote("documents", "get_document", document_id)["deal_id"] != deal_id:
        raise NotFound(f"document {document_id}", entity="document", id=document_id)
    return remote("documents", "document_docx", document_id)


@bp.route("/documents/templates")
@endpoint(section="deals", response=Items[Template])
def document_templates() -> Any:
    """Document templates (without their bodies)"""
    return remote("documents", "list_templates")


@bp.route("/documents/templates", methods=["POST"])
@endpoint(section="", body=TemplateSave, response=Template, status=201)
def save_document_template(body: TemplateSave) -> Any:
    """Create a template, or change one (send its ``id``); administrators"""
    need_admin()
    return remote("documents", "save_template", body.sent(), user_id=g.user.id), 201


@bp.route("/documents/company")
@endpoint(section="")
def document_company() -> Any:
    """Our company's requisites printed on documents (administrators)"""
    need_admin()
    return remote("documents", "get_company")


@bp.route("/documents/company", methods=["PUT"])
@endpoint(section="", body=Company)
def document_company_save(body: Any) -> Any:
    """Change our company's requisites (only the keys sent)"""
    need_admin()
    return remote("documents", "save_company", body.sent(), user_id=g.user.id)
