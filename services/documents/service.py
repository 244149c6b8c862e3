"""Documents service: templates, generated documents with their PDFs, client links,
simple electronic signatures (MISSION G1–G2)."""
from __future__ import annotations

import base64
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.documents import docx_templates, domain, questionnaires, templating
from services.documents.models import (
    Company,
    Counter,
    Document,
    LinkAction,
    Questionnaire,
    QuestionnaireTemplate,
    SignatureCode,
    Template,
    metadata,
)
from services.documents.schemas import (
    document_dict,
    event_facts,
    questionnaire_dict,
    questionnaire_template_dict,
    template_dict,
)
from services.kit import clock
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import Conflict, NotFound, ValidationError
from services.kit.money import parse_money
from services.kit.service import HealthCheck

COMPANY_FIELDS = templating.PLACEHOLDERS["company"]
CLIENT_FIELDS = templating.PLACEHOLDERS["client"]


def _id(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0:
        raise ValidationError("Нужен идентификатор.", field=field, key="id.invalid",
                              params={"value": str(value)})
    return number


def _text(data: dict[str, Any], field: str, limit: int, required: bool = False) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise ValidationError("Ожидается текст.", field=field, key="text.invalid")
    value = (value or "").strip()
    if required and not value:
        raise ValidationError("Заполните поле.", field=field, key="required")
    if len(value) > limit:
        raise ValidationError(f"Не длиннее {limit} символов.", field=field, key="text.too_long",
                              params={"max": limit})
    return value or None


def _file(document: Document, what: str) -> dict[str, Any]:
    """The document's PDF or DOCX for download; NotFound when it has none (an HTML
    template makes no DOCX; a DOCX one makes no PDF where LibreOffice is not installed)."""
    content = document.pdf if what == "pdf" else document.docx
    if content is None:
        raise NotFound(f"document {document.id} {what}", entity="document", id=document.id,
                       key=f"document.no_{what}")
    return {"filename": f"{document.kind}-{document.year}-{document.number}.{what}",
            "content_b64": base64.b64encode(content).decode()}


def _first(values: Any) -> str | None:
    """The first of a contact's phones or e-mails (a list, or one comma-separated text)."""
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",")]
    return next((str(v) for v in values or [] if v), None)


class DocumentsService(HealthCheck):
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

    # -- templates ------------------------------------------------------------------------
    @rpc
    def list_templates(self, kind: str | None = None, deal_type_id: int | None = None,
                       include_inactive: bool = False) -> list[dict[str, Any]]:
        stmt = select(Template).order_by(Template.kind, Template.name, Template.id)
        if kind:
            stmt = stmt.where(Template.kind == domain.kind_of(kind))
        if deal_type_id:
            stmt = stmt.where((Template.deal_type_id == int(deal_type_id))
                              | Template.deal_type_id.is_(None))
        if not include_inactive:
            stmt = stmt.where(Template.active)
        return [template_dict(t, with_body=False) for t in self.db.scalars(stmt)]

    @rpc
    def get_template(self, template_id: int) -> dict[str, Any]:
        template = self.db.get(Template, _id(template_id, "template_id"))
        if template is None:
            raise NotFound(f"template {template_id}", entity="template", id=template_id)
        return template_dict(template)

    @rpc
    def check_template(self, body: str) -> list[dict[str, Any]]:
        """Problems of a template body (each with `line`, `placeholder`, `key`, `message`)."""
        if not isinstance(body, str):
            raise ValidationError("Ожидается текст шаблона.", field="body", key="text.invalid")
        return templating.check(body)

    @rpc
    def check_docx_template(self, docx_b64: str) -> list[dict[str, Any]]:
        """Problems of an uploaded DOCX template (each with `line` = its paragraph,
        `placeholder`, `key`, `message`); ValidationError(`file`) when it is no DOCX."""
        return docx_templates.check(docx_templates.decode(docx_b64))

    @rpc
    def template_docx(self, template_id: int) -> dict[str, Any]:
        template = self.db.get(Template, _id(template_id, "template_id"))
        if template is None or template.docx is None:
            raise NotFound(f"template {template_id}", entity="template", id=template_id)
        return {"filename": f"template-{template.id}.docx",
                "content_b64": base64.b64encode(template.docx).decode()}

    @rpc
    def save_template(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        """Create (no `id`) or change a template; refused with the first problem's line
        while the body has unknown placeholders or a syntax error."""
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", field="data", key="object.invalid")
        if data.get("id"):
            template = self.db.get(Template, _id(data["id"], "id"), with_for_update=True)
            if template is None:
                raise NotFound(f"template {data['id']}", entity="template", id=data["id"])
        else:
            template = Template(version=0)
            self.db.add(template)
        template.kind = domain.kind_of(data.get("kind", template.kind))
        template.name = _text(data, "name", 200, required=True) or ""
        fmt = data.get("format", template.format or "html")
        if fmt not in ("html", "docx"):
            raise ValidationError("Формат шаблона: html или docx.", field="format",
                                  key="template.format", params={"value": str(fmt)})
        if fmt != (template.format or fmt) and not (fmt == "docx" and data.get("docx_b64")):
            raise ValidationError("Формат шаблона не меняется.", field="format",
                                  key="template.format", params={"value": str(fmt)})
        template.format = fmt
        if fmt == "docx":
            # a new upload replaces the file; without one the checked file stays
            if data.get("docx_b64") or template.docx is None:
                blob = docx_templates.decode(data.get("docx_b64"))
                docx_templates.ensure_valid(blob)
                template.docx = blob
                template.body = docx_templates.text(blob)
        else:
            body = data.get("body", template.body)
            if not isinstance(body, str) or not body.strip():
                raise ValidationError("Шаблон пуст.", field="body", key="required")
            templating.ensure_valid(body)
            template.body = body
        deal_type = data.get("deal_type_id")
        template.deal_type_id = _id(deal_type, "deal_type_id") if deal_type else None
        template.active = bool(data.get("active", True))
        template.version = (template.version or 0) + 1
        template.updated_by = user_id
        template.updated_at = self._now()
        self.db.flush()
        return template_dict(template)

    # -- our company ------------------------------------------------------------------------
    def _company(self) -> dict[str, Any]:
        row = self.db.get(Company, 1)
        data = dict(row.data) if row else {}
        return {key: data.get(key) for key in COMPANY_FIELDS}

    @rpc
    def get_company(self) -> dict[str, Any]:
        return self._company()

    @rpc
    def save_company(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", field="data", key="object.invalid")
        unknown = sorted(set(data) - set(COMPANY_FIELDS))
        if unknown:
            raise ValidationError("Неизвестное поле.", field=unknown[0], key="field.unknown")
        cleaned = {key: _text(data, key, 500) for key in COMPANY_FIELDS if key != "vat_rate"}
        rate = domain.vat_rate(data.get("vat_rate"))
        cleaned["vat_rate"] = None if rate is None else str(rate.normalize())
        for key, digits in (("inn", (10, 12)), ("kpp", (9,)), ("bik", (9,)),
                            ("settlement_account", (20,)), ("correspondent_account", (20,))):
            value = cleaned.get(key)
            if value and not (value.isdigit() and len(value) in digits):
                raise ValidationError(f"Должно быть {' или '.join(map(str, digits))} цифр.",
                                      field=key, key=f"{key}.digits",
                                      params={"digits": list(digits)})
        row = self.db.get(Company, 1, with_for_update=True) or Company(id=1)
        row.data, row.updated_by, row.updated_at = cleaned, user_id, self._now()
        self.db.add(row)
        return self._company()

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
                   "phone": _first(main.get("phones")), "email": _first(main.get("emails"))}
        calculation = page.get("calculation") or {}
        lines = domain.table_lines(calculation.get("lines") or [])
        return {"deal": {"id": page["id"], "name": page.get("name"),
                         "amount": page.get("amount"), "currency": page.get("currency"),
                         "manager_name": None},
                "client": client_data, "contact": contact, "lines": lines,
                "manager_id": page.get("manager_id"), "client_id": page.get("client_id")}

    def _next_number(self, kind: str, year: int) -> int:
        self.db.execute(insert(Counter).values(kind=kind, year=year, last=0)
                        .on_conflict_do_nothing())
        counter = self.db.scalars(select(Counter).where(Counter.kind == kind,
                                                        Counter.year == year)
                                  .with_for_update()).one()
        counter.last += 1
        return counter.last

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
            wanted = _id(chosen, "planned_payment_id")
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
        deal_id = _id(deal_id, "deal_id")
        template = self.db.get(Template, _id(template_id, "template_id"))
        if template is None or not template.active:
            raise ValidationError("Шаблон не найден.", field="template_id",
                                  key="template.not_found")
        facts = self._placeholders(deal_id)
        kind = template.kind
        payment_id = None
        if kind == "invoice":
            payment_id, facts["lines"] = self._invoice_payment(deal_id, planned_payment_id,
                                                               facts["lines"])
        company = self._company()
        rate = domain.vat_rate(company.get("vat_rate"))
        totals = domain.totals([line["amount"] for line in facts["lines"]], rate)
        today = self._today()
        title_base = domain.KIND_TITLES[kind] if kind != "custom" else template.name
        number = self._next_number(kind, today.year)  # the counter row stays locked
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
    def _document(self, document_id: int, lock: bool = False) -> Document:
        document = self.db.get(Document, _id(document_id, "document_id"),
                               with_for_update=lock)
        if document is None:
            raise NotFound(f"document {document_id}", entity="document", id=document_id)
        return document

    @rpc
    def list_documents(self, deal_id: int) -> list[dict[str, Any]]:
        now = self._now()
        return [document_dict(d, now) for d in self.db.scalars(
            select(Document).where(Document.deal_id == _id(deal_id, "deal_id"))
            .order_by(Document.id.desc()))]

    @rpc
    def deal_documents(self, deal_id: int) -> dict[str, Any]:
        """The deal page's panel: its documents, questionnaires and their templates."""
        return {"documents": self.list_documents(deal_id), "templates": self.list_templates(),
                "questionnaires": self.list_questionnaires(deal_id),
                "questionnaire_templates": self.list_questionnaire_templates()}

    @rpc
    def get_document(self, document_id: int) -> dict[str, Any]:
        document = self._document(document_id)
        actions = self.db.scalars(select(LinkAction).where(
            LinkAction.document_id == document.id).order_by(LinkAction.id))
        return {**document_dict(document, self._now()),
                "actions": [{"action": a.action, "ip": a.ip, "user_agent": a.user_agent,
                             "comment": a.comment, "at": a.at} for a in actions]}

    @rpc
    def document_pdf(self, document_id: int) -> dict[str, Any]:
        return _file(self._document(document_id), "pdf")

    @rpc
    def document_docx(self, document_id: int) -> dict[str, Any]:
        """The DOCX of a document made from a DOCX template (NotFound for HTML ones)."""
        return _file(self._document(document_id), "docx")

    @rpc
    def set_link_expiry(self, document_id: int, expires_at: str | None,
                        user_id: int | None = None) -> dict[str, Any]:
        """A new expiry (ISO date or datetime; null: never) — it also lifts a revocation."""
        document = self._document(document_id, lock=True)
        if expires_at in (None, ""):
            document.expires_at = None
        else:
            try:
                moment = datetime.fromisoformat(str(expires_at))
            except ValueError:
                raise ValidationError("Неверная дата.", field="expires_at",
                                      key="date.invalid",
                                      params={"value": str(expires_at)}) from None
            if moment.tzinfo is None:  # a date: the end of that day where the business is
                tz = clock.business_zone(self.config)
                moment = (moment.replace(tzinfo=tz) + timedelta(days=1)
                          if len(str(expires_at)) <= 10 else moment.replace(tzinfo=tz))
            if moment <= self._now():
                raise ValidationError("Срок должен быть в будущем.", field="expires_at",
                                      key="expires_at.past")
            document.expires_at = moment
        document.revoked_at = None
        return document_dict(document, self._now())

    @rpc
    def revoke_link(self, document_id: int, user_id: int | None = None) -> dict[str, Any]:
        document = self._document(document_id, lock=True)
        if document.revoked_at is None:
            document.revoked_at = self._now()
        return document_dict(document, self._now())

    # -- the client's link --------------------------------------------------------------------
    def _by_token(self, token: str, lock: bool = False) -> Document:
        if not isinstance(token, str) or not 20 <= len(token) <= 64:
            raise NotFound("no such link", entity="link")
        stmt = select(Document).where(Document.token == token)
        document = self.db.scalars(stmt.with_for_update() if lock else stmt).first()
        if document is None:
            raise NotFound("no such link", entity="link")
        return document

    def _active(self, token: str) -> Document:
        document = self._by_token(token, lock=True)
        state = domain.link_state(document.revoked_at, document.expires_at, self._now())
        if state != "active":
            raise Conflict("Ссылка больше не действует.", field="token", key=f"link.{state}",
                           params={"state": state})
        return document

    def _record(self, document: Document, action: str, client: dict[str, Any] | None,
                comment: str | None = None) -> None:
        client = client or {}
        self.db.add(LinkAction(document_id=document.id, action=action,
                               ip=str(client.get("ip") or "")[:64] or None,
                               user_agent=str(client.get("user_agent") or "")[:500] or None,
                               comment=comment))

    def _public(self, document: Document, state: str) -> dict[str, Any]:
        out: dict[str, Any] = {"state": state, "kind": document.kind, "title": document.title,
               "manager_id": document.manager_id, "deal_name": document.deal_name}
        if state == "active":
            out.update(status=document.status, html=document.html,
                       has_pdf=document.pdf is not None, has_docx=document.docx is not None,
                       amount=document.amount, currency=document.currency,
                       decline_comment=document.decline_comment,
                       signed=document.signature is not None,
                       signed_at=(document.signature or {}).get("signed_at"),
                       can_sign=bool(document.contact.get("email")
                                     or document.contact.get("phone")),
                       contact_name=document.contact.get("name"),
                       paid=document.paid_at is not None,
                       can_pay_online=(document.kind == "invoice"
                                       and document.planned_payment_id is not None
                                       and document.paid_at is None))
        return out

    @rpc
    def open_link(self, token: str, client: dict[str, Any] | None = None) -> dict[str, Any]:
        """The client opens the link: every view is recorded and published. An expired or
        revoked link answers its state only; an unknown token is NotFound."""
        document = self._by_token(token, lock=True)
        state = domain.link_state(document.revoked_at, document.expires_at, self._now())
        if state == "active":
            document.views += 1
            if document.status == "new":
                document.status = "viewed"
            self._record(document, "viewed", client)
            self.db.flush()
            self.db.emit("document_viewed", {**event_facts(document), "views": document.views,
                                             "first": document.views == 1})
        return self._public(document, state)

    @rpc
    def peek_link(self, token: str) -> dict[str, Any]:
        """The link's page without counting a view (after a refused action)."""
        document = self._by_token(token)
        return self._public(document, domain.link_state(document.revoked_at,
                                                        document.expires_at, self._now()))

    @rpc
    def link_pdf(self, token: str) -> dict[str, Any]:
        return _file(self._linked(token), "pdf")

    @rpc
    def link_docx(self, token: str) -> dict[str, Any]:
        return _file(self._linked(token), "docx")

    def _linked(self, token: str) -> Document:
        document = self._by_token(token)
        state = domain.link_state(document.revoked_at, document.expires_at, self._now())
        if state != "active":
            raise Conflict("Ссылка больше не действует.", field="token", key=f"link.{state}")
        return document

    def _decide(self, document: Document, status: str) -> None:
        if document.status in ("approved", "declined", "signed"):
            raise Conflict("Решение по документу уже принято.", field="token",
                           key="document.decided", params={"status": document.status})
        document.status, document.decided_at = status, self._now()

    @rpc
    def approve(self, token: str, client: dict[str, Any] | None = None) -> dict[str, Any]:
        document = self._active(token)
        self._decide(document, "approved")
        self._record(document, "approved", client)
        self.db.emit("document_approved", event_facts(document))
        return self._public(document, "active")

    @rpc
    def decline(self, token: str, comment: str,
                client: dict[str, Any] | None = None) -> dict[str, Any]:
        text = _text({"comment": comment}, "comment", 2000, required=True)
        document = self._active(token)
        self._decide(document, "declined")
        document.decline_comment = text
        self._record(document, "declined", client, text)
        self.db.emit("document_declined", {**event_facts(document), "comment": text})
        return self._public(document, "active")

    @rpc
    def request_sign_code(self, token: str,
                          client: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a one-time code to the document's contact (e-mail first, else SMS) through
        notifications; only its salted hash is kept. Answers where it went, masked."""
        document = self._active(token)
        if document.signature is not None:
            raise Conflict("Документ уже подписан.", field="token", key="document.signed")
        contact = document.contact or {}
        channel, address = (("email", contact.get("email")) if contact.get("email")
                            else ("sms", contact.get("phone")))
        if not address or not contact.get("contact_id") or not document.client_id:
            raise ValidationError("У контакта нет e-mail или телефона для кода подписи.",
                                  field="contact", key="sign.no_address")
        code, salt = domain.new_code(), secrets.token_hex(8)
        now = self._now()
        for old in self.db.scalars(select(SignatureCode).where(
                SignatureCode.document_id == document.id, SignatureCode.used_at.is_(None))):
            old.used_at = now  # one live code at a time
        row = SignatureCode(document_id=document.id, code_hash=domain.code_hash(code, salt),
                            salt=salt, channel=channel, address=address, attempts=0,
                            expires_at=now + domain.CODE_TTL)
        self.db.add(row)
        self.db.flush()
        self.notifications.send_to_contact(
            document.manager_id or document.created_by or 0, document.client_id,
            contact["contact_id"], channel, address, f"Код подписи: {document.title}",
            f"Код для подписания документа «{document.title}»: {code}. "
            f"Код действует 10 минут. Никому его не сообщайте.",
            request_id=f"sign-code:{row.id}")
        self._record(document, "code_sent", client, channel)
        masked = address[:2] + "***" + address[-4:] if len(address) > 6 else "***"
        return {"channel": channel, "address": masked}

    @rpc
    def sign(self, token: str, code: str, client: dict[str, Any] | None = None
             ) -> dict[str, Any]:
        """Sign with the one-time code: who, when, IP, browser and the SHA-256 of the exact
        PDF are recorded; the PDF is frozen from then on."""
        document = self._active(token)
        if document.signature is not None:
            raise Conflict("Документ уже подписан.", field="token", key="document.signed")
        now = self._now()
        row = self.db.scalars(select(SignatureCode).where(
            SignatureCode.document_id == document.id, SignatureCode.used_at.is_(None))
            .order_by(SignatureCode.id.desc()).with_for_update()).first()
        if row is None or row.expires_at <= now or row.attempts >= domain.CODE_ATTEMPTS:
            raise ValidationError("Код устарел: запросите новый.", field="code",
                                  key="sign.code_expired")
        if not domain.code_matches(str(code or ""), row.salt, row.code_hash):
            row.attempts += 1
            self.db.commit()  # a wrong try counts even though this call fails
            raise ValidationError("Неверный код.", field="code", key="sign.code_wrong",
                                  params={"left": domain.CODE_ATTEMPTS - row.attempts})
        row.used_at = now
        client = client or {}
        document.signature = {"signer": document.contact.get("name"),
                              "contact_id": document.contact.get("contact_id"),
                              "channel": row.channel, "address": row.address,
                              "signed_at": now.isoformat(), "ip": client.get("ip"),
                              "user_agent": str(client.get("user_agent") or "")[:500],
                              "sha256": document.pdf_sha256}
        document.signed_sha256 = document.pdf_sha256
        document.status, document.decided_at = "signed", now
        self._record(document, "signed", client)
        self.db.emit("document_signed", {**event_facts(document),
                                         "sha256": document.pdf_sha256,
                                         "signer": document.contact.get("name")})
        return self._public(document, "active")

    # -- invoices paid (P6) ---------------------------------------------------------------------
    @rpc
    def pay_online(self, token: str, return_url: str) -> dict[str, Any]:
        """Start the online payment of an invoice at the provider (through payments, which
        holds the provider's credentials); answers the URL to send the client to.  Clicks
        on one day reuse one provider payment (the idempotence key)."""
        document = self._active(token)
        if document.kind != "invoice" or document.planned_payment_id is None:
            raise ValidationError("Этот документ нельзя оплатить онлайн.", field="token",
                                  key="invoice.not_payable")
        if document.paid_at is not None:
            raise Conflict("Счёт уже оплачен.", field="token", key="invoice.paid")
        started = self.payments.start_online_payment(document.planned_payment_id, {
            "return_url": return_url, "description": document.title,
            "idempotence_key": f"document-{document.id}-{self._today().isoformat()}"})
        document.online_payment = {"provider_payment_id": started["provider_payment_id"],
                                   "started_at": self._now().isoformat()}
        return {"confirmation_url": started["confirmation_url"]}

    @consumes("payments", "payment_received")
    def on_payment_received(self, event: Envelope) -> None:
        """A receipt for an invoice's planned payment pays the invoice (once its amount is
        covered); the inbox makes a repeated event change nothing."""
        data = event.data
        invoices = self.db.scalars(select(Document).where(
            Document.kind == "invoice",
            Document.planned_payment_id == int(data["payment_id"]),
            Document.paid_at.is_(None)).with_for_update()).all()
        for invoice in invoices:
            invoice.paid_amount = (invoice.paid_amount or Decimal("0")) + parse_money(
                str(data["amount"]))
            if invoice.paid_amount >= (invoice.amount or Decimal("0")):
                invoice.paid_at, invoice.status = self._now(), "paid"
                self.db.flush()
                self.db.emit("document_paid", {**event_facts(invoice),
                                               "receipt_id": data.get("receipt_id"),
                                               "amount": data.get("amount")})

    # -- questionnaires (G3) ----------------------------------------------------------------
    @rpc
    def list_questionnaire_templates(self, include_inactive: bool = False
                                     ) -> list[dict[str, Any]]:
        stmt = select(QuestionnaireTemplate).order_by(QuestionnaireTemplate.name)
        if not include_inactive:
            stmt = stmt.where(QuestionnaireTemplate.active)
        return [questionnaire_template_dict(t) for t in self.db.scalars(stmt)]

    @rpc
    def get_questionnaire_template(self, template_id: int) -> dict[str, Any]:
        found = self.db.get(QuestionnaireTemplate, _id(template_id, "template_id"))
        if found is None:
            raise NotFound(f"questionnaire template {template_id}", entity="template")
        return questionnaire_template_dict(found)

    @rpc
    def save_questionnaire_template(self, data: dict[str, Any],
                                    user_id: int | None = None) -> dict[str, Any]:
        """Create (no `id`) or change a questionnaire template: `name`, `fields`, `active`."""
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", field="data", key="object.invalid")
        if data.get("id"):
            found = self.db.get(QuestionnaireTemplate, _id(data["id"], "id"),
                                with_for_update=True)
            if found is None:
                raise NotFound(f"questionnaire template {data['id']}", entity="template")
        else:
            found = QuestionnaireTemplate(version=0)
            self.db.add(found)
        found.name = _text(data, "name", 200, required=True) or ""
        found.fields = questionnaires.clean_fields(data.get("fields"))
        found.active = bool(data.get("active", True))
        found.version = (found.version or 0) + 1
        found.updated_by, found.updated_at = user_id, self._now()
        self.db.flush()
        return questionnaire_template_dict(found)

    @rpc
    def create_questionnaire(self, deal_id: int, template_id: int,
                             user_id: int | None = None) -> dict[str, Any]:
        """A questionnaire for the deal from a template, with its own link."""
        deal_id = _id(deal_id, "deal_id")
        found = self.db.get(QuestionnaireTemplate, _id(template_id, "template_id"))
        if found is None or not found.active:
            raise ValidationError("Шаблон анкеты не найден.", field="template_id",
                                  key="template.not_found")
        deal = self.deals.get_deal(deal_id)
        made = Questionnaire(template_id=found.id, name=found.name, fields=found.fields,
                             deal_id=deal_id, deal_name=deal.get("name"),
                             client_id=deal.get("client_id"),
                             manager_id=deal.get("manager_id"), token=domain.new_token(),
                             status="new", draft={}, created_by=user_id)
        self.db.add(made)
        self.db.flush()
        return questionnaire_dict(made)

    @rpc
    def list_questionnaires(self, deal_id: int) -> list[dict[str, Any]]:
        return [questionnaire_dict(q) for q in self.db.scalars(
            select(Questionnaire).where(Questionnaire.deal_id == _id(deal_id, "deal_id"))
            .order_by(Questionnaire.id.desc()))]

    def _questionnaire(self, token: str, lock: bool = False) -> Questionnaire:
        if not isinstance(token, str) or not 20 <= len(token) <= 64:
            raise NotFound("no such link", entity="link")
        stmt = select(Questionnaire).where(Questionnaire.token == token)
        found = self.db.scalars(stmt.with_for_update() if lock else stmt).first()
        if found is None:
            raise NotFound("no such link", entity="link")
        return found

    @rpc
    def open_questionnaire(self, token: str) -> dict[str, Any]:
        """The client's page: the questions and the draft, or the answers once sent."""
        found = self._questionnaire(token)
        return {"name": found.name, "fields": found.fields, "status": found.status,
                "draft": found.draft or {}, "answers": found.answers,
                "summary": questionnaires.summary(found.fields, found.answers or {}),
                "manager_id": found.manager_id, "submitted_at": found.submitted_at}

    @rpc
    def save_questionnaire_draft(self, token: str, answers: dict[str, Any]) -> dict[str, Any]:
        """What the client has typed so far (saved as they type: a closed tab loses
        nothing); what is not valid yet is simply not kept."""
        found = self._questionnaire(token, lock=True)
        if found.status == "submitted":
            raise Conflict("Анкета уже отправлена.", field="token", key="questionnaire.sent")
        found.draft = questionnaires.clean_answers(found.fields, answers, final=False)
        found.status, found.draft_saved_at = "draft", self._now()
        return {"saved_at": found.draft_saved_at}

    @rpc
    def submit_questionnaire(self, token: str, answers: dict[str, Any]) -> dict[str, Any]:
        """The answers, checked against every question; stored on the deal's questionnaire
        and published (deals' feed, the manager's notice).  Read-only afterwards."""
        found = self._questionnaire(token, lock=True)
        if found.status == "submitted":
            raise Conflict("Анкета уже отправлена.", field="token", key="questionnaire.sent")
        found.answers = questionnaires.clean_answers(found.fields, answers, final=True)
        found.status, found.submitted_at, found.draft = "submitted", self._now(), {}
        self.db.flush()
        self.db.emit("questionnaire_filled", {
            "questionnaire_id": found.id, "deal_id": found.deal_id,
            "deal_name": found.deal_name, "client_id": found.client_id,
            "manager_id": found.manager_id, "name": found.name, "title": found.name,
            "answers": questionnaires.summary(found.fields, found.answers)})
        return questionnaire_dict(found)

    @rpc
    def questionnaire_file(self, questionnaire_id: int | None = None,
                           token: str | None = None, key: str = "") -> dict[str, Any]:
        """The metadata of a file answer, only through its questionnaire (by id for the
        manager, by token for the client)."""
        found = (self._questionnaire(token) if token else
                 self.db.get(Questionnaire, _id(questionnaire_id, "questionnaire_id")))
        if found is None:
            raise NotFound("no such questionnaire", entity="questionnaire")
        for value in list((found.answers or {}).values()) + list((found.draft or {}).values()):
            if isinstance(value, dict) and value.get("key") == key:
                return value
        raise NotFound("no such file", entity="file")
