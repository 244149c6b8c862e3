"""Documents service: templates, generated documents with their PDFs, client links,
simple electronic signatures and questionnaires (MISSION G1–G3, P6).  The templates, the
links and the questionnaires are parts (templates.py, links.py, questionnaires/); this
class holds generating a document, the manager's view of them and invoices paid."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config

from services.documents import docx_templates, domain, store, templating
from services.documents.links import LinksEntrypoints
from services.documents.models import Document, metadata
from services.documents.questionnaires.entrypoints import QuestionnairesEntrypoints
from services.documents.schemas import action_dict, document_dict, event_facts, file_dict
from services.documents.templates import TemplatesEntrypoints
from services.kit import clock
from services.kit.batch import consumes_batch
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import rpc
from services.kit.envelope import Envelope
from services.kit.errors import ValidationError
from services.kit.money import parse_money
from services.kit.service import HealthCheck

CLIENT_FIELDS = templating.PLACEHOLDERS["client"]


class DocumentsService(TemplatesEntrypoints, LinksEntrypoints, QuestionnairesEntrypoints,
                       HealthCheck):
    name = "documents"

    db = UnitOfWork(metadata)
    calls = CallLog()
    config = Config()
    deals = Remote("deals")
    clients = Remote("clients")
    notifications = Remote("notifications")
    payments = Remote("payments")

    def _now(self) -> datetime:
        return clock.now()

    def _today(self) -> date:
        return clock.business_today(self.config)

    # -- generating -------------------------------------------------------------------------
    def _placeholders(self, deal_id: int) -> dict[str, Any]:
        page = self.deals.deal_page(deal_id)
        client = self.clients.get_client(page["client_id"]) if page.get("client_id") else {}
        requisites = dict(client.get("requisites") or {})
        client_data = {key: requisites.get(key) for key in CLIENT_FIELDS}
        client_data.update(kind=client.get("kind"), short_name=client.get("name"),
                           name=requisites.get("name") or requisites.get("full_name")
                           or client.get("name"),
                           legal_address=requisites.get("legal_address")
                           or client.get("address"))
        contacts = page.get("contacts") or []
        main = next((c for c in contacts if c.get("is_main")), contacts[0] if contacts else {})
        contact = {"contact_id": main.get("contact_id") or main.get("id"),
                   "name": main.get("name"), "position": main.get("position"),
                   "phone": domain.first_of(main.get("phones")),
                   "email": domain.first_of(main.get("emails"))}
        calculation = page.get("calculation") or {}
        lines = domain.table_lines(calculation.get("lines") or [])
        return {"deal": {"id": page["id"], "name": page.get("name"),
                         "amount": page.get("amount"), "currency": page.get("currency"),
                         "manager_name": None},
                "client": client_data, "contact": contact, "lines": lines,
                "manager_id": page.get("manager_id"), "client_id": page.get("client_id")}

    def _invoice_payment(self, deal_id: int, chosen: Any,
                         lines: list[dict[str, Any]]) -> tuple[int | None,
                                                               list[dict[str, Any]]]:
        """The planned payment an invoice is for (the one chosen, else the deal's only
        open one) and the invoice's lines: the calculation's when the payment is for its
        whole total, else one line for the payment's outstanding amount."""
        payments = self.payments.deal_payments(deal_id)
        open_ones = [p for p in payments.get("payments") or []
                     if p.get("status") in ("planned", "partial")]
        if chosen not in (None, ""):
            wanted = domain.ident(chosen, "planned_payment_id")
            payment = next((p for p in open_ones if int(p["id"]) == wanted), None)
            if payment is None:
                raise ValidationError("Этот платёж не относится к сделке или уже оплачен.",
                                      field="planned_payment_id",
                                      key="planned_payment.not_open")
        elif len(open_ones) == 1:
            payment = open_ones[0]
        else:
            return None, lines
        due = parse_money(str(payment["outstanding"]))
        if sum((line["amount"] for line in lines), Decimal("0")) == due:
            return int(payment["id"]), lines
        return int(payment["id"]), domain.table_lines([{
            "kind": "service", "name": f"Оплата по сделке (платёж до {payment['due_date']})",
            "quantity": "1", "unit_price": str(due), "amount": str(due)}])

    @rpc
    def generate_document(self, deal_id: int, template_id: int,
                          user_id: int | None = None,
                          planned_payment_id: int | None = None) -> dict[str, Any]:
        """Fill a template with the deal's data and save the document, its number and its
        PDF in one transaction (a render that fails takes no number).  An invoice is for
        ``planned_payment_id`` (default: the deal's only open payment, if it has one)."""
        deal_id = domain.ident(deal_id, "deal_id")
        template = store.template_or_none(self.db, template_id)
        if template is None or not template.active:
            raise ValidationError("Шаблон не найден.", field="template_id",
                                  key="template.not_found")
        facts = self._placeholders(deal_id)
        kind = template.kind
        payment_id = None
        if kind == "invoice":
            payment_id, facts["lines"] = self._invoice_payment(deal_id, planned_payment_id,
                                                               facts["lines"])
        company = store.company(self.db)
        rate = domain.vat_rate(company.get("vat_rate"))
        totals = domain.totals([line["amount"] for line in facts["lines"]], rate)
        today = self._today()
        title_base = domain.KIND_TITLES[kind] if kind != "custom" else template.name
        number = store.next_number(self.db, kind, today.year)  # the counter row stays locked
        data = {**facts, "company": company, "totals": totals.as_dict(), "answers": {},
                "today": domain.date_ru(today),
                "document": {"number": number, "date": domain.date_ru(today),
                             "title": title_base, "kind": kind}}
        data["qr"] = (domain.qr_svg_data_uri(domain.qr_payload(
            company, totals.total, f"Оплата по счёту № {number} от {domain.date_ru(today)}"))
            if kind == "invoice" else None)
        docx = None
        if template.format == "docx" and template.docx is not None:
            docx = docx_templates.render_docx(template.docx, data)
            pdf = docx_templates.to_pdf(docx)   # None where LibreOffice is not installed
            html = docx_templates.text_preview(docx)
        else:
            html = templating.render_html(template.body, data)
            pdf = templating.render_pdf(html)
        days = int(self.config.get("DOCUMENT_LINK_DAYS") or domain.LINK_DAYS)
        document = Document(
            kind=kind, year=today.year, number=number,
            title=f"{title_base} № {number} от {domain.date_ru(today)}",
            deal_id=deal_id, deal_name=facts["deal"]["name"], client_id=facts["client_id"],
            manager_id=facts["manager_id"], contact=facts["contact"],
            template_id=template.id, template_version=template.version,
            amount=totals.total, currency=facts["deal"].get("currency") or "RUB",
            html=html, pdf=pdf, docx=docx, status="new",
            pdf_sha256=domain.sha256(pdf if pdf is not None else docx or b""),
            planned_payment_id=payment_id, paid_amount=Decimal("0"),
            token=domain.new_token(), expires_at=self._now() + timedelta(days=days),
            views=0, created_by=user_id)
        self.db.add(document)
        self.db.flush()
        self.db.emit("document_generated", {**event_facts(document), "user_id": user_id})
        return document_dict(document, self._now())

    # -- the manager's view -----------------------------------------------------------------
    @rpc
    def list_documents(self, deal_id: int) -> list[dict[str, Any]]:
        now = self._now()
        return [document_dict(d, now)
                for d in store.documents_of(self.db, domain.ident(deal_id, "deal_id"))]

    @rpc
    def deal_documents(self, deal_id: int) -> dict[str, Any]:
        """The deal page's panel: its documents, questionnaires and their templates, read
        in one transaction: the four lists' own entrypoints each commit, and four
        transactions are twice the round trips (8.4 -> 5.1-6.1 ms a call, 2026-12-07)."""
        cls = type(self)
        return {"documents": cls.list_documents.__wrapped__(self, deal_id),
                "templates": cls.list_templates.__wrapped__(self),
                "questionnaires": cls.list_questionnaires.__wrapped__(self, deal_id),
                "questionnaire_templates": cls.list_questionnaire_templates.__wrapped__(self)}

    @rpc
    def get_document(self, document_id: int) -> dict[str, Any]:
        document = store.document(self.db, document_id)
        return {**document_dict(document, self._now()),
                "actions": [action_dict(a) for a in store.actions_of(self.db, document.id)]}

    @rpc
    def document_pdf(self, document_id: int) -> dict[str, Any]:
        return file_dict(store.document(self.db, document_id), "pdf")

    @rpc
    def document_docx(self, document_id: int) -> dict[str, Any]:
        """The DOCX of a document made from a DOCX template (NotFound for HTML ones)."""
        return file_dict(store.document(self.db, document_id), "docx")

    # -- invoices paid (P6) ---------------------------------------------------------------------
    @consumes_batch("payments", "payment_received")
    def on_payment_received(self, events: list[Envelope]) -> None:
        """A receipt for an invoice's planned payment pays the invoice (once its amount is
        covered); the inbox makes a repeated event change nothing.  A batch's invoices are
        read and locked in one statement, then the receipts are applied in their order
        (two receipts of one payment in a batch add up, as one after the other would)."""
        unpaid = store.unpaid_invoices_of(self.db, [int(e.data["payment_id"]) for e in events])
        for event in events:
            data = event.data
            for invoice in unpaid.get(int(data["payment_id"]), []):
                if invoice.paid_at is not None:  # paid by an earlier receipt of the batch
                    continue
                invoice.paid_amount = (invoice.paid_amount or Decimal("0")) + parse_money(
                    str(data["amount"]))
                if invoice.paid_amount >= (invoice.amount or Decimal("0")):
                    invoice.paid_at, invoice.status = self._now(), "paid"
                    self.db.flush()
                    self.db.emit("document_paid", {**event_facts(invoice),
                                                   "receipt_id": data.get("receipt_id"),
                                                   "amount": data.get("amount")})
