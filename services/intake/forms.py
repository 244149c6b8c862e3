"""Website forms: the administrator's forms and their consent versions, the public form
the website's script reads, and a submission judged against the anti-spam layers
(honeypot, signed fill time, rate limits, the self-hosted captcha)."""
from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from services.intake import domain, store
from services.intake.models import (
    Form,
)
from services.intake.part import IntakePart
from services.intake.schemas import (
    form_dict,
    public_form_dict,
)
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import (
    ValidationError,
)

log = logging.getLogger("crm.intake")


class FormsEntrypoints(IntakePart):
    @property
    def _signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(str(self.config.get("INTAKE_SECRET") or "dev-intake"),
                                      salt="intake.form")

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
            form = store.form(self.db, form_id)
            changed = cleaned["consent_text"] != form.consent_text
            for key, value in cleaned.items():
                setattr(form, key, value)
            if changed:
                form.consent_version += 1
            form.updated_at = clock.now()
            self.db.flush()
        store.keep_consent_version(self.db, form)
        store.RECENT.forget()
        return form_dict(form)

    @rpc
    def list_forms(self) -> list[dict[str, Any]]:
        return [form_dict(f) for f in store.all_of(self.db, Form)]

    @rpc
    def get_form(self, form_id: int) -> dict[str, Any]:
        return form_dict(store.form(self.db, form_id))

    @rpc
    def public_form(self, public_id: str, remote_addr: str | None = None) -> dict[str, Any]:
        """The form for the website's script, with a signed start time (the minimum
        fill time is measured from it), and a captcha question when this address has
        failed too often already (``captcha`` null otherwise)."""
        form = store.public_form(self.db, public_id)
        captcha = None
        if remote_addr is not None and domain.needs_captcha(
                store.count(self.db, f"fail:{form.id}:{remote_addr}", domain.CAPTCHA_WINDOW),
                store.settings(self.db)["captcha_after"]):
            captcha = self._captcha(form.public_id)
        return {**public_form_dict(form), "token": self._signer.dumps(form.public_id),
                "allowed_origins": list(form.allowed_origins), "captcha": captcha}

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
        return store.hits(self.db, [key], domain.CAPTCHA_MAX_AGE, start=issued)[key] == 1

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
        return (clock.now() - issued).total_seconds()

    @rpc
    def submit_form(self, public_id: str, values: dict[str, Any],
                    remote_addr: str | None = None) -> dict[str, Any]:
        """A website submission.  A person's mistakes are a ValidationError naming the
        field; a bot's submission (honeypot, too fast, no valid token, over the rate
        limits) answers the same ``{"status": "ok"}`` as a person's, is kept hidden as
        spam and reaches nobody."""
        form = store.recent_public_form(self.db, public_id)
        if not isinstance(values, dict):
            raise ValidationError("Ожидались поля формы.", field="fields", key="form.body")
        settings = store.recent_settings(self.db)
        # What was read is a snapshot: the connection goes back to the pool before this
        # waits on the statements it shares with the concurrent submissions (a burst of
        # callers each holding one would leave the shared statement none to run on).
        self.db.commit()
        fail_key = f"fail:{form.id}:{remote_addr or '-'}"
        verdict = domain.judge_submission(values.get("website"),
                                          self._filled_seconds(values.get("token"),
                                                               form.public_id),
                                          form.min_fill_seconds)
        # A person's submission reads its address's failure count and counts its rate
        # hits in one statement; a bot-like one has no rate hits to count.
        limited = [f"ip:{remote_addr or '-'}", f"form:{form.id}"] \
            if verdict.reason is None else []
        failures, hits, window = store.count_and_hit(self.db, fail_key, domain.CAPTCHA_WINDOW,
                                                     limited, 60)
        if domain.needs_captcha(failures, settings["captcha_after"]) \
                and not self._captcha_solved(values, form.public_id):
            if limited:  # refused before the rate limits apply to it: not counted there
                store.unhit(self.db, limited, window)
            log.info("form %s: captcha asked of %s", form.id, remote_addr)
            raise ValidationError(
                "Ответьте на вопрос под формой: так мы отличаем людей от программ.",
                field="captcha", key="form.captcha",
                params={"captcha": self._captcha(form.public_id),
                        "retry": bool(values.get("captcha_token"))})
        try:
            return self._submit(form, values, settings, remote_addr, fail_key,
                                verdict.reason, [hits[k[:400]] for k in limited])
        except ValidationError:
            store.hits(self.db, [fail_key], domain.CAPTCHA_WINDOW)  # a person's mistake counts too
            raise

    @rpc
    def submit_forms(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submissions the gateway gathered while an earlier call was under way (one
        RPC for many: the broker round trip and this service's per-call work are paid
        once).  Each item ``{public_id, values, remote_addr}`` is judged exactly as
        ``submit_form`` judges it, in a green thread and a unit of work of its own, so
        a bad one sinks nobody else and their rate counters and leads still go as one
        statement each.  One outcome per item, in order: ``{"result": ...}`` or
        ``{"error": ...}`` (nameko's serialised form of what ``submit_form`` would have
        raised)."""
        return self._each_alone(items, _submit_one, "submission")

    def _submit(self, form: Any, values: dict[str, Any], settings: dict[str, Any],
                remote_addr: str | None, fail_key: str, reason: str | None,
                hits: list[int]) -> dict[str, Any]:
        if reason is None:
            ip_hits, form_hits = hits
            if ip_hits > settings["form_ip_per_minute"]:
                reason = "ip_rate"
            elif form_hits > settings["form_per_minute"]:
                reason = "form_rate"
        if reason is not None:
            log.info("form %s: bot-like submission from %s (%s)", form.id, remote_addr, reason)
            store.hits(self.db, [fail_key], domain.CAPTCHA_WINDOW)
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
            shown = store.consent_version(self.db, form.id, int(str(version))) \
                if str(version or "").isdigit() else None
            if shown is None:
                raise ValidationError("Текст согласия устарел: обновите страницу.",
                                      field="consent", key="form.consent_version")
            consent_version, consent_text = shown.version, shown.text
        else:
            consent_version, consent_text = form.consent_version, form.consent_text
        details = domain.clean_lead(mapped, prefix="fields.")
        marketing = domain.clean_marketing(values)
        self._make_together("form", details, source_ref=str(form.id), source_name=form.name,
                            candidates=list(form.assignee_ids), settings=settings,
                            remote_addr=remote_addr, extra=extra,
                            consent_version=consent_version, consent_text=consent_text,
                            **marketing)
        return {"status": "ok"}


def _submit_one(service: FormsEntrypoints, item: dict[str, Any]) -> Any:
    # submit_form's own body, not the RPC entrypoint around it: the batch's items commit
    # one by one, each in its own unit of work (IntakePart._each_alone)
    return FormsEntrypoints.submit_form.__wrapped__(
        service, str(item.get("public_id") or ""), item.get("values"),
        remote_addr=item.get("remote_addr"))
