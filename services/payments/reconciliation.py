"""Entry points of bank and 1C feeds (P4) and online payment (P6): own accounts, statement
imports (uploads and the inbox folder) run by a background worker, the review queue, and
the payment provider's notifications."""
from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from services.kit import clock
from services.kit.config import ROOT
from services.kit.entrypoints import rpc
from services.kit.errors import Conflict, NotFound, ValidationError
from services.kit.timer import every
from services.payments import domain, imports, store
from services.payments.common import ServiceBase
from services.payments.feeds import StatementError
from services.payments.models import (
    BankTransaction,
    ClientRef,
    DealRef,
    ImportJob,
    ImportProgress,
    OwnAccount,
    PlannedPayment,
    Receipt,
)
from services.payments.online import ProviderClient

log = logging.getLogger("crm.payments")

MAX_ATTEMPTS = 3
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
QUEUE_STATUSES = ("review", "unmatched")
TX_STATUSES = ("matched", "review", "unmatched", "resolved", "dismissed", "ignored",
               "foreign_account")


def job_dict(job: ImportJob, progress: ImportProgress | None = None) -> dict[str, Any]:
    status = job.status
    if status == "queued" and progress is not None and progress.phase != "done":
        status = "running"
    return {"id": job.id, "kind": job.kind, "filename": job.filename, "size": job.size,
            "format": job.format, "account": job.account, "status": status,
            "attempts": job.attempts, "error": job.error,
            "error_location": job.error_location, "error_key": job.error_key,
            "error_params": job.error_params or {}, "result": job.result,
            "created_by": job.created_by, "created_at": job.created_at,
            "finished_at": job.finished_at,
            "progress": None if progress is None else progress_dict(job, progress)}


def progress_dict(job: ImportJob, progress: ImportProgress) -> dict[str, Any]:
    # The job row is committed before the progress row says "done" (the progress lives on
    # its own connection), so a finished job is complete whatever its progress row still says.
    finished = job.status in ("done", "failed") or progress.phase == "done"
    return {"phase": "done" if finished else progress.phase, "done": progress.done,
            "total": progress.total,
            "percent": (100 if finished else
                        int(100 * progress.done / progress.total) if progress.total else 0),
            "updated_at": progress.updated_at}


def account_dict(a: OwnAccount) -> dict[str, Any]:
    return {"account": a.account, "name": a.name, "created_by": a.created_by,
            "created_at": a.created_at}


def page_args(query: dict[str, Any] | None, default: int = 50) -> tuple[dict[str, Any], int, int]:
    query = dict(query) if isinstance(query, dict) else {}
    try:
        page = max(1, int(query.get("page") or 1))
        per_page = min(200, max(1, int(query.get("per_page") or default)))
    except (TypeError, ValueError):
        raise ValidationError("Нужно целое число.", field="page", key="number.int") from None
    return query, page, per_page


class Reconciliation(ServiceBase):
    # ------------------------------------------------------------------ configuration
    def _storage(self) -> imports.Storage:
        root = Path(str(self.config.get("STATEMENTS_DIR") or "var/statements"))
        inbox = str(self.config.get("STATEMENTS_INBOX_DIR") or "")
        return imports.Storage(root if root.is_absolute() else ROOT / root,
                               (Path(inbox) if Path(inbox).is_absolute() else ROOT / inbox)
                               if inbox else None)

    def _max_bytes(self) -> int:
        return int(self.config.get("STATEMENTS_MAX_BYTES") or DEFAULT_MAX_BYTES)

    # ------------------------------------------------------------------ own accounts
    @rpc
    def list_own_accounts(self) -> list[dict[str, Any]]:
        return [account_dict(a) for a in
                self.db.scalars(select(OwnAccount).order_by(OwnAccount.account))]

    @rpc
    def add_own_account(self, data: dict[str, Any], user_id: int | None = None
                        ) -> dict[str, Any]:
        """Add one of our accounts; credits to it already imported are matched now (in the
        background, as a job)."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        account = imports.normalise_account(domain.required_text(data, "account",
                                                                 "the account number", 34))
        if len(account) < 5 or not account.isascii() or not all(
                c.isalnum() or c == "-" for c in account):
            raise ValidationError(f"«{account}» — не номер счёта.", field="account",
                                  key="reconcile.account", params={"value": str(account)})
        if self.db.get(OwnAccount, account) is not None:
            raise Conflict(f"account {account} is already in the list", field="account")
        row = OwnAccount(account=account, name=domain.optional_text(data, "name", 200),
                         created_by=user_id)
        self.db.add(row)
        self.db.flush()
        waiting = self.db.scalar(select(func.count()).where(
            BankTransaction.own_account == account, BankTransaction.status == "foreign_account"))
        result = account_dict(row)
        result["rematch_job_id"] = None
        if waiting:
            job = ImportJob(kind="rematch", filename=f"account {account}", account=account,
                            status="queued", size=0, attempts=0, created_by=user_id)
            self.db.add(job)
            self.db.flush()
            result["rematch_job_id"] = job.id
        return result

    @rpc
    def remove_own_account(self, account: str, user_id: int | None = None) -> bool:
        row = self.db.get(OwnAccount, imports.normalise_account(str(account)))
        if row is None:
            raise NotFound(f"account {account} is not in the list", entity="account",
                           id=account)
        self.db.delete(row)
        return True

    # ------------------------------------------------------------------ imports
    @rpc
    def create_import(self, data: dict[str, Any], user_id: int | None = None
                      ) -> dict[str, Any]:
        """Queue an uploaded file (stored by the gateway under STATEMENTS_DIR/uploads/
        ``stored_name``) for import.  Size and format are checked now; a file that is not
        a statement is refused (and deleted) before any job exists."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        storage = self._storage()
        path = storage.upload_path(str(data.get("stored_name") or ""))
        filename = domain.optional_text(data, "filename", 255) or "statement"
        try:
            size, fmt = self._checked(path)
        except ValidationError:
            path.unlink(missing_ok=True)
            raise
        job = ImportJob(kind="upload", filename=filename, stored_name=path.name, size=size,
                        format=fmt, status="queued", attempts=0, created_by=user_id)
        self.db.add(job)
        self.db.flush()
        return job_dict(job)

    def _checked(self, path: Path) -> tuple[int, str]:
        try:
            return imports.sniff(path, self._max_bytes())
        except StatementError as err:
            # the parser's key and params travel on: the form says what is wrong and where
            raise ValidationError(f"file: {err.reason}", field="file", key=err.key,
                                  params=err.params) from None

    @rpc
    def list_imports(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        _, page, per_page = page_args(query, 20)
        jobs = self.db.scalars(select(ImportJob).order_by(ImportJob.id.desc())
                               .offset((page - 1) * per_page).limit(per_page)).all()
        progress = {p.job_id: p for p in self.db.scalars(
            select(ImportProgress).where(ImportProgress.job_id.in_([j.id for j in jobs])))}
        total = self.db.scalar(select(func.count()).select_from(ImportJob))
        return {"items": [job_dict(j, progress.get(j.id)) for j in jobs], "total": total,
                "page": page, "per_page": per_page}

    @rpc
    def get_import(self, job_id: int) -> dict[str, Any]:
        job = self.db.get(ImportJob, domain.identifier(job_id, "job_id"))
        if job is None:
            raise NotFound(f"import {job_id} not found", entity="import", id=job_id)
        return job_dict(job, self.db.get(ImportProgress, job.id))

    @rpc
    def import_transactions(self, job_id: int, query: dict[str, Any] | None = None
                            ) -> dict[str, Any]:
        query, page, per_page = page_args(query)
        stmt = select(BankTransaction).where(
            BankTransaction.import_id == domain.identifier(job_id, "job_id"))
        status = query.get("status")
        if status:
            if status not in TX_STATUSES:
                raise ValidationError(f"«{status}» — такого статуса нет.", field="status",
                                      key="choice.invalid",
                                      params={"value": str(status),
                                              "options": ", ".join(TX_STATUSES)})
            stmt = stmt.where(BankTransaction.status == status)
        total = self.db.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = self.db.scalars(stmt.order_by(BankTransaction.id)
                               .offset((page - 1) * per_page).limit(per_page)).all()
        return {"items": [store.transaction_dict(t) for t in rows], "total": total,
                "page": page, "per_page": per_page}

    @every("IMPORT_POLL_SECONDS", 1.0)
    def process_imports(self) -> int:
        """The import worker: claims queued jobs one at a time with FOR NO KEY UPDATE SKIP
        LOCKED and keeps the lock for the whole import, so replicas never take the same
        job and a crashed worker's job is simply taken again."""
        for done in range(20):
            if not self._process_next_job():
                return done
        return 20

    def _process_next_job(self) -> bool:
        job = self.db.scalars(select(ImportJob).where(ImportJob.status == "queued")
                              .order_by(ImportJob.id).limit(1)
                              .with_for_update(skip_locked=True, key_share=True)).first()
        if job is None:
            self.db.rollback()
            return False
        storage = self._storage()
        progress = imports.Progress(self.db.provider.engine, job.id)
        started = time.monotonic()
        savepoint = self.db.session.begin_nested()
        try:
            progress.set("reading", 0, job.size, force=True)
            if job.kind == "rematch":
                result = imports.rematch_account(self.db, job.account or "", progress)
            else:
                path = storage.job_path(job.kind, job.stored_name or "")
                if not path.exists():
                    raise ValidationError("Загруженный файл пропал: загрузите его снова.",
                                          field="file", key="file.gone")
                result = imports.import_file(self.db, job.id, job.filename, path, progress)
            savepoint.commit()
            result["seconds"] = round(time.monotonic() - started, 3)
            job.status, job.result = "done", result
        except ValidationError as err:  # StatementError included: refused whole
            savepoint.rollback()
            job.status, job.error = "failed", err.message
            job.error_location = str(err.field or "") or None
            job.error_key, job.error_params = err.key, err.params or None
        except Exception as exc:
            savepoint.rollback()
            job.attempts += 1
            log.exception("import %s failed (attempt %s)", job.id, job.attempts)
            if job.attempts >= MAX_ATTEMPTS:
                job.status = "failed"
                job.error = f"the import failed {job.attempts} times: {type(exc).__name__}"
        if job.status != "queued":
            job.finished_at = clock.now()
        self.db.commit()
        progress.set("done" if job.status != "queued" else "retry", job.size, job.size,
                     force=True)
        progress.close()
        if job.status != "queued" and job.kind != "rematch" and job.stored_name:
            storage.dispose(job.kind, job.stored_name, job.error and (
                f"{job.error_location}: {job.error}" if job.error_location else job.error))
        return True

    @every("STATEMENTS_INBOX_SECONDS", 30.0)
    def scan_inbox(self) -> int:
        """Scheduled import from STATEMENTS_INBOX_DIR: each settled file becomes a job and
        moves to processing/ (one replica at a time: an advisory lock)."""
        storage = self._storage()
        if storage.inbox is None or not storage.inbox.is_dir():
            return 0
        got = self.db.execute(text(
            "SELECT pg_try_advisory_xact_lock(hashtext('payments.statements_inbox'))")).scalar()
        if not got:
            self.db.rollback()
            return 0
        self._recover_orphans(storage)
        settle = float(self.config.get("STATEMENTS_INBOX_SETTLE_SECONDS", 5))
        taken = 0
        for path in sorted(storage.inbox.iterdir()):
            if not path.is_file() or path.name.startswith(".") or path.suffix in (
                    ".part", ".tmp", ".crdownload") or path.name.endswith(".error.txt"):
                continue
            if time.time() - path.stat().st_mtime < settle:
                continue  # still being written
            self._take_from_inbox(storage, path)
            taken += 1
        self.db.commit()
        return taken

    def _take_from_inbox(self, storage: imports.Storage, path: Path) -> None:
        stored = f"{uuid.uuid4().hex}__{path.name}"
        try:
            size, fmt = self._checked(path)
        except ValidationError as err:
            job = ImportJob(kind="inbox", filename=path.name, stored_name=stored,
                            size=path.stat().st_size, status="failed", attempts=0,
                            error=err.message, error_location="file",
                            error_key=err.key, error_params=err.params or None,
                            finished_at=clock.now())
            self.db.add(job)
            failed = storage.inbox_dir("failed") / imports._free_name(
                storage.inbox_dir("failed"), path.name)
            os.replace(path, failed)
            failed.with_name(failed.name + ".error.txt").write_text(err.message + "\n",
                                                                    encoding="utf-8")
            return
        self.db.add(ImportJob(kind="inbox", filename=path.name, stored_name=stored, size=size,
                              format=fmt, status="queued", attempts=0))
        self.db.flush()
        os.replace(path, storage.inbox_dir("processing") / stored)

    def _recover_orphans(self, storage: imports.Storage) -> None:
        """A file moved to processing/ by a replica that died before committing its job."""
        processing = storage.inbox_dir("processing")
        names = [p.name for p in processing.iterdir() if p.is_file()]
        if not names:
            return
        known = set(self.db.scalars(select(ImportJob.stored_name)
                                    .where(ImportJob.stored_name.in_(names))))
        for name in names:
            if name in known:
                continue
            path = processing / name
            try:
                size, fmt = self._checked(path)
            except ValidationError:
                size, fmt = path.stat().st_size, None
            self.db.add(ImportJob(kind="inbox", filename=name.split("__", 1)[-1],
                                  stored_name=name, size=size, format=fmt, status="queued",
                                  attempts=0))

    # ------------------------------------------------------------------ review queue
    @rpc
    def review_queue(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """Transactions waiting for a person: doubtful matches ('review') and credits that
        matched nothing ('unmatched'), with their candidate payments described."""
        query, page, per_page = page_args(query)
        statuses = [query["status"]] if query.get("status") else list(QUEUE_STATUSES)
        if any(s not in QUEUE_STATUSES for s in statuses):
            raise ValidationError("Статус: на проверке или не сопоставлено.", field="status",
                                  key="reconcile.review_status")
        stmt = select(BankTransaction).where(BankTransaction.status.in_(statuses))
        total = self.db.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = self.db.scalars(stmt.order_by(BankTransaction.booked_on, BankTransaction.id)
                               .offset((page - 1) * per_page).limit(per_page)).all()
        counts = dict(self.db.execute(
            select(BankTransaction.status, func.count())
            .where(BankTransaction.status.in_(QUEUE_STATUSES))
            .group_by(BankTransaction.status)).all())
        ids = {int(i) for t in rows for i in (t.candidates or [])}
        described = self._describe_payments(ids)
        items = []
        for t in rows:
            item = store.transaction_dict(t)
            item["unallocated"] = self._unallocated(t)
            item["candidate_payments"] = [described[int(i)] for i in (t.candidates or [])
                                          if int(i) in described]
            items.append(item)
        return {"items": items, "total": total, "page": page, "per_page": per_page,
                "counts": {s: int(counts.get(s, 0)) for s in QUEUE_STATUSES}}

    def _describe_payments(self, ids: set[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        rows = self.db.execute(
            select(PlannedPayment, DealRef.name, DealRef.manager_id, ClientRef.name,
                   ClientRef.inn)
            .outerjoin(DealRef, DealRef.deal_id == PlannedPayment.deal_id)
            .outerjoin(ClientRef, ClientRef.client_id == DealRef.client_id)
            .where(PlannedPayment.id.in_(ids))).all()
        today = self._today()
        found = {}
        for p, deal_name, manager_id, client_name, inn in rows:
            item = store.payment_dict(p, today)
            item.update(deal_name=deal_name, manager_id=manager_id, client_name=client_name,
                        client_inn=inn)
            found[p.id] = item
        return found

    def _unallocated(self, t: BankTransaction) -> Any:
        allocated = self.db.scalar(select(func.coalesce(func.sum(Receipt.amount), 0)).where(
            Receipt.bank_transaction_id == t.id, Receipt.status == "active"))
        return t.amount - allocated

    @rpc
    def resolve_transaction(self, transaction_id: int, data: dict[str, Any],
                            user_id: int | None = None) -> dict[str, Any]:
        """A person decides a queued transaction: ``confirm`` it pays ``payment_id``
        (default: the suggested one), ``split`` it over ``allocations``
        [{payment_id, amount}], or ``dismiss`` it (not a client payment) with a ``note``."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        tx = self.db.scalars(select(BankTransaction).where(
            BankTransaction.id == domain.identifier(transaction_id, "transaction_id"))
            .with_for_update()).first()
        if tx is None:
            raise NotFound(f"transaction {transaction_id} not found", entity="transaction",
                           id=transaction_id)
        if tx.status not in QUEUE_STATUSES:
            raise Conflict(f"transaction {tx.id} is {tx.status}, not waiting for a decision",
                           field="transaction_id", status=tx.status)
        action = data.get("action")
        remaining = self._unallocated(tx)
        if action == "dismiss":
            tx.note = domain.required_text(data, "note", "why it is not a client payment", 500)
            tx.status = "dismissed"
        elif action in ("confirm", "split"):
            if action == "confirm":
                chosen = data.get("payment_id") or tx.suggested_payment_id
                if chosen is None:
                    raise ValidationError("Выберите плановый платёж, который оплачен.",
                                          field="payment_id", key="reconcile.payment_required")
                parts = [(domain.identifier(chosen, "payment_id"), remaining)]
            else:
                parts = domain.validate_allocations(data.get("allocations"), remaining)
            self._allocate(tx, parts, user_id)
            tx.status = "resolved"
            tx.note = domain.optional_text(data, "note", 500)
        else:
            raise ValidationError("Действие: подтвердить, разделить или отклонить.",
                                  field="action", key="reconcile.action")
        tx.resolved_by, tx.resolved_at = user_id, clock.now()
        self.db.flush()
        return store.transaction_dict(tx)

    def _allocate(self, tx: BankTransaction, parts: list[tuple[int, Any]],
                  user_id: int | None) -> None:
        deals = set()
        for i, (payment_id, amount) in enumerate(sorted(parts)):
            field = "payment_id" if len(parts) == 1 else f"allocations[{i}].payment_id"
            try:
                payment = self._lock_payment(payment_id)
            except NotFound:
                raise ValidationError(f"Планового платежа №{payment_id} нет.", field=field,
                                      key="reconcile.payment_unknown",
                                      params={"payment_id": payment_id}) from None
            if payment.status == "cancelled":
                raise ValidationError(f"Платёж №{payment_id} отменён.", field=field,
                                      key="reconcile.payment_cancelled",
                                      params={"payment_id": payment_id})
            if payment.currency != tx.currency:
                raise ValidationError(f"Платёж №{payment_id} в {payment.currency}, "
                                      f"а поступление в {tx.currency}.", field=field,
                                      key="reconcile.currency",
                                      params={"payment_id": payment_id,
                                              "payment_currency": payment.currency,
                                              "currency": tx.currency})
            store.record_receipt(self.db, payment, amount, tx.booked_on, "bank", user_id,
                                 bank_transaction_id=tx.id)
            deals.add(payment.deal_id)
        store.publish_budgets(self.db, deals, user_id)

    # ------------------------------------------------------------------ online payment
    @rpc
    def start_online_payment(self, payment_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Create the provider's payment for what is still outstanding on a planned payment
        and give the URL to send the payer to; the provider's webhook records it later.
        ``data``: `return_url`, `description`, `idempotence_key` (the same key, the same
        provider payment)."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        payment = self._lock_payment(payment_id)
        if payment.status in ("paid", "cancelled") or payment.outstanding <= 0:
            raise Conflict(f"payment {payment.id} is {payment.status}: nothing to pay",
                           field="payment_id", key="payment.nothing_to_pay")
        return_url, key = data.get("return_url"), data.get("idempotence_key")
        if not isinstance(return_url, str) or not return_url.startswith(("http://", "https://")):
            raise ValidationError("Нужен адрес http(s).", field="return_url",
                                  key="reconcile.return_url")
        if not isinstance(key, str) or not 1 <= len(key) <= 64:
            raise ValidationError("Ключ идемпотентности: от 1 до 64 символов.",
                                  field="idempotence_key", key="reconcile.idempotence_key")
        created = ProviderClient.from_config(self.config).create_payment({
            "amount": {"value": f"{payment.outstanding:.2f}", "currency": payment.currency},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": return_url},
            "description": str(data.get("description") or f"Платёж {payment.id}")[:128],
            "metadata": {"payment_id": str(payment.id)}}, key)
        return {"provider_payment_id": created["id"], "status": created.get("status"),
                "confirmation_url": created["confirmation"]["confirmation_url"],
                "amount": payment.outstanding, "currency": payment.currency}

    @rpc
    def online_payment_notification(self, body: Any) -> dict[str, Any]:
        """A payment provider's webhook (YooKassa ``payment.succeeded``), checked by asking
        the provider's API about the payment; records one receipt (source "online") per
        provider payment — a repeated notification changes nothing."""
        notice = domain.parse_notification(body)
        if notice.event != "payment.succeeded":
            return {"status": "ignored", "event": notice.event}
        existing = self._online_receipt(notice.provider_id)
        if existing is not None:
            return {"status": "duplicate", "receipt": store.receipt_dict(existing)}
        verified = domain.verified_payment(
            ProviderClient.from_config(self.config).payment(notice.provider_id),
            notice.provider_id)
        try:
            payment = self._lock_payment(verified.payment_id)
        except NotFound:
            raise ValidationError(f"Планового платежа №{verified.payment_id} нет.",
                                  field="object.metadata.payment_id",
                                  key="reconcile.payment_unknown",
                                  params={"payment_id": verified.payment_id}) from None
        existing = self._online_receipt(notice.provider_id)  # a twin waited on the lock
        if existing is not None:
            return {"status": "duplicate", "receipt": store.receipt_dict(existing)}
        if payment.status == "cancelled":
            raise ValidationError(f"Платёж №{payment.id} отменён.",
                                  field="object.metadata.payment_id",
                                  key="reconcile.payment_cancelled",
                                  params={"payment_id": payment.id})
        if verified.currency != payment.currency:
            raise ValidationError(f"Платёж №{payment.id} в {payment.currency}, "
                                  f"а оплата в {verified.currency}.",
                                  field="object.amount.currency", key="reconcile.currency",
                                  params={"payment_id": payment.id,
                                          "payment_currency": payment.currency,
                                          "currency": verified.currency})
        today = self._today()
        received_on = min(verified.paid_on or today, today)
        receipt = store.record_receipt(self.db, payment, verified.amount, received_on,
                                       "online", None, external_id=notice.provider_id)
        store.publish_budgets(self.db, [payment.deal_id], None)
        return {"status": "recorded", "receipt": store.receipt_dict(receipt)}

    def _online_receipt(self, provider_id: str) -> Receipt | None:
        return self.db.scalars(select(Receipt).where(Receipt.source == "online",
                                                     Receipt.external_id == provider_id)
                               ).first()
