"""The documents service's queries: loading rows by id or by link token (locked when they
will change), the yearly number counters, and the lists the pages show."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, any_, literal, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from services.documents import domain, templating
from services.documents.models import (
    Company,
    Counter,
    Document,
    LinkAction,
    Questionnaire,
    QuestionnaireTemplate,
    SignatureCode,
    Template,
)
from services.kit.errors import NotFound

COMPANY_FIELDS = templating.PLACEHOLDERS["company"]


def _token_ok(token: Any) -> bool:
    """A link token has the shape new_token makes: anything else is no link at all."""
    return isinstance(token, str) and 20 <= len(token) <= 64


# -- templates and our company ---------------------------------------------------------------
def templates(db: Session, kind: str | None, deal_type_id: int | None,
              include_inactive: bool) -> Sequence[Template]:
    stmt = select(Template).order_by(Template.kind, Template.name, Template.id)
    if kind:
        stmt = stmt.where(Template.kind == domain.kind_of(kind))
    if deal_type_id:
        stmt = stmt.where((Template.deal_type_id == int(deal_type_id))
                          | Template.deal_type_id.is_(None))
    if not include_inactive:
        stmt = stmt.where(Template.active)
    return db.scalars(stmt).all()


def template_or_none(db: Session, template_id: Any, field: str = "template_id",
                     lock: bool = False) -> Template | None:
    return db.get(Template, domain.ident(template_id, field), with_for_update=lock)


def template(db: Session, template_id: Any, field: str = "template_id",
             lock: bool = False) -> Template:
    found = template_or_none(db, template_id, field, lock)
    if found is None:
        raise NotFound(f"template {template_id}", entity="template", id=template_id)
    return found


def company(db: Session) -> dict[str, Any]:
    """Our requisites, every placeholder present (None where not filled in)."""
    row = db.get(Company, 1)
    data = dict(row.data) if row else {}
    return {key: data.get(key) for key in COMPANY_FIELDS}


def company_row(db: Session) -> Company:
    """Our requisites' row, locked for a change (a new one before the first save)."""
    return db.get(Company, 1, with_for_update=True) or Company(id=1)


def next_number(db: Session, kind: str, year: int) -> int:
    """The next number of this kind this year; the counter row stays locked until the
    commit, so two documents never share a number and a failed one takes none."""
    db.execute(insert(Counter).values(kind=kind, year=year, last=0).on_conflict_do_nothing())
    counter = db.scalars(select(Counter).where(Counter.kind == kind, Counter.year == year)
                         .with_for_update()).one()
    counter.last += 1
    return int(counter.last)


# -- documents and their links ----------------------------------------------------------------
def document(db: Session, document_id: Any, lock: bool = False) -> Document:
    found = db.get(Document, domain.ident(document_id, "document_id"), with_for_update=lock)
    if found is None:
        raise NotFound(f"document {document_id}", entity="document", id=document_id)
    return found


def documents_of(db: Session, deal_id: int) -> Sequence[Document]:
    return db.scalars(select(Document).where(Document.deal_id == deal_id)
                      .order_by(Document.id.desc())).all()


def actions_of(db: Session, document_id: int) -> Sequence[LinkAction]:
    return db.scalars(select(LinkAction).where(LinkAction.document_id == document_id)
                      .order_by(LinkAction.id)).all()


def by_token(db: Session, token: Any, lock: bool = False) -> Document:
    if not _token_ok(token):
        raise NotFound("no such link", entity="link")
    stmt = select(Document).where(Document.token == token)
    found = db.scalars(stmt.with_for_update() if lock else stmt).first()
    if found is None:
        raise NotFound("no such link", entity="link")
    return found


def record(db: Session, document: Document, action: str, client: dict[str, Any] | None,
           comment: str | None = None) -> None:
    """One line of the link's log: what the client did, from which address and browser."""
    client = client or {}
    db.add(LinkAction(document_id=document.id, action=action,
                      ip=str(client.get("ip") or "")[:64] or None,
                      user_agent=str(client.get("user_agent") or "")[:500] or None,
                      comment=comment))


def live_codes(db: Session, document_id: int) -> Sequence[SignatureCode]:
    return db.scalars(select(SignatureCode).where(
        SignatureCode.document_id == document_id, SignatureCode.used_at.is_(None))).all()


def latest_live_code(db: Session, document_id: int) -> SignatureCode | None:
    return db.scalars(select(SignatureCode).where(
        SignatureCode.document_id == document_id, SignatureCode.used_at.is_(None))
        .order_by(SignatureCode.id.desc()).with_for_update()).first()


def unpaid_invoices_of(db: Session, payment_ids: list[int]) -> dict[int, list[Document]]:
    """The invoices not yet paid of these planned payments, by payment, locked (receipts
    pay them) in id order, so two batches locking some of the same never wait in a circle."""
    found: dict[int, list[Document]] = {}
    if not payment_ids:
        return found
    for invoice in db.scalars(select(Document).where(
            Document.kind == "invoice",
            Document.planned_payment_id == any_(literal(sorted(set(payment_ids)),
                                                        ARRAY(BigInteger))),
            Document.paid_at.is_(None)).order_by(Document.id).with_for_update()):
        found.setdefault(int(invoice.planned_payment_id or 0), []).append(invoice)
    return found


# -- questionnaires ----------------------------------------------------------------------------
def questionnaire_templates(db: Session, include_inactive: bool
                            ) -> Sequence[QuestionnaireTemplate]:
    stmt = select(QuestionnaireTemplate).order_by(QuestionnaireTemplate.name)
    if not include_inactive:
        stmt = stmt.where(QuestionnaireTemplate.active)
    return db.scalars(stmt).all()


def questionnaire_template_or_none(db: Session, template_id: Any, field: str = "template_id",
                                   lock: bool = False) -> QuestionnaireTemplate | None:
    return db.get(QuestionnaireTemplate, domain.ident(template_id, field), with_for_update=lock)


def questionnaire_template(db: Session, template_id: Any, field: str = "template_id",
                           lock: bool = False) -> QuestionnaireTemplate:
    found = questionnaire_template_or_none(db, template_id, field, lock)
    if found is None:
        raise NotFound(f"questionnaire template {template_id}", entity="template")
    return found


def questionnaires_of(db: Session, deal_id: int) -> Sequence[Questionnaire]:
    return db.scalars(select(Questionnaire).where(Questionnaire.deal_id == deal_id)
                      .order_by(Questionnaire.id.desc())).all()


def questionnaire_by_token(db: Session, token: Any, lock: bool = False) -> Questionnaire:
    if not _token_ok(token):
        raise NotFound("no such link", entity="link")
    stmt = select(Questionnaire).where(Questionnaire.token == token)
    found = db.scalars(stmt.with_for_update() if lock else stmt).first()
    if found is None:
        raise NotFound("no such link", entity="link")
    return found


def questionnaire(db: Session, questionnaire_id: Any) -> Questionnaire | None:
    return db.get(Questionnaire, domain.ident(questionnaire_id, "questionnaire_id"))
