"""Entry points of bank and 1C statement imports (P4): our own accounts, uploads and the
inbox folder turned into import jobs, and the background worker that runs them (parse,
de-duplicate, match: ``store.statements``).  What a person decides afterwards is in
``reconciliation``."""
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
from services.payments import domain, schemas
from services.payments.domain import page_args, statements
from services.payments.feeds import StatementError
from services.payments.models import BankTransaction, ImportJob, ImportProgress, OwnAccount
from services.payments.store import files
from services.payments.store import statements as imports

log = logging.getLogger("crm.payments")

MAX_ATTEMPTS = 3
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
TX_STATUSES = ("matched", "review", "unmatched", "resolved", "dismissed", "ignored",
               "foreign_account")


class StatementsEntrypoints:
    db: Any
    config: Any

    # ------------------------------------------------------------------ configuration
    def _storage(self) -> files.Storage:
        root = Path(str(self.config.get("STATEMENTS_DIR") or "var/statements"))
        inbox = str(self.config.get("STATEMENTS_INBOX_DIR") or "")
        return files.Storage(root if root.is_absolute() else ROOT / root,
                               (Path(inbox) if Path(inbox).is_absolute() else ROOT / inbox)
                               if inbox else None)

    def _max_bytes(self) -> int:
        return int(self.config.get("STATEMENTS_MAX_BYTES") or DEFAULT_MAX_BYTES)

    # ------------------------------------------------------------------ own accounts
    @rpc
    def list_own_accounts(self) -> list[dict[str, Any]]:
        return [schemas.account_dict(a) for a in
                self.db.scalars(select(OwnAccount).order_by(OwnAccount.account))]

    @rpc
    def add_own_account(self, data: dict[str, Any], user_id: int | None = None
                        ) -> dict[str, Any]:
        """Add one of our accounts; credits to it already imported are matched now (in the
        background, as a job)."""
        if not isinstance(data, dict):
            raise ValidationError("Нужен объект JSON.", field="data", key="object.invalid")
        account = statements.normalise_account(domain.required_text(data, "account",
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
        result = schemas.account_dict(row)
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
        row = self.db.get(OwnAccount, statements.normalise_account(str(account)))
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
        return schemas.job_dict(job)

    def _checked(self, path: Path) -> tuple[int, str]:
        try:
            return files.sniff(path, self._max_bytes())
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
        return {"items": [schemas.job_dict(j, progress.get(j.id)) for j in jobs], "total": total,
                "page": page, "per_page": per_page}

    @rpc
    def get_import(self, job_id: int) -> dict[str, Any]:
        job = self.db.get(ImportJob, domain.identifier(job_id, "job_id"))
        if job is None:
            raise NotFound(f"import {job_id} not found", entity="import", id=job_id)
        return schemas.job_dict(job, self.db.get(ImportProgress, job.id))

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
        return {"items": [schemas.transaction_dict(t) for t in rows], "total": total,
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

    def _take_from_inbox(self, storage: files.Storage, path: Path) -> None:
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
            failed = storage.inbox_dir("failed") / files.free_name(
                storage.inbox_dir("failed"), path.name)
            os.replace(path, failed)
            failed.with_name(failed.name + ".error.txt").write_text(err.message + "\n",
                                                                    encoding="utf-8")
            return
        self.db.add(ImportJob(kind="inbox", filename=path.name, stored_name=stored, size=size,
                              format=fmt, status="queued", attempts=0))
        self.db.flush()
        os.replace(path, storage.inbox_dir("processing") / stored)

    def _recover_orphans(self, storage: files.Storage) -> None:
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
