"""The statement import's set-based matching (evidence in SQL, a chunk at a time) decides
exactly what the row-by-row matcher decides, transaction after transaction, over a
generated statement full of the hard cases: equal instalments of one client, partial
payments, someone else paying a named invoice, files without INNs, contracts, strangers,
outgoing money and second payments of an invoice already paid.

The reference is ``matching.match_transaction`` given every open planned payment, with
each confident match paying its payment before the next transaction is looked at: the
meaning of "one by one"."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import text

from services.payments.domain.matching import (
    CONFIDENT,
    Candidate,
    canonical_number,
    match_transaction,
)
from services.payments.feeds import Transaction
from services.payments.store import statements as imports
from tests.service.payments.conftest import OUR_ACCOUNT, Payments
from tests.service.payments.test_payments_imports import statement

BASE = date(2024, 3, 1)
AMOUNTS = [D("1000.00"), D("2500.00"), D("2500.00"), D("4990.50"), D("12000.00")]


@dataclass
class Plan:
    id: int
    deal_id: int
    inn: str
    amount: D
    due: date
    invoice: str
    contract: str


def generate(seed: int, clients: int = 40, count: int = 400) -> tuple[list[Plan],
                                                                       list[Transaction]]:
    rng = random.Random(seed)
    plans: list[Plan] = []
    for c in range(clients):
        inn = f"77{c:08d}" if c % 9 else ""  # every ninth client has no INN on file
        contract = f"Д-{c}/2024" if c % 4 == 0 else ""
        for k in range(rng.randint(1, 4)):
            plans.append(Plan(id=len(plans) + 1, deal_id=c + 1, inn=inn,
                              amount=rng.choice(AMOUNTS),
                              due=BASE + timedelta(days=rng.randint(0, 90)),
                              invoice=f"С-{c}-{k}" if rng.random() < 0.7 else "",
                              contract=contract))
    txs = []
    for n in range(count):
        p = rng.choice(plans)
        kind = rng.randrange(10)
        day = p.due + timedelta(days=rng.randint(-40, 40))
        inn, amount = p.inn, p.amount
        named = f"Оплата по счету № {p.invoice}" if p.invoice else "Оплата по договору"
        if kind == 0:
            purpose = "Оплата услуг"  # no document: the INN and the amount decide
        elif kind == 1:
            amount, purpose = p.amount - D("100.00"), named  # part of it
        elif kind == 2:
            inn, purpose = "5000000001", named  # a parent company pays
        elif kind == 3:
            inn, purpose = "", named  # the file gives no INN
        elif kind == 4:
            purpose = f"Оплата по договору {p.contract}" if p.contract else named
        elif kind == 5:
            inn, amount, purpose = "9909000012", D("7.77"), "Возврат депозита"
        elif kind == 6:
            inn, purpose = "", "Оплата"  # no INN, no document: the amount near the due date
        else:
            purpose = named
        txs.append(Transaction(
            own_account=OUR_ACCOUNT, date=day, number=str(5000 + n), amount=amount,
            direction="debit" if n % 37 == 0 else "credit", payer_name=f"Плательщик {n}",
            payer_inn=inn, payer_account="40702810100000000009", payee_name="Мы",
            payee_inn="7700000000", purpose=purpose))
    return plans, txs


def expected(plans: list[Plan], txs: list[Transaction]) -> list[tuple[Any, ...]]:
    """(status, suggested payment, candidates, score, reasons) of each credit, one by one."""
    open_ = {p.id: Candidate(id=p.id, deal_id=p.deal_id, client_inn=p.inn,
                             amount_outstanding=p.amount, due_date=p.due,
                             invoice_numbers=(p.invoice,) if p.invoice else (),
                             contract_numbers=(p.contract,) if p.contract else ())
             for p in plans}
    found = []
    for tx in txs:
        if tx.direction != "credit":
            continue
        result = match_transaction(tx, list(open_.values()))
        status = {"confident": "matched", "doubtful": "review"}.get(result.kind, "unmatched")
        if result.kind == CONFIDENT:
            del open_[result.payment_id]  # paid in full: nobody else's money now
        found.append((status, result.payment_id, result.candidates,
                      D(str(result.score)).quantize(D("0.01")), result.reasons))
    return found


def load(payments: Payments, plans: list[Plan]) -> None:
    """Clients, deals and plans straight into the projection and the plan table (one
    client and one deal per client number, the client's INN or none)."""
    inns = {p.deal_id: p.inn for p in plans}
    with payments.db() as db:
        for deal_id, inn in inns.items():
            db.execute(text("INSERT INTO client_refs (client_id, name, inn, manager_id, "
                            "updated_at) VALUES (:id, 'Клиент', :inn, 7, now())"),
                       {"id": deal_id, "inn": inn or None})
            db.execute(text("INSERT INTO deal_refs (deal_id, name, client_id, manager_id, "
                            "status, version, updated_at) VALUES (:id, 'Сделка', :client, 7, "
                            "'open', 1, now())"), {"id": deal_id, "client": deal_id})
        for p in plans:
            db.execute(text(
                "INSERT INTO planned_payments (id, deal_id, amount, currency, due_date, "
                "invoice_number, invoice_key, contract_number, contract_key, received_amount,"
                " outstanding, status, created_at, version) VALUES (:id, :deal, :amount, "
                "'RUB', :due, :inv, :inv_key, :con, :con_key, 0, :amount, 'planned', now(), "
                "1)"), {"id": p.id, "deal": p.deal_id, "amount": p.amount,
                        "due": p.due, "inv": p.invoice or None,
                        "inv_key": canonical_number(p.invoice) if p.invoice else None,
                        "con": p.contract or None,
                        "con_key": canonical_number(p.contract) if p.contract else None})
        db.commit()


def shifted(plans: list[Plan]) -> list[Plan]:
    """The same plans under the ids the database holds them by."""
    return [Plan(id=900_000 + p.id, deal_id=900_000 + p.deal_id, inn=p.inn, amount=p.amount,
                 due=p.due, invoice=p.invoice, contract=p.contract) for p in plans]


@pytest.mark.parametrize("chunk", [5000, 23], ids=["one chunk", "chunks of 23"])
def test_set_based_matching_decides_as_the_row_by_row_matcher(payments, monkeypatch, chunk):
    # small chunks make payments paid by one chunk be read by the next, and make chunks end
    # early when a transaction's evidence was just paid away
    monkeypatch.setattr(imports, "CHUNK", chunk)
    plans, txs = generate(seed=15)
    plans = shifted(plans)
    load(payments, plans)
    payments.our_account()
    want = expected(plans, txs)
    assert {w[0] for w in want} == {"matched", "review", "unmatched"}  # every outcome occurs
    assert sum(w[0] == "matched" for w in want) >= 40

    job = payments.imported(statement(*txs), "generated.txt")
    assert job["status"] == "done", job
    got = [(t.status, t.suggested_payment_id, list(t.candidates or []),
            D(str(t.score)).quantize(D("0.01")), list(t.reasons or []))
           for t in payments.transactions(direction="credit")]
    assert len(got) == len(want)
    for number, (mine, theirs) in enumerate(zip(got, want, strict=True)):
        assert mine == theirs, (number, json.dumps([str(x) for x in mine], ensure_ascii=False))
    receipts = [r for r in want if r[0] == "matched"]
    assert job["result"]["matched"] == len(receipts)


def test_a_transaction_another_import_wrote_meanwhile_is_left_to_it(payments, monkeypatch):
    # An import matches its new transactions before it writes them.  When another import
    # commits one of them in between, the writing finds it taken: the import then
    # de-duplicates and matches again after writing, so that transaction is a duplicate
    # here, and everything else is decided as if the file never held it.
    plans, txs = generate(seed=16, clients=20, count=150)
    plans = shifted(plans)
    load(payments, plans)
    payments.our_account()
    taken: list[str] = []
    matched_fresh = imports.match_new

    def commit_one_elsewhere(work, where, params, on_progress, table="bank_transactions"):
        outcome = matched_fresh(work, where, params, on_progress, table)
        if table == "fresh_transactions" and not taken:
            row = work.session.execute(text(
                "SELECT f.* FROM fresh_transactions f JOIN match_results r ON r.tx_id = f.id"
                " WHERE r.status = 'matched' ORDER BY f.id LIMIT 1")).mappings().one()
            taken.append(row["number"])
            with payments.db() as other:
                job = other.execute(text(
                    "INSERT INTO import_jobs (kind, filename, size, status, created_at, "
                    "attempts) VALUES ('upload', 'other.txt', 1, 'done', now(), 0) "
                    "RETURNING id")).scalar_one()
                other.execute(text(
                    "INSERT INTO bank_transactions (identity, import_id, own_account, "
                    "booked_on, number, amount, currency, direction, reversal, payer_name, "
                    "payer_inn, payer_account, payee_name, payee_inn, purpose, entry_ref, "
                    "location, status) VALUES (:identity, :job, :own_account, :booked_on, "
                    ":number, :amount, :currency, :direction, :reversal, :payer_name, "
                    ":payer_inn, :payer_account, :payee_name, :payee_inn, :purpose, "
                    ":entry_ref, :location, 'unmatched')"), {**row, "job": job})
                other.commit()
        return outcome

    monkeypatch.setattr(imports, "match_new", commit_one_elsewhere)
    job = payments.imported(statement(*txs), "generated.txt")
    assert job["status"] == "done", job
    assert job["attempts"] == 0  # done at once, not after a failed attempt and a retry
    assert len(taken) == 1 and job["result"]["duplicates"] == 1
    want = expected(plans, [t for t in txs if t.number != taken[0]])
    got = [(t.status, t.suggested_payment_id, list(t.candidates or []),
            D(str(t.score)).quantize(D("0.01")), list(t.reasons or []))
           for t in payments.transactions(direction="credit", import_id=job["id"])]
    assert got == want
    with payments.db() as db:
        receipts = db.execute(text(
            "SELECT count(*) FROM receipts r JOIN bank_transactions b "
            "ON b.id = r.bank_transaction_id WHERE b.import_id = :job"),
            {"job": job["id"]}).scalar_one()
        events = db.execute(text("SELECT count(*) FROM outbox WHERE type = 'payment_received'")
                            ).scalar_one()
    assert receipts == events == job["result"]["matched"] == sum(w[0] == "matched" for w in want)
