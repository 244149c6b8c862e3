"""IMAP mailboxes: the administrator's mailboxes (passwords under Fernet) and polling them:
claimed per replica, each message recorded under its UID with its effect before it is
marked on the server (docs/decisions/0015-imap-polling.md)."""
from __future__ import annotations

import io
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.dialects.postgresql import insert

from gateway.feed import files_dir, max_file_bytes, remove_stored
from gateway.feed import store as store_file
from services.intake import domain, store
from services.intake.emails import EmailEntrypoints
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
    Mailbox,
    MailboxMessage,
)
from services.intake.schemas import (
    mailbox_dict,
)
from services.kit import clock
from services.kit.config import ROOT
from services.kit.entrypoints import rpc
from services.kit.errors import (
    CrmError,
    ValidationError,
)
from services.kit.timer import every

log = logging.getLogger("crm.intake")


class MailboxEntrypoints(EmailEntrypoints):
    @property
    def _cipher(self) -> MailboxCipher:
        return MailboxCipher(str(self.config.get("MAILBOX_SECRET")
                                 or self.config.get("INTAKE_SECRET") or "dev-intake"))

    @rpc
    def list_mailboxes(self) -> list[dict[str, Any]]:
        return [mailbox_dict(b) for b in store.all_of(self.db, Mailbox)]

    @rpc
    def get_mailbox(self, mailbox_id: int) -> dict[str, Any]:
        return mailbox_dict(store.mailbox(self.db, mailbox_id))

    @rpc
    def save_mailbox(self, data: dict[str, Any], user_id: int | None = None,
                     mailbox_id: int | None = None) -> dict[str, Any]:
        """Create or change a mailbox.  An empty password keeps the stored one; the
        password is never answered back.  A changed server, login or folder starts
        reading afresh (its UIDs mean nothing on another folder)."""
        box = store.mailbox(self.db, mailbox_id) if mailbox_id is not None else None
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
            box.next_poll_at = clock.now()
            box.last_error = None
        self.db.flush()
        log.info("mailbox %s (%s) saved by %s", box.id, box.name, user_id)
        return mailbox_dict(box)

    @rpc
    def delete_mailbox(self, mailbox_id: int, user_id: int | None = None) -> dict[str, Any]:
        box = store.mailbox(self.db, mailbox_id)
        self.db.delete(box)
        log.info("mailbox %s (%s) deleted by %s", box.id, box.name, user_id)
        return {"id": box.id, "deleted": True}

    @rpc
    def poll_mailbox_now(self, mailbox_id: int) -> dict[str, Any]:
        """Read this mailbox at the next tick rather than after its interval."""
        box = store.mailbox(self.db, mailbox_id)
        box.next_poll_at = clock.now()
        return mailbox_dict(box)

    def _claim_mailbox(self) -> Mailbox | None:
        """One due mailbox, leased to this replica (the claim commits at once: the lease,
        not a row lock, covers the slow talk with the server)."""
        now = clock.now()
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
        now = clock.now()
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
                stored.append(store_file(io.BytesIO(payload), name, folder,
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
