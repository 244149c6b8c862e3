"""Entrypoints of the client's link to a document: its expiry and revocation (the
manager's), and what the client does through it: opening, approving, declining, signing
with a one-time code and paying an invoice online."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from services.documents import domain, store
from services.documents.models import Document, SignatureCode
from services.documents.schemas import document_dict, event_facts, file_dict, public_dict
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, ValidationError


class LinksEntrypoints:
    db: Any
    config: Any
    notifications: Any
    payments: Any

    # -- the manager's side -----------------------------------------------------------------
    @rpc
    def set_link_expiry(self, document_id: int, expires_at: str | None,
                        user_id: int | None = None) -> dict[str, Any]:
        """A new expiry (ISO date or datetime; null: never) — it also lifts a revocation."""
        document = store.document(self.db, document_id, lock=True)
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
            if moment <= clock.now():
                raise ValidationError("Срок должен быть в будущем.", field="expires_at",
                                      key="expires_at.past")
            document.expires_at = moment
        document.revoked_at = None
        return document_dict(document, clock.now())

    @rpc
    def revoke_link(self, document_id: int, user_id: int | None = None) -> dict[str, Any]:
        document = store.document(self.db, document_id, lock=True)
        if document.revoked_at is None:
            document.revoked_at = clock.now()
        return document_dict(document, clock.now())

    # -- the client's side ------------------------------------------------------------------
    def _active(self, token: str) -> Document:
        """The link's document, locked, while the link is active; Conflict with its state
        (expired, revoked) once it is not."""
        document = store.by_token(self.db, token, lock=True)
        state = domain.link_state(document.revoked_at, document.expires_at, clock.now())
        if state != "active":
            raise Conflict("Ссылка больше не действует.", field="token", key=f"link.{state}",
                           params={"state": state})
        return document

    def _linked(self, token: str) -> Document:
        document = store.by_token(self.db, token)
        state = domain.link_state(document.revoked_at, document.expires_at, clock.now())
        if state != "active":
            raise Conflict("Ссылка больше не действует.", field="token", key=f"link.{state}")
        return document

    @rpc
    def open_link(self, token: str, client: dict[str, Any] | None = None) -> dict[str, Any]:
        """The client opens the link: every view is recorded and published. An expired or
        revoked link answers its state only; an unknown token is NotFound."""
        document = store.by_token(self.db, token, lock=True)
        state = domain.link_state(document.revoked_at, document.expires_at, clock.now())
        if state == "active":
            document.views += 1
            if document.status == "new":
                document.status = "viewed"
            store.record(self.db, document, "viewed", client)
            self.db.flush()
            self.db.emit("document_viewed", {**event_facts(document), "views": document.views,
                                             "first": document.views == 1})
        return public_dict(document, state)

    @rpc
    def peek_link(self, token: str) -> dict[str, Any]:
        """The link's page without counting a view (after a refused action)."""
        document = store.by_token(self.db, token)
        return public_dict(document, domain.link_state(document.revoked_at,
                                                       document.expires_at, clock.now()))

    @rpc
    def link_pdf(self, token: str) -> dict[str, Any]:
        return file_dict(self._linked(token), "pdf")

    @rpc
    def link_docx(self, token: str) -> dict[str, Any]:
        return file_dict(self._linked(token), "docx")

    @rpc
    def approve(self, token: str, client: dict[str, Any] | None = None) -> dict[str, Any]:
        document = self._active(token)
        domain.decide(document, "approved", clock.now())
        store.record(self.db, document, "approved", client)
        self.db.emit("document_approved", event_facts(document))
        return public_dict(document, "active")

    @rpc
    def decline(self, token: str, comment: str,
                client: dict[str, Any] | None = None) -> dict[str, Any]:
        text = domain.text({"comment": comment}, "comment", 2000, required=True)
        document = self._active(token)
        domain.decide(document, "declined", clock.now())
        document.decline_comment = text
        store.record(self.db, document, "declined", client, text)
        self.db.emit("document_declined", {**event_facts(document), "comment": text})
        return public_dict(document, "active")

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
        now = clock.now()
        for old in store.live_codes(self.db, document.id):
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
        store.record(self.db, document, "code_sent", client, channel)
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
        now = clock.now()
        row = store.latest_live_code(self.db, document.id)
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
        store.record(self.db, document, "signed", client)
        self.db.emit("document_signed", {**event_facts(document),
                                         "sha256": document.pdf_sha256,
                                         "signer": document.contact.get("name")})
        return public_dict(document, "active")

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
        today = clock.business_today(self.config)
        started = self.payments.start_online_payment(document.planned_payment_id, {
            "return_url": return_url, "description": document.title,
            "idempotence_key": f"document-{document.id}-{today.isoformat()}"})
        document.online_payment = {"provider_payment_id": started["provider_payment_id"],
                                   "started_at": clock.now().isoformat()}
        return {"confirmation_url": started["confirmation_url"]}
