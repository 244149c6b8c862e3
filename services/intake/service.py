"""Intake service: the one inbox of new enquiries ("Неразобранное") — website forms, the
lead API, e-mail, unknown calls — and the three ways out of it (accept, attach, reject).
See docs/decisions/0009-lead-intake.md."""
from __future__ import annotations

import hmac
import io
import logging
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nh3
from itsdangerous import BadSignature, URLSafeTimedSerializer
from nameko.dependency_providers import Config
from sqlalchemy import case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from gateway.feed import files_dir, max_file_bytes, remove_stored, store
from services.intake import domain, models
from services.intake.imap import (
    Account,
    ImapError,
    MailboxCipher,
    close,
    fetch_raw,
    folder_state,
    mark_done,
    message_size,
    open_mailbox,
)
from services.intake.mail import MalformedMail, parse
from services.intake.models import (
    ApiKey,
    ConsentVersion,
    Form,
    Lead,
    Mailbox,
    MailboxMessage,
    MailThread,
    RateCounter,
    Setting,
)
from services.intake.schemas import (
    form_dict,
    key_dict,
    lead_dict,
    mailbox_dict,
    public_form_dict,
)
from services.kit import clock
from services.kit.config import ROOT
from services.kit.dependencies import CallLog, Remote, UnitOfWork
from services.kit.entrypoints import consumes, rpc
from services.kit.envelope import Envelope
from services.kit.errors import (
    Conflict,
    CrmError,
    Forbidden,
    NotFound,
    RemoteTimeout,
    ServiceUnavailable,
    ValidationError,
)
from services.kit.service import HealthCheck
from services.kit.timer import every

log = logging.getLogger("crm.intake")
TRANSIENT = (RemoteTimeout, ServiceUnavailable)
MAX_ACCEPT_ATTEMPTS = 20  # then the lead stays "accepting" with its error, for a person
LEASE = timedelta(seconds=60)  # longer than the steps of one accept can take


def _leased(lead: Lead) -> bool:
    until = (lead.accept_plan or {}).get("lease_until")
    return bool(until) and datetime.fromisoformat(str(until)) > clock.now()


def _now() -> datetime:
    return clock.now()


def _id(value: Any, field: str) -> int:
    number = None
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or number <= 0:
        raise ValidationError(f"{field}: ожидался идентификатор.", field=field,
                              key="id.invalid", params={"value": str(value)[:50]})
    return number


class IntakeService(HealthCheck):
    name = "intake"

    db = UnitOfWork(models.metadata)
    calls = CallLog()
    config = Config()
    clients = Remote("clients")
    deals = Remote("deals")
    telephony = Remote("telephony")
    notifications = Remote("notifications")

    # -- settings -----------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        row = self.db.get(Setting, "inbox")
        return {**domain.DEFAULT_SETTINGS, **(row.value if row else {})}

    @rpc
    def get_settings(self) -> dict[str, Any]:
        return self._settings()

    @rpc
    def set_settings(self, changes: dict[str, Any], user_id: int | None = None
                     ) -> dict[str, Any]:
        merged = domain.clean_settings(self._settings(), changes)
        self.db.execute(insert(Setting).values(key="inbox", value=merged)
                        .on_conflict_do_update(index_elements=["key"], set_={"value": merged}))
        log.info("inbox settings changed by %s: %s", user_id, sorted(changes))
        return merged

    # -- making a lead ------------------------------------------------------------------
    def _hits(self, keys: list[str], seconds: int, start: datetime | None = None
              ) -> dict[str, int]:
        """Count one hit per key in the current window; the counts so far.  A counter
        row is shared by every submission of a form, so its lock must be held as briefly
        as possible: one autocommit statement (the server takes and frees the lock inside
        it, never across a round trip to us, as an explicit BEGIN … COMMIT would), its
        commit not waiting for the disk (synchronous_commit off for that statement only:
        a crash may forget a few hits, harmless for a rate limit)."""
        start = start or domain.window_start(_now(), seconds)
        statement = (insert(RateCounter)
                     .values([{"key": k[:400], "window_start": start, "hits": 1}
                              for k in sorted(set(keys))])
                     .on_conflict_do_update(index_elements=["key", "window_start"],
                                            set_={"hits": RateCounter.hits + 1})
                     .returning(RateCounter.key, RateCounter.hits))
        with self.db.provider.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("SET synchronous_commit = off"))
            try:
                rows = conn.execute(statement).all()
            finally:
                conn.execute(text("RESET synchronous_commit"))  # the pooled session's own
        return {key: int(hits) for key, hits in rows}

    def _make(self, source: str, details: dict[str, Any], *, source_ref: str = "",
              source_name: str = "", external_id: str | None = None,
              candidates: list[int] | None = None, hidden_reason: str | None = None,
              settings: dict[str, Any] | None = None, **extra: Any) -> tuple[Lead, bool]:
        """Store a lead (once per source's own id); a visible one is assigned, its clock
        started and ``lead_received`` published.  (lead, created)."""
        values = {k: details.get(k) or "" for k in domain.LEAD_FIELDS}
        values["phone_e164"] = details.get("phone_e164")
        row = self.db.execute(insert(Lead).values(
            source=source, source_ref=source_ref, source_name=source_name[:200],
            external_id=external_id, **values, **extra,
            hidden=hidden_reason is not None,
            status="spam" if hidden_reason else "new", reject_reason=hidden_reason)
            .on_conflict_do_nothing().returning(Lead.id)).first()
        if row is None:
            earlier = self.db.scalars(select(Lead).where(
                Lead.source == source, Lead.source_ref == source_ref,
                Lead.external_id == external_id)).one()
            return earlier, False
        lead = self.db.get(Lead, row[0])
        if hidden_reason:
            return lead, True
        settings = settings or self._settings()
        # Round robin without a shared cursor: lead ids are sequential, so the id picks
        # the next person and concurrent submissions never wait on one another.
        pool = candidates or settings["duty_user_ids"]
        lead.assignee_id = pool[lead.id % len(pool)] if pool else None
        lead.respond_by = domain.respond_by(lead.received_at or _now(),
                                            settings["response_minutes"])
        self.db.flush()
        self.db.emit("lead_received", {
            "lead_id": lead.id, "source": source, "source_name": lead_dict(lead)["source_name"],
            "who": domain.who(values), "assignee_id": lead.assignee_id,
            "respond_by": lead.respond_by})
        return lead, True

    # -- website forms --------------------------------------------------------------------
    @property
    def _signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(str(self.config.get("INTAKE_SECRET") or "dev-intake"),
                                      salt="intake.form")

    def _form(self, form_id: Any) -> Form:
        form = self.db.get(Form, _id(form_id, "form_id"))
        if form is None:
            raise NotFound(f"form {form_id} not found", entity="form", id=form_id)
        return form

    def _public(self, public_id: Any) -> Form:
        form = self.db.scalars(select(Form).where(Form.public_id == str(public_id)[:40],
                                                  Form.active)).first()
        if form is None:
            raise NotFound("Форма не найдена.", entity="form", id=public_id)
        return form

    @rpc
    def save_form(self, data: dict[str, Any], user_id: int | None = None,
                  form_id: int | None = None) -> dict[str, Any]:
        """Create a form, or change one; a changed consent text is a new version."""
        cleaned = domain.clean_form(data)
        if form_id is None:
            form = Form(public_id=secrets.token_urlsafe(12), created_by=user_id, **cleaned)
            self.db.add(form)
            self.db.flush()
        else:
            form = self._form(form_id)
            changed = cleaned["consent_text"] != form.consent_text
            for key, value in cleaned.items():
                setattr(form, key, value)
            if changed:
                form.consent_version += 1
            form.updated_at = _now()
            self.db.flush()
        self.db.execute(insert(ConsentVersion).values(
            form_id=form.id, version=form.consent_version, text=form.consent_text)
            .on_conflict_do_nothing())
        return form_dict(form)

    @rpc
    def list_forms(self) -> list[dict[str, Any]]:
        return [form_dict(f) for f in self.db.scalars(select(Form).order_by(Form.id))]

    @rpc
    def get_form(self, form_id: int) -> dict[str, Any]:
        return form_dict(self._form(form_id))

    @rpc
    def public_form(self, public_id: str, remote_addr: str | None = None) -> dict[str, Any]:
        """The form for the website's script, with a signed start time (the minimum
        fill time is measured from it), and a captcha question when this address has
        failed too often already (``captcha`` null otherwise)."""
        form = self._public(public_id)
        captcha = None
        if remote_addr is not None and domain.needs_captcha(
                self._count(f"fail:{form.id}:{remote_addr}", domain.CAPTCHA_WINDOW),
                self._settings()["captcha_after"]):
            captcha = self._captcha(form.public_id)
        return {**public_form_dict(form), "token": self._signer.dumps(form.public_id),
                "allowed_origins": list(form.allowed_origins), "captcha": captcha}

    # -- the self-hosted captcha (after repeated failures from one address) --------------
    def _count(self, key: str, seconds: int) -> int:
        """Hits of ``key`` in the current window, without adding one."""
        return int(self.db.scalar(select(RateCounter.hits).where(
            RateCounter.key == key[:400],
            RateCounter.window_start == domain.window_start(_now(), seconds))) or 0)

    def _captcha_digest(self, nonce: str, answer: int) -> str:
        secret = str(self.config.get("INTAKE_SECRET") or "dev-intake").encode()
        return hmac.new(secret, f"captcha:{nonce}:{answer}".encode(), "sha256").hexdigest()

    def _captcha(self, public_id: str) -> dict[str, str]:
        """A question and its signed token; the token holds only a keyed digest of the
        answer (a signed token is readable, so never the answer itself)."""
        question, answer = domain.captcha_question()
        nonce = secrets.token_urlsafe(12)
        token = URLSafeTimedSerializer(str(self.config.get("INTAKE_SECRET") or "dev-intake"),
                                       salt="intake.captcha").dumps(
            {"f": public_id, "n": nonce, "h": self._captcha_digest(nonce, answer)})
        return {"question": question, "token": token}

    def _captcha_solved(self, values: dict[str, Any], public_id: str) -> bool:
        """The right answer to a question this form asked lately, used once only."""
        answer = domain.captcha_answer(values.get("captcha_answer"))
        token = values.get("captcha_token")
        if answer is None or not isinstance(token, str) or not token:
            return False
        try:
            signed, issued = URLSafeTimedSerializer(
                str(self.config.get("INTAKE_SECRET") or "dev-intake"),
                salt="intake.captcha").loads(token, max_age=domain.CAPTCHA_MAX_AGE,
                                             return_timestamp=True)
        except BadSignature:
            return False
        if not isinstance(signed, dict) or signed.get("f") != public_id:
            return False
        nonce = str(signed.get("n") or "")
        if not hmac.compare_digest(str(signed.get("h") or ""),
                                   self._captcha_digest(nonce, answer)):
            return False
        # One question, one submission: a solved token replayed by a bot is refused.  The
        # counter is kept under the token's own issue time, so no window boundary resets it.
        key = f"captcha:{nonce}"
        return self._hits([key], domain.CAPTCHA_MAX_AGE, start=issued)[key] == 1

    def _filled_seconds(self, token: Any, public_id: str) -> float | None:
        if not isinstance(token, str) or not token:
            return None
        try:
            signed_for, issued = self._signer.loads(token, max_age=86400,
                                                    return_timestamp=True)
        except BadSignature:
            return None
        if signed_for != public_id:
            return None
        return (_now() - issued).total_seconds()

    @rpc
    def submit_form(self, public_id: str, values: dict[str, Any],
                    remote_addr: str | None = None) -> dict[str, Any]:
        """A website submission.  A person's mistakes are a ValidationError naming the
        field; a bot's submission (honeypot, too fast, no valid token, over the rate
        limits) answers the same ``{"status": "ok"}`` as a person's, is kept hidden as
        spam and reaches nobody."""
        form = self._public(public_id)
        if not isinstance(values, dict):
            raise ValidationError("Ожидались поля формы.", field="fields", key="form.body")
        settings = self._settings()
        fail_key = f"fail:{form.id}:{remote_addr or '-'}"
        if domain.needs_captcha(self._count(fail_key, domain.CAPTCHA_WINDOW),
                                settings["captcha_after"]) \
                and not self._captcha_solved(values, form.public_id):
            log.info("form %s: captcha asked of %s", form.id, remote_addr)
            raise ValidationError(
                "Ответьте на вопрос под формой: так мы отличаем людей от программ.",
                field="captcha", key="form.captcha",
                params={"captcha": self._captcha(form.public_id),
                        "retry": bool(values.get("captcha_token"))})
        try:
            return self._submit(form, values, settings, remote_addr, fail_key)
        except ValidationError:
            self._hits([fail_key], domain.CAPTCHA_WINDOW)  # a person's mistake counts too
            raise

    def _submit(self, form: Form, values: dict[str, Any], settings: dict[str, Any],
                remote_addr: str | None, fail_key: str) -> dict[str, Any]:
        verdict = domain.judge_submission(values.get("website"),
                                          self._filled_seconds(values.get("token"),
                                                               form.public_id),
                                          form.min_fill_seconds)
        reason = verdict.reason
        if reason is None:
            ip_key, form_key = f"ip:{remote_addr or '-'}", f"form:{form.id}"
            hits = self._hits([ip_key, form_key], 60)
            if hits[ip_key] > settings["form_ip_per_minute"]:
                reason = "ip_rate"
            elif hits[form_key] > settings["form_per_minute"]:
                reason = "form_rate"
        if reason is not None:
            log.info("form %s: bot-like submission from %s (%s)", form.id, remote_addr, reason)
            self._hits([fail_key], domain.CAPTCHA_WINDOW)
            self._make("form", {}, source_ref=str(form.id), source_name=form.name,
                       hidden_reason=reason, remote_addr=remote_addr,
                       extra={"values": {k: str(v)[:500] for k, v in values.items()
                                         if isinstance(v, str)}})
            return {"status": "ok"}
        mapped, extra = domain.map_submission(form.fields, values)
        if values.get("consent") not in (True, "1", "on", "yes", "true"):
            raise ValidationError("Без согласия на обработку персональных данных заявку "
                                  "отправить нельзя.", field="consent", key="form.consent")
        version = values.get("consent_version")
        if str(version) != str(form.consent_version):
            # The page showed another wording: store what was shown, never the current one.
            shown = self.db.get(ConsentVersion, (form.id, int(str(version)))) \
                if str(version or "").isdigit() else None
            if shown is None:
                raise ValidationError("Текст согласия устарел: обновите страницу.",
                                      field="consent", key="form.consent_version")
            consent_version, consent_text = shown.version, shown.text
        else:
            consent_version, consent_text = form.consent_version, form.consent_text
        details = domain.clean_lead(mapped, prefix="fields.")
        marketing = domain.clean_marketing(values)
        self._make("form", details, source_ref=str(form.id), source_name=form.name,
                   candidates=list(form.assignee_ids), remote_addr=remote_addr, extra=extra,
                   settings=settings,
                   consent_version=consent_version, consent_text=consent_text, **marketing)
        return {"status": "ok"}

    # -- the lead API -----------------------------------------------------------------------
    @rpc
    def create_api_key(self, name: str, user_id: int | None = None,
                       assignee_ids: list[int] | None = None) -> dict[str, Any]:
        """A new source key; the key itself is in this answer only."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("Назовите источник ключа.", field="name", key="api_key.name")
        key = domain.new_api_key()
        row = ApiKey(name=name.strip()[:200], prefix=key[:10], digest=domain.key_digest(key),
                     assignee_ids=domain.ids(assignee_ids or [], "assignee_ids"),
                     created_by=user_id)
        self.db.add(row)
        self.db.flush()
        return {**key_dict(row), "key": key}

    @rpc
    def list_api_keys(self) -> list[dict[str, Any]]:
        return [key_dict(k) for k in self.db.scalars(select(ApiKey).order_by(ApiKey.id))]

    @rpc
    def revoke_api_key(self, key_id: int, user_id: int | None = None) -> dict[str, Any]:
        row = self.db.get(ApiKey, _id(key_id, "key_id"), with_for_update=True)
        if row is None:
            raise NotFound(f"API key {key_id} not found", entity="api_key", id=key_id)
        row.revoked_at = row.revoked_at or _now()
        log.info("API key %s (%s) revoked by %s", row.id, row.name, user_id)
        return key_dict(row)

    @rpc
    def submit_api_lead(self, api_key: str, data: dict[str, Any],
                        remote_addr: str | None = None) -> dict[str, Any]:
        """A lead from another program; the same ``external_id`` from the same key is the
        same lead (``created`` false)."""
        if not isinstance(api_key, str) or not api_key:
            raise Forbidden("Нужен ключ источника (заголовок X-Api-Key).", reason="no_key")
        key = self.db.scalars(select(ApiKey).where(
            ApiKey.digest == domain.key_digest(api_key))).first()
        if key is None or key.revoked_at is not None:
            raise Forbidden("Ключ источника неизвестен или отозван.",
                            reason="revoked" if key else "unknown_key")
        details = domain.clean_lead(data)
        external = data.get("external_id")
        if external is not None and (not isinstance(external, str | int)
                                     or not str(external).strip()
                                     or len(str(external)) > domain.LIMITS["external_id"]):
            raise ValidationError("external_id: строка до 200 символов.", field="external_id",
                                  key="lead.external_id")
        key.last_used_at = _now()
        lead, created = self._make(
            "api", details, source_ref=str(key.id), source_name=key.name,
            external_id=str(external).strip() if external is not None else None,
            candidates=list(key.assignee_ids), remote_addr=remote_addr,
            **domain.clean_marketing(data))
        return {**lead_dict(lead), "created": created}

    # -- other producers inside the CRM ---------------------------------------------------
    @rpc
    def record_lead(self, source: str, data: dict[str, Any], external_id: str | None = None,
                    source_name: str = "") -> dict[str, Any]:
        """A lead another service heard of (a questionnaire filled by someone unknown);
        once per ``(source, external_id)``."""
        if source not in ("questionnaire",):
            raise ValidationError("source: only questionnaire comes this way",
                                  field="source", key="lead.source")
        lead, created = self._make(source, domain.clean_lead(data),
                                   source_name=str(source_name or "")[:200],
                                   external_id=str(external_id)[:200] if external_id else None,
                                   **domain.clean_marketing(data))
        return {**lead_dict(lead), "created": created}

    # -- unknown calls ---------------------------------------------------------------------
    def _call_lead(self, call: dict[str, Any]) -> Lead:
        outcome = call.get("outcome") or "answered"
        lead, _ = self._make("call", {"phone": call.get("other_number") or call["other_e164"],
                                      "phone_e164": call["other_e164"],
                                      "message": f"Входящий звонок ({outcome})"},
                             source_ref=str(call.get("provider") or ""),
                             external_id=str(call["id"]), extra={"call_id": call["id"]})
        return lead

    @consumes("telephony", "call_finished")
    def on_call_finished(self, event: Envelope) -> None:
        """An inbound call from a number no contact has becomes an inbox entry."""
        call = event.data
        if call.get("direction") != "inbound" or call.get("contact_id") or \
                not call.get("other_e164"):
            return
        self._call_lead(call)

    @rpc
    def accept_call(self, call_id: int, names: dict[str, Any] | None = None,
                    user_id: int | None = None) -> dict[str, Any]:
        """An unknown caller's call → its inbox entry (made now if it is not there yet)
        accepted: a private-person client with the number, a deal, and the number's
        calls attached.  ``names``: ``client_name``, ``contact_name``, ``deal_name``."""
        call = self.telephony.get_call(_id(call_id, "call_id"))
        if call.get("contact_id"):
            raise Conflict("Звонок уже привязан к клиенту.", entity="call", id=call_id,
                           key="call.already_linked")
        if not call.get("other_e164"):
            raise ValidationError("У звонка нет номера, который можно сохранить.",
                                  field="other_number", key="call.no_number")
        lead = self._call_lead(call)
        self.db.commit()
        accepted = self.accept_lead(lead.id, user_id=user_id, data=names or {})
        plan = self.db.get(Lead, lead.id).accept_plan or {}
        client = self.clients.get_client(accepted["client_id"])
        contact = next((c for c in client.get("contacts") or []
                        if c["id"] == plan.get("contact_id")), None)
        return {"lead": accepted, "client": client, "contact": contact,
                "deal": self.deals.get_deal(accepted["deal_id"]),
                "call": self.telephony.get_call(call["id"])}

    # -- e-mail ------------------------------------------------------------------------------
    @rpc
    def receive_mail(self, mail: dict[str, Any]) -> dict[str, Any]:
        """One parsed inbound message (from the SMTP listener or the IMAP poller):
        into a deal's feed when it answers our correspondence or comes from a contact
        with an open deal; else a lead — unless it is an auto-reply or part of a flood.
        ``{"outcome": feed|lead|duplicate|auto_reply|flood, ...}``."""
        return self._receive_mail(mail)

    def _receive_mail(self, mail: dict[str, Any], assignee_id: int | None = None
                      ) -> dict[str, Any]:
        """``assignee_id``: the manager whose own mailbox it was read from (the lead is
        theirs, not the duty rota's)."""
        message_id = str(mail.get("message_id") or "").strip()[:998]
        sender = str(mail.get("from") or "").strip().lower()[:320]
        if not message_id or "@" not in sender:
            raise ValidationError("Нужны message_id и from.", field="mail", key="mail.headers")
        if self.db.get(MailThread, message_id) is not None or self.db.scalar(
                select(Lead.id).where(Lead.mail_message_id == message_id).limit(1)):
            return {"outcome": "duplicate"}
        if domain.is_auto_reply(mail.get("headers") or {}):
            log.info("auto-reply %s from %s: no lead", message_id, sender)
            return {"outcome": "auto_reply"}
        html = nh3.clean(str(mail.get("html") or "")) if mail.get("html") else ""
        deal_id = self._thread_deal(mail, sender)
        if deal_id is not None:
            self.deals.add_email(deal_id, {
                "message_id": message_id, "direction": "in", "from": sender,
                "to": str(mail.get("to") or ""), "subject": str(mail.get("subject") or ""),
                "text": str(mail.get("text") or ""), "html": html,
                "attachments": mail.get("attachments") or []})
            self.db.add(MailThread(message_id=message_id, deal_id=deal_id, direction="in"))
            return {"outcome": "feed", "deal_id": deal_id}
        settings = self._settings()
        minutes = settings["mail_flood_minutes"]
        hits = self._hits([f"mail:{sender}"], minutes * 60)[f"mail:{sender}"]
        if hits > settings["mail_flood_limit"]:
            if hits == settings["mail_flood_limit"] + 1:
                self.db.emit("mail_flood", {
                    "sender": sender, "limit": settings["mail_flood_limit"],
                    "minutes": minutes, "admin_ids": settings["admin_user_ids"],
                    "window": domain.window_start(_now(), minutes * 60)})
            log.warning("mail flood from %s (%d in %d min): %s not made a lead", sender,
                        hits, minutes, message_id)
            return {"outcome": "flood"}
        subject = str(mail.get("subject") or "").strip()
        text = str(mail.get("text") or "").strip()
        lead, _ = self._make("email", {
            "name": str(mail.get("from_name") or "")[:300], "email": sender,
            "message": (f"{subject}\n\n{text}" if subject else text)[:10_000]},
            source_ref=str(mail.get("mailbox") or "")[:100], external_id=message_id[:200],
            mail_message_id=message_id, attachments=mail.get("attachments") or [],
            candidates=[assignee_id] if assignee_id else None,
            extra={"subject": subject[:500], "html": html[:100_000],
                   "to": str(mail.get("to") or "")[:320]})
        return {"outcome": "lead", "lead_id": lead.id}

    def _thread_deal(self, mail: dict[str, Any], sender: str) -> int | None:
        """The deal a message belongs to: by the Message-IDs it answers first, then by a
        known contact's open deal (the newest)."""
        answered = domain.thread_ids(mail.get("in_reply_to"), mail.get("references"))
        if answered:
            thread = self.db.scalars(select(MailThread).where(
                MailThread.message_id.in_(answered))).all()
            by_id = {t.message_id: t.deal_id for t in thread}
            for mid in answered:
                if mid in by_id:
                    return by_id[mid]
        for match in self.clients.find_matches(email=sender):
            if match.get("contact_id"):
                deals = self.deals.open_deals_for_contact(match["contact_id"])
                if deals:
                    return int(max(deals))
        return None

    @rpc
    def send_email(self, deal_id: int, contact_id: int, subject: str, text: str,
                   user_id: int, request_id: str | None = None) -> dict[str, Any]:
        """A manager's e-mail to one of the deal's contacts, through the notifications
        e-mail channel; its Message-ID is remembered so the reply threads back into this
        deal, and it is on the deal's feed at once (``queued``, then ``sent`` or
        ``failed`` by ``sync_outbound``).  The same ``request_id`` sends once."""
        deal = self.deals.get_deal(_id(deal_id, "deal_id"))
        pid = _id(contact_id, "contact_id")
        contact = next((c for c in deal.get("contacts") or [] if c.get("contact_id") == pid),
                       None)
        if contact is None:
            raise ValidationError("Это не контакт сделки.", field="contact_id",
                                  key="email.contact")
        emails = contact.get("emails") or []
        if isinstance(emails, str):  # the deal keeps its copy as "a@x, b@y"
            emails = [e.strip() for e in emails.split(",") if e.strip()]
        address = next(iter(emails), None)
        if not address:
            raise ValidationError("У контакта нет e-mail.", field="contact_id",
                                  key="email.no_address")
        sent = self.notifications.send_to_contact(
            user_id, deal["client_id"], pid, "email", address, subject, text,
            request_id=request_id)
        message_id = sent.get("message_id")
        if not message_id:
            raise ServiceUnavailable("e-mail: the channel gave no Message-ID", field="channel")
        self.db.execute(insert(MailThread).values(
            message_id=message_id, deal_id=deal["id"], direction="out", status="queued",
            client_message_id=sent["id"], client_id=deal["client_id"])
            .on_conflict_do_nothing())
        self.db.commit()  # the reply must thread back even if the feed line fails now
        line = self._outbound_line(deal["id"], message_id, sent, "queued")
        return {"message": sent, "feed_entry": line}

    def _outbound_line(self, deal_id: int, message_id: str, sent: dict[str, Any],
                       status: str) -> dict[str, Any]:
        return dict(self.deals.add_email(deal_id, {
            "message_id": message_id, "direction": "out", "to": sent.get("address") or "",
            "subject": sent.get("subject") or "", "text": sent.get("text") or "",
            "status": status}, user_id=sent.get("user_id")))

    @every("OUTBOUND_SYNC_SECONDS", 3)
    def sync_outbound(self) -> int:
        """Outbound e-mail still ``queued``: ask notifications how the delivery went and
        mark the feed line ``sent`` or ``failed`` (writing the line if it is missing)."""
        queued = self.db.scalars(select(MailThread).where(
            MailThread.direction == "out", MailThread.status == "queued")
            .order_by(MailThread.created_at).limit(50).with_for_update(skip_locked=True)).all()
        by_client: dict[int, dict[int, dict[str, Any]]] = {}
        for thread in queued:
            if thread.client_id is None:
                continue
            if thread.client_id not in by_client:
                try:
                    by_client[thread.client_id] = {m["id"]: m for m in self.notifications
                                                   .list_client_messages(thread.client_id,
                                                                         limit=200)}
                except CrmError as exc:
                    log.warning("outbound status not known now: %s", exc)
                    break
            sent = by_client[thread.client_id].get(thread.client_message_id or 0)
            if sent is None:
                continue
            status = {"sent": "sent", "failed": "failed", "skipped": "failed"}.get(
                str(sent.get("status")))
            try:
                self._outbound_line(thread.deal_id, thread.message_id, sent, "queued")
                if status is not None:
                    self.deals.set_email_status(thread.deal_id, thread.message_id, status,
                                                sent.get("error"))
                    thread.status = status
            except CrmError as exc:
                log.warning("feed line of %s not updated now: %s", thread.message_id, exc)
        self.db.commit()
        return len(queued)

    # -- the inbox --------------------------------------------------------------------------
    def _lead(self, lead_id: Any, lock: bool = False) -> Lead:
        stmt = select(Lead).where(Lead.id == _id(lead_id, "lead_id"), Lead.hidden.is_(False))
        lead = self.db.scalars(stmt.with_for_update() if lock else stmt).first()
        if lead is None:
            raise NotFound(f"lead {lead_id} not found", entity="lead", id=lead_id)
        return lead

    @rpc
    def list_leads(self, status: str | None = "new", limit: int = 50, offset: int = 0,
                   assignee_id: int | None = None) -> dict[str, Any]:
        """The inbox, newest first; bots' submissions are never listed."""
        stmt = select(Lead).where(Lead.hidden.is_(False))
        if status == "open":
            stmt = stmt.where(Lead.status.in_(domain.OPEN_STATUSES))
        elif status:
            if status not in domain.STATUSES:
                raise ValidationError(f"status: one of {', '.join(domain.STATUSES)}",
                                      field="status", key="lead.status")
            stmt = stmt.where(Lead.status == status)
        if assignee_id is not None:
            stmt = stmt.where(Lead.assignee_id == int(assignee_id))
        total = self.db.scalar(select(func.count()).select_from(stmt.subquery()))
        items = self.db.scalars(stmt.order_by(Lead.id.desc())
                                .limit(max(1, min(int(limit), 200))).offset(max(0, int(offset))))
        return {"total": int(total or 0), "items": [lead_dict(x) for x in items]}

    @rpc
    def count_open(self) -> int:
        """For the menu: entries waiting for someone."""
        return int(self.db.scalar(select(func.count()).select_from(Lead).where(
            Lead.hidden.is_(False), Lead.status.in_(domain.OPEN_STATUSES))) or 0)

    @rpc
    def get_lead(self, lead_id: int) -> dict[str, Any]:
        lead = self._lead(lead_id)
        if lead.duplicates is None and lead.status == "new":
            self._find_duplicates(lead)
        return lead_dict(lead)

    def _find_duplicates(self, lead: Lead) -> bool:
        try:
            lead.duplicates = self.clients.find_matches(
                phone=lead.phone_e164 or lead.phone or None, email=lead.email or None,
                inn=lead.inn or None)
        except CrmError as exc:
            log.warning("duplicates of lead %s not found now: %s", lead.id, exc)
            return False
        return True

    @every("DUPLICATES_TICK_SECONDS", 2)
    def fill_duplicates(self) -> int:
        """Duplicates are looked up after the lead is stored, so a submission never
        waits on the clients service."""
        pending = self.db.scalars(select(Lead).where(
            Lead.duplicates.is_(None), Lead.status == "new", Lead.hidden.is_(False))
            .order_by(Lead.id).limit(50).with_for_update(skip_locked=True)).all()
        for lead in pending:
            if not self._find_duplicates(lead):
                break
        self.db.commit()
        return len(pending)

    # -- actions ------------------------------------------------------------------------------
    def _decided(self, lead: Lead, status: str, user_id: int | None) -> None:
        lead.status = status
        lead.decided_by = lead.decided_by or user_id
        lead.decided_at = _now()

    @rpc
    def reject_lead(self, lead_id: int, user_id: int | None = None,
                    reason: str = "spam") -> dict[str, Any]:
        lead = self._lead(lead_id, lock=True)
        status = "spam" if reason == "spam" else "rejected"
        if lead.status == status:
            return lead_dict(lead)
        if lead.status != "new":
            raise Conflict(f"Заявка №{lead.id} уже разобрана ({lead.status}).",
                           entity="lead", id=lead.id, key="lead.decided")
        self._decided(lead, status, user_id)
        lead.reject_reason = str(reason or "")[:200]
        self.db.flush()
        self.db.emit("lead_rejected", {"lead_id": lead.id, "reason": lead.reject_reason,
                                       "user_id": user_id})
        return lead_dict(lead)

    def _feed_line(self, lead: Lead, deal_id: int) -> None:
        """The lead's message on the deal's feed: an e-mail as an e-mail line, anything
        else as a lead line; both keyed, so a retry writes nothing twice."""
        if lead.source == "email" and lead.mail_message_id:
            self.deals.add_email(deal_id, {
                "message_id": lead.mail_message_id, "direction": "in", "from": lead.email,
                "to": (lead.extra or {}).get("to", ""), "subject":
                (lead.extra or {}).get("subject", ""), "text": lead.message,
                "html": (lead.extra or {}).get("html", ""), "attachments": lead.attachments})
            self.db.execute(insert(MailThread).values(
                message_id=lead.mail_message_id, deal_id=deal_id, direction="in")
                .on_conflict_do_nothing())
        else:
            self.deals.add_lead_line(deal_id, lead_dict(lead))

    @rpc
    def attach_lead(self, lead_id: int, deal_id: int, user_id: int | None = None
                    ) -> dict[str, Any]:
        """The lead's message into an open deal's feed; the lead is then ``attached``."""
        target = _id(deal_id, "deal_id")
        lead = self._lead(lead_id, lock=True)
        if lead.status == "attached" and lead.deal_id == target:
            return lead_dict(lead)
        if lead.status != "new":
            raise Conflict(f"Заявка №{lead.id} уже разобрана ({lead.status}).",
                           entity="lead", id=lead.id, key="lead.decided")
        deal = self.deals.get_deal(target)
        if deal["status"]["kind"] != "open":
            raise ValidationError("Сделка закрыта: выберите открытую.", field="deal_id",
                                  key="lead.deal_closed")
        self._feed_line(lead, target)
        lead.deal_id, lead.client_id = target, deal["client_id"]
        self._decided(lead, "attached", user_id)
        self.db.flush()
        self.db.emit("lead_attached", {"lead_id": lead.id, "deal_id": target,
                                       "client_id": deal["client_id"], "user_id": user_id,
                                       "source": lead.source, "utm": lead.utm,
                                       "page_url": lead.page_url,
                                       "referrer": lead.referrer})
        return lead_dict(lead)

    @rpc
    def accept_lead(self, lead_id: int, user_id: int | None = None,
                    data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Client, contact and deal from the lead — or the deal for the client found as
        its duplicate.  A saga owned here: the plan is stored first, each step's result
        is committed as it comes, so a retry (a person's, or ``resume_accepts``) goes on
        from where it stopped and never creates anything twice."""
        lead = self._lead(lead_id, lock=True)
        if lead.status == "accepted":
            return lead_dict(lead)
        if lead.status not in domain.OPEN_STATUSES:
            raise Conflict(f"Заявка №{lead.id} уже разобрана ({lead.status}).",
                           entity="lead", id=lead.id, key="lead.decided")
        if lead.status == "new":
            lead.accept_plan = self._plan(lead, data or {}, user_id)
            lead.status = "accepting"
            lead.decided_by = user_id
        elif _leased(lead):
            raise Conflict(f"Заявка №{lead.id} уже принимается.", entity="lead", id=lead.id,
                           key="lead.accepting")
        self._run_accept(lead)
        return lead_dict(lead)

    def _plan(self, lead: Lead, data: dict[str, Any], user_id: int | None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("Ожидался объект.", field="body", key="lead.body")
        for key in ("client_name", "contact_name", "deal_name"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValidationError(f"{key}: текст", field=key, key="lead.not_text")
        client_id = data.get("client_id")
        contact_id = None
        if client_id is None:
            self._find_duplicates(lead)  # fresh: someone may have created the client since
            match = next(iter(lead.duplicates or []), None)
            if match is not None:
                client_id, contact_id = match["client_id"], match.get("contact_id")
        else:
            client_id = _id(client_id, "client_id")
            contact_id = next((m.get("contact_id") for m in lead.duplicates or []
                               if m["client_id"] == client_id), None)
        name = (data.get("client_name") or "").strip() or lead.company or lead.name or \
            lead.phone or lead.email
        deal_name = (data.get("deal_name") or "").strip() or \
            f"Заявка №{lead.id}: {domain.who(lead_dict(lead))}"[:300]
        return {"client_id": client_id, "contact_id": contact_id, "new_client": client_id is None,
                "client_name": name[:300], "deal_name": deal_name[:300],
                "contact_name": ((data.get("contact_name") or "").strip() or lead.name
                                 or name)[:300],
                "manager_id": lead.assignee_id or user_id, "user_id": user_id}

    def _run_accept(self, lead: Lead) -> None:
        """Runs under a lease (``plan.lease_until``), taken while the row is locked: the
        steps commit one by one, and nobody else runs them meanwhile."""
        plan = dict(lead.accept_plan or {})
        user_id = plan.get("user_id")
        lead.accept_attempts += 1
        plan["lease_until"] = (_now() + LEASE).isoformat()
        self._save_step(lead, plan)
        try:
            self._accept_steps(lead, plan, user_id)
        except CrmError as exc:
            self.db.rollback()
            plan.pop("lease_until", None)
            if isinstance(exc, TRANSIENT) or plan.get("client_id"):
                # Something exists already (or may): go forward later, never half-done.
                lead.accept_error = str(exc)[:2000]
                lead.accept_plan = plan
            else:
                # Nothing was created: the lead is back in the inbox as it was.
                lead.status, lead.accept_plan, lead.decided_by = "new", None, None
                lead.accept_attempts = 0
            self.db.commit()
            raise
        plan.pop("lease_until", None)
        lead.client_id, lead.contact_id = plan["client_id"], plan.get("contact_id")
        lead.deal_id = plan["deal_id"]
        lead.accept_error = None
        lead.accept_plan = plan
        self._decided(lead, "accepted", user_id)
        self.db.flush()
        self.db.emit("lead_accepted", {
            "lead_id": lead.id, "client_id": lead.client_id, "contact_id": lead.contact_id,
            "deal_id": lead.deal_id, "new_client": plan["new_client"], "user_id": user_id,
            "source": lead.source, "utm": lead.utm, "page_url": lead.page_url,
            "referrer": lead.referrer})

    def _save_step(self, lead: Lead, plan: dict[str, Any]) -> None:
        lead.accept_plan = dict(plan)
        self.db.commit()

    def _accept_steps(self, lead: Lead, plan: dict[str, Any], user_id: int | None) -> None:
        contact = {"name": plan.get("contact_name") or lead.name or plan["client_name"],
                   "phones": [lead.phone_e164] if lead.phone_e164 else [],
                   "emails": [lead.email] if lead.email else []}
        if plan.get("client_id") is None:
            adopted = None
            if lead.accept_attempts > 1:  # a crash may have left the client we asked for
                adopted = next(iter(self.clients.find_matches(
                    phone=lead.phone_e164, email=lead.email or None)), None)
            if adopted is not None:
                plan["client_id"], plan["contact_id"] = adopted["client_id"], \
                    adopted.get("contact_id")
            else:
                client = self.clients.create_client(
                    {"kind": "legal" if lead.inn else "person", "name": plan["client_name"],
                     **({"inn": lead.inn} if lead.inn else {}),
                     "manager_id": plan["manager_id"], "contacts": [contact]},
                    user_id=user_id, source="api")
                plan["client_id"] = client["id"]
                plan["contact_id"] = (client.get("contacts") or [{}])[0].get("id")
            self._save_step(lead, plan)
        if plan.get("contact_id") is None and (contact["phones"] or contact["emails"]):
            made = self.clients.add_contact(plan["client_id"], contact, user_id=user_id,
                                            source="api")
            plan["contact_id"] = made["id"]
            self._save_step(lead, plan)
        if plan.get("deal_id") is None:
            adopted_deal = None
            if lead.accept_attempts > 1:
                adopted_deal = next((d["id"] for d in self.deals.list_deals(
                    client_id=plan["client_id"], limit=50) if d["name"] == plan["deal_name"]),
                    None)
            source, detail = domain.deal_source(lead_dict(lead))
            plan["deal_id"] = adopted_deal or self.deals.create_deal(
                {"name": plan["deal_name"], "client_id": plan["client_id"],
                 "manager_id": plan["manager_id"], "source": source,
                 "source_detail": detail}, user_id=user_id)["id"]
            self._save_step(lead, plan)
        if not plan.get("feed_done"):
            self._feed_line(lead, plan["deal_id"])
            plan["feed_done"] = True
            self._save_step(lead, plan)
        if lead.source == "call" and not plan.get("call_done") and plan.get("contact_id"):
            self.telephony.attach_call(int(lead.external_id or 0), plan["contact_id"],
                                       plan["client_id"], [plan["deal_id"]], same_number=True,
                                       user_id=user_id, contact_name=contact["name"])
            plan["call_done"] = True
            self._save_step(lead, plan)

    @every("ACCEPT_RETRY_SECONDS", 10)
    def resume_accepts(self) -> int:
        """Accepts a failure or a crash left half-way: go on (forward recovery)."""
        done: list[int] = []
        for _ in range(10):  # one at a time: each step's commit ends the row lock
            lead = self.db.scalars(select(Lead).where(
                Lead.status == "accepting", Lead.accept_attempts < MAX_ACCEPT_ATTEMPTS,
                Lead.id.not_in(done or [0])).order_by(Lead.id).limit(1)
                .with_for_update(skip_locked=True)).first()
            if lead is None:
                break
            done.append(lead.id)
            if _leased(lead):
                continue
            try:
                self._run_accept(lead)
                self.db.commit()
            except CrmError as exc:
                log.warning("accept of lead %s still failing: %s", lead.id, exc)
        self.db.commit()
        return len(done)

    # -- the first-response clock ---------------------------------------------------------------
    @every("OVERDUE_TICK_SECONDS", 15)
    def escalate_overdue(self) -> int:
        """An entry nobody took in time: the heads are told, once per lead."""
        settings = self._settings()
        late = self.db.scalars(select(Lead).where(
            Lead.status == "new", Lead.hidden.is_(False), Lead.escalated_at.is_(None),
            Lead.respond_by < _now()).order_by(Lead.respond_by).limit(100)
            .with_for_update(skip_locked=True)).all()
        for lead in late:
            lead.escalated_at = _now()
            self.db.emit("lead_overdue", {
                "lead_id": lead.id, "who": domain.who(lead_dict(lead)),
                "assignee_id": lead.assignee_id, "head_ids": settings["head_user_ids"],
                "respond_by": lead.respond_by})
        self.db.commit()
        return len(late)

    @rpc
    def bench_counts(self, since_id: int = 0) -> dict[str, int]:
        """Leads per source after ``since_id`` (for the benchmark's loss count)."""
        rows = self.db.execute(select(Lead.source, Lead.hidden, func.count())
                               .where(Lead.id > int(since_id))
                               .group_by(Lead.source, Lead.hidden)).all()
        return {f"{s}{':hidden' if h else ''}": int(n) for s, h, n in rows}

    @rpc
    def last_lead_id(self) -> int:
        return int(self.db.scalar(select(func.max(Lead.id))) or 0)



    # -- IMAP mailboxes ------------------------------------------------------------------------
    @property
    def _cipher(self) -> MailboxCipher:
        return MailboxCipher(str(self.config.get("MAILBOX_SECRET")
                                 or self.config.get("INTAKE_SECRET") or "dev-intake"))

    def _mailbox(self, mailbox_id: Any) -> Mailbox:
        box = self.db.get(Mailbox, _id(mailbox_id, "mailbox_id"))
        if box is None:
            raise NotFound(f"mailbox {mailbox_id} not found", entity="mailbox", id=mailbox_id)
        return box

    @rpc
    def list_mailboxes(self) -> list[dict[str, Any]]:
        return [mailbox_dict(b) for b in self.db.scalars(select(Mailbox).order_by(Mailbox.id))]

    @rpc
    def get_mailbox(self, mailbox_id: int) -> dict[str, Any]:
        return mailbox_dict(self._mailbox(mailbox_id))

    @rpc
    def save_mailbox(self, data: dict[str, Any], user_id: int | None = None,
                     mailbox_id: int | None = None) -> dict[str, Any]:
        """Create or change a mailbox.  An empty password keeps the stored one; the
        password is never answered back.  A changed server, login or folder starts
        reading afresh (its UIDs mean nothing on another folder)."""
        box = self._mailbox(mailbox_id) if mailbox_id is not None else None
        cleaned = domain.clean_mailbox(data, has_password=box is not None)
        password = cleaned.pop("password", None)
        if box is None:
            box = Mailbox(created_by=user_id, password_enc=self._cipher.encrypt(password or ""),
                          **cleaned)
            self.db.add(box)
        else:
            if (box.host, box.login, box.folder) != (cleaned["host"], cleaned["login"],
                                                     cleaned["folder"]):
                box.uidvalidity = box.last_uid = None
            for key, value in cleaned.items():
                setattr(box, key, value)
            if password:
                box.password_enc = self._cipher.encrypt(password)
            box.next_poll_at = _now()
            box.last_error = None
        self.db.flush()
        log.info("mailbox %s (%s) saved by %s", box.id, box.name, user_id)
        return mailbox_dict(box)

    @rpc
    def delete_mailbox(self, mailbox_id: int, user_id: int | None = None) -> dict[str, Any]:
        box = self._mailbox(mailbox_id)
        self.db.delete(box)
        log.info("mailbox %s (%s) deleted by %s", box.id, box.name, user_id)
        return {"id": box.id, "deleted": True}

    @rpc
    def poll_mailbox_now(self, mailbox_id: int) -> dict[str, Any]:
        """Read this mailbox at the next tick rather than after its interval."""
        box = self._mailbox(mailbox_id)
        box.next_poll_at = _now()
        return mailbox_dict(box)

    def _claim_mailbox(self) -> Mailbox | None:
        """One due mailbox, leased to this replica (the claim commits at once: the lease,
        not a row lock, covers the slow talk with the server)."""
        now = _now()
        box = self.db.scalars(select(Mailbox).where(
            Mailbox.active, Mailbox.next_poll_at <= now,
            (Mailbox.lease_until.is_(None)) | (Mailbox.lease_until < now))
            .order_by(Mailbox.next_poll_at).limit(1).with_for_update(skip_locked=True)).first()
        if box is not None:
            box.lease_until = now + timedelta(
                seconds=float(self.config.get("IMAP_LEASE_SECONDS", 300)))
        self.db.commit()
        return box

    @every("IMAP_TICK_SECONDS", 15)
    def poll_mailboxes(self) -> None:
        """Read every mailbox that is due; several replicas share them (SKIP LOCKED claim,
        then a lease), and a message counts once however often it is read."""
        for _ in range(20):  # bounded: the next tick takes the rest
            box = self._claim_mailbox()
            if box is None:
                return
            self._poll(box)

    def _poll(self, box: Mailbox) -> None:
        # As claimed: a rollback below reloads the row, which the admin may have changed.
        claimed = (box.id, box.host, box.login, box.folder, box.next_poll_at,
                   box.interval_seconds)
        name = box.name
        password = self._cipher.decrypt(box.password_enc)
        taken, error = 0, None
        validity, last_uid = box.uidvalidity, box.last_uid
        if password is None:
            error = "the stored password cannot be decrypted (MAILBOX_SECRET changed?)"
        else:
            account = Account(box.host, box.port, box.security, box.login, password,
                              box.folder, box.move_to)
            try:
                taken, validity, last_uid, error = self._read(box, account)
            except ImapError as exc:
                error = str(exc)[:1000]
                self.db.rollback()
            if error:
                log.warning("mailbox %s (%s): %s", claimed[0], name, error)
        now = _now()
        # Plain UPDATEs: a mailbox deleted meanwhile matches no row, and the progress is
        # kept only if the administrator did not point it at another folder meanwhile.
        box_id, host, login, folder, next_poll_at, interval = claimed
        this = update(Mailbox).where(Mailbox.id == box_id)
        self.db.execute(this.where(Mailbox.host == host, Mailbox.login == login,
                                   Mailbox.folder == folder)
                        .values(uidvalidity=validity, last_uid=last_uid,
                                taken=Mailbox.taken + taken, last_error=error))
        # "Check now" or a save during this poll moved next_poll_at: that stands.
        self.db.execute(this.values(last_polled_at=now, lease_until=None, next_poll_at=case(
            (Mailbox.next_poll_at == next_poll_at, now + timedelta(seconds=interval)),
            else_=Mailbox.next_poll_at)))
        self.db.commit()

    def _read(self, box: Mailbox, account: Account
              ) -> tuple[int, int | None, int | None, str | None]:
        """Take what is new in the folder: each message committed (entry + its UID) before
        it is marked on the server.  A message that fails stops the poll there (the next
        one starts from it).  (taken, UIDVALIDITY, last UID read, error)."""
        timeout = float(self.config.get("IMAP_TIMEOUT_SECONDS", 30))
        batch = int(self.config.get("IMAP_BATCH", 50))
        label = box.login if "@" in box.login else f"{box.login}@{box.host}"
        client = open_mailbox(account, timeout)
        try:
            validity, above, unseen = folder_state(client, account, box.last_uid)
            last_uid = box.last_uid if validity == box.uidvalidity else None
            if last_uid is None and box.last_uid is not None:
                log.warning("mailbox %s: UIDVALIDITY changed, reading unseen mail afresh",
                            box.id)
                above = []
            present = sorted(set(above) | set(unseen))
            done = {m.uid: m for m in self.db.scalars(select(MailboxMessage).where(
                MailboxMessage.mailbox_id == box.id, MailboxMessage.uidvalidity == validity,
                MailboxMessage.uid.in_(present)))} if present else {}
            for uid, row in done.items():  # committed before, the marking was lost
                if not row.flagged and row.outcome not in domain.MAIL_REFUSALS:
                    mark_done(client, account, uid)
                    row.flagged = True
            self.db.commit()
            wanted = domain.uids_to_take(above, unseen, last_uid, list(done), batch)
            taken, error = 0, None
            for uid in wanted:
                try:
                    outcome = self._take(client, account, box, validity, uid, label)
                except (ImapError, CrmError) as exc:
                    error = f"message {uid}: {exc}"[:1000]
                    break
                taken += outcome is not None
                last_uid = max(last_uid, uid) if last_uid is not None else None
            if last_uid is None and error is None and len(wanted) < batch:
                # First poll caught up: from now on every message above the newest counts.
                last_uid = max([*above, *unseen, 0])
            return taken, validity, last_uid, error
        finally:
            close(client)

    def _take(self, client: Any, account: Account, box: Mailbox, validity: int, uid: int,
              label: str) -> str | None:
        """One message: recorded under its UID in the same transaction as its effect, then
        marked on the server.  None: another replica had it, or it vanished."""
        claimed = self.db.execute(insert(MailboxMessage).values(
            mailbox_id=box.id, uidvalidity=validity, uid=uid, outcome="reading")
            .on_conflict_do_nothing().returning(MailboxMessage.uid)).first()
        if claimed is None:
            self.db.rollback()
            return None
        limit = int(self.config.get("SMTP_MAX_BYTES", 26_214_400))
        size = message_size(client, uid)
        if size is None:
            self.db.rollback()
            return None
        outcome, message_id = "too_big", ""
        stored: list[dict[str, Any]] = []
        folder = files_dir(self.config)
        folder = folder if folder.is_absolute() else ROOT / folder
        try:
            if size <= limit:
                raw = fetch_raw(client, uid)
                if raw is None:
                    self.db.rollback()
                    return None
                outcome, message_id, stored = self._deliver(raw, label, box, folder)
            self.db.execute(update(MailboxMessage).where(
                MailboxMessage.mailbox_id == box.id, MailboxMessage.uidvalidity == validity,
                MailboxMessage.uid == uid).values(outcome=outcome, message_id=message_id[:998]))
            self.db.commit()
        except Exception:
            self.db.rollback()
            remove_stored(folder, [f["key"] for f in stored])
            raise
        if outcome not in ("lead", "feed"):
            remove_stored(folder, [f["key"] for f in stored])
        if outcome in domain.MAIL_REFUSALS:
            # Left unread in the mailbox for a person to see; never read again by us.
            log.warning("mailbox %s: message %s refused (%s)", box.id, uid, outcome)
            return outcome
        mark_done(client, account, uid)
        self.db.execute(update(MailboxMessage).where(
            MailboxMessage.mailbox_id == box.id, MailboxMessage.uidvalidity == validity,
            MailboxMessage.uid == uid).values(flagged=True))
        self.db.commit()
        log.info("mailbox %s: message %s %s: %s", box.id, uid, message_id, outcome)
        return outcome

    def _deliver(self, raw: bytes, label: str, box: Mailbox, folder: Path
                 ) -> tuple[str, str, list[dict[str, Any]]]:
        try:
            parsed = parse(raw, "", label)
        except MalformedMail as exc:
            log.warning("mailbox %s: unreadable message: %s", box.id, exc)
            return "malformed", "", []
        stored: list[dict[str, Any]] = []
        try:
            for name, payload in parsed.files:
                stored.append(store(io.BytesIO(payload), name, folder,
                                    max_file_bytes(self.config), field="attachments").as_dict())
        except ValidationError as exc:
            remove_stored(folder, [f["key"] for f in stored])
            log.warning("mailbox %s: %s refused: %s", box.id, parsed.mail["message_id"], exc)
            return "too_big", parsed.mail["message_id"], []
        try:
            result = self._receive_mail({**parsed.mail, "attachments": stored},
                                        assignee_id=box.user_id)
        except ValidationError as exc:
            remove_stored(folder, [f["key"] for f in stored])
            log.warning("mailbox %s: %s refused: %s", box.id, parsed.mail["message_id"], exc)
            return "refused", parsed.mail["message_id"], []
        return str(result["outcome"]), parsed.mail["message_id"], stored
