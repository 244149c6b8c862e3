"""The statement import's rules, no SQL: the keys a transaction is known and matched by,
what one chunk of transactions pays, and the tallies of a run.  ``store.statements`` loads
the rows and the evidence and writes back what these functions decide."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.payments import domain
from services.payments.domain.matching import (
    CONFIDENT,
    Candidate,
    Evidence,
    MatchResult,
    canonical_inn,
    decide,
)
from services.payments.feeds import Transaction

MAX_IDENTITY = 400


def normalise_account(account: str) -> str:
    return "".join(account.split()).upper()


def identity_key(tx: Transaction) -> str:
    """The de-duplication key; bounded, so a freak value cannot break the unique index."""
    identity = tx.identity
    if len(identity) > MAX_IDENTITY:
        return "sha256:" + hashlib.sha256(identity.encode()).hexdigest()
    return identity


@dataclass
class Staged:
    records: int = 0
    credits: int = 0
    debits: int = 0
    statements: int = 0
    warnings: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)
    # seconds spent writing rows to COPY (the rest of reading the file is parsing)
    copy_seconds: float = 0.0


@dataclass
class Matched:
    matched: int = 0
    review: int = 0
    unmatched: int = 0
    amount_matched: Decimal = Decimal("0.00")
    deals: set[int] = field(default_factory=set)
    # receipts decided but not yet recorded (their transactions are not written yet)
    receipts: int = 0
    # seconds per step of matching (keys, evidence, rules, writes): where the time goes
    steps: dict[str, float] = field(default_factory=dict)

    def took(self, step: str, since: float) -> float:
        moment = time.monotonic()
        self.steps[step] = self.steps.get(step, 0.0) + moment - since
        return moment


@dataclass
class Paid:
    """A planned payment this chunk paid: its new state and the version it was read at."""

    id: int
    deal_id: int
    currency: str
    amount: Decimal
    received: Decimal
    status: str
    outstanding: Decimal
    version: int


def as_transaction(row: Any) -> Transaction:
    """A stored transaction as the keys and rules read it (``candidate_query``: the purpose
    too; ``matching.decide``: direction, reversal, amount, currency, date and payer INN)."""
    return Transaction(own_account="", date=row.booked_on, number="", amount=row.amount,
                       direction=row.direction, currency=row.currency, reversal=row.reversal,
                       payer_inn=row.payer_inn, purpose=row.purpose)


def evidence_of(fact: Any) -> Evidence:
    return Evidence(
        candidate=Candidate(id=fact.id, deal_id=fact.deal_id,
                            client_inn=canonical_inn(fact.client_inn),
                            amount_outstanding=fact.outstanding, due_date=fact.due_date,
                            currency=fact.currency),
        inn=fact.inn, amount=fact.equal, partial=fact.partial, number=fact.named,
        in_window=fact.near)


class Clock:
    """Seconds spent in each phase of an import (shown with its result)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        moment = time.monotonic()
        self.laps[name] = round(moment - self._last, 3)
        self._last = moment


def decide_chunk(chunk: Iterable[tuple[Any, Transaction, list[Any]]],
                 paid: dict[int, Paid]) -> Iterator[tuple[Any, MatchResult]]:
    """Decide a chunk's transactions in file order (``chunk``: each row with its
    transaction and the evidence fetched for it, taken one at a time), adding the planned
    payments the confident ones pay to ``paid``.  A payment paid earlier in the chunk is no
    longer open for a later transaction, exactly as if they were matched one by one; when
    that leaves a transaction without the evidence its rule was pruned to, the decisions
    end before it (the next chunk reads it afresh)."""
    for row, tx, facts in chunk:
        live = [f for f in facts if f.id not in paid]
        if len(live) < len(facts) and facts[0].pruned_to != "c" and not any(
                f.equal and (f.inn if facts[0].pruned_to == "a" else f.named) for f in live):
            return  # its rule's evidence is gone: the next chunk reads its hits afresh
        result = decide(tx, [evidence_of(f) for f in live])
        if result.kind == CONFIDENT and result.payment_id is not None:
            fact = next(f for f in live if f.id == result.payment_id)
            received = fact.received_amount + tx.amount
            status = domain.payment_status(fact.amount, received)
            paid[fact.id] = Paid(fact.id, fact.deal_id, fact.currency, fact.amount, received,
                                  status,
                                  domain.outstanding_of(fact.amount, received, status),
                                  fact.version)
        yield row, result
