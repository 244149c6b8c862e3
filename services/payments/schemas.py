"""The contract's shapes: each row as the dict an RPC answers with (see README.md)."""
from __future__ import annotations

from datetime import date
from typing import Any

from services.payments import domain
from services.payments.models import (
    BankTransaction,
    DueDateMove,
    ImportJob,
    ImportProgress,
    OwnAccount,
    PlannedPayment,
    Receipt,
    ReceiptCorrection,
)


def move_dict(m: DueDateMove) -> dict[str, Any]:
    return {"id": m.id, "from": m.old_due_date, "to": m.new_due_date, "reason": m.reason,
            "moved_by": m.moved_by, "moved_at": m.moved_at}


def payment_dict(p: PlannedPayment, today: date, moves: list[DueDateMove] | None = None,
                 ) -> dict[str, Any]:
    overdue = domain.is_overdue(p.status, p.due_date, today)
    return {"id": p.id, "deal_id": p.deal_id, "amount": p.amount, "currency": p.currency,
            "due_date": p.due_date, "comment": p.comment,
            "invoice_number": p.invoice_number, "contract_number": p.contract_number,
            "received_amount": p.received_amount,
            "outstanding": domain.outstanding_of(p.amount, p.received_amount, p.status),
            "credit": max(p.received_amount - p.amount, domain.ZERO),
            "status": p.status, "cancel_reason": p.cancel_reason, "overdue": overdue,
            "days_overdue": (today - p.due_date).days if overdue else 0,
            "version": p.version, "moves": [move_dict(m) for m in moves or []]}


def receipt_dict(r: Receipt) -> dict[str, Any]:
    return {"id": r.id, "planned_payment_id": r.planned_payment_id, "deal_id": r.deal_id,
            "amount": r.amount, "currency": r.currency, "received_on": r.received_on,
            "source": r.source, "status": r.status, "comment": r.comment,
            "bank_transaction_id": r.bank_transaction_id, "external_id": r.external_id,
            "created_at": r.created_at, "created_by": r.created_by}


def correction_dict(c: ReceiptCorrection) -> dict[str, Any]:
    return {"id": c.id, "receipt_id": c.receipt_id, "kind": c.kind,
            "old_amount": c.old_amount, "new_amount": c.new_amount,
            "old_received_on": c.old_received_on, "new_received_on": c.new_received_on,
            "reason": c.reason, "created_by": c.created_by, "created_at": c.created_at}


def transaction_dict(t: BankTransaction) -> dict[str, Any]:
    return {"id": t.id, "import_id": t.import_id, "own_account": t.own_account,
            "booked_on": t.booked_on, "number": t.number, "amount": t.amount,
            "currency": t.currency, "direction": t.direction, "reversal": t.reversal,
            "payer_name": t.payer_name, "payer_inn": t.payer_inn,
            "payer_account": t.payer_account, "payee_name": t.payee_name,
            "purpose": t.purpose, "entry_ref": t.entry_ref, "location": t.location,
            "status": t.status, "score": t.score, "reasons": t.reasons or [],
            "candidates": t.candidates or [], "suggested_payment_id": t.suggested_payment_id,
            "note": t.note, "resolved_by": t.resolved_by, "resolved_at": t.resolved_at}


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
