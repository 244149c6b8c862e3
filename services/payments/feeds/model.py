"""The common record every statement format is parsed into."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final, Literal, cast

Direction = Literal["credit", "debit"]
CREDIT: Final = "credit"
DEBIT: Final = "debit"
CENT = Decimal("0.01")


def amount_key(amount: Decimal) -> str:
    """One spelling per amount (500000 == 500000.00) so identities do not depend on how a
    bank happened to write the number."""
    cents = amount.quantize(CENT)
    if amount == cents:
        return str(cents)
    return format(amount.normalize(), "f")


def natural_identity(own_account: str, date: datetime.date, number: str, amount_key: str,
                     currency: str, payer_inn: str, direction: str) -> str:
    """``Transaction.identity`` of a record without a bank reference, first of its kind."""
    mark = "C" if direction == CREDIT else "D"
    return f"{own_account}|{date.isoformat()}|{number}|{amount_key} {currency}|{payer_inn}|{mark}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Transaction:
    """One movement on one of our accounts, whatever the file format.

    ``direction`` is seen from our side: ``credit`` = money came in.  ``payer_*`` and
    ``payee_*`` are the parties as written in the payment, so for a credit the payer is
    the client.  ``location`` says where in the file the record came from (for error
    reports and the review screen) and is not part of equality.
    """

    own_account: str
    date: datetime.date
    number: str
    amount: Decimal
    direction: Direction
    currency: str = "RUB"
    payer_name: str = ""
    payer_inn: str = ""
    payer_account: str = ""
    payee_name: str = ""
    payee_inn: str = ""
    payee_account: str = ""
    purpose: str = ""
    entry_ref: str = ""
    reversal: bool = False
    document_date: datetime.date | None = None
    document_type: str = ""
    occurrence: int = 1
    location: str = field(default="", compare=False)

    @property
    def identity(self) -> str:
        """Stable key for de-duplication across re-imports and overlapping files.

        The bank's own entry reference is unique per account when present; otherwise the
        natural key of a payment order (account, date, number, amount, payer INN).
        ``occurrence`` numbers identical unreferenced records inside one file (two 4.50
        coffees on the same day without references are two payments, not one).
        """
        if self.entry_ref:
            mark = "C" if self.direction == CREDIT else "D"
            base = f"{self.own_account}|ref:{self.entry_ref}|{mark}"
        else:
            base = natural_identity(self.own_account, self.date, self.number,
                                    amount_key(self.amount), self.currency, self.payer_inn,
                                    self.direction)
        return base if self.occurrence == 1 else f"{base}#{self.occurrence}"

    @property
    def is_incoming(self) -> bool:
        """Money a client may have paid us: a credit that is not a bank reversal."""
        return self.direction == CREDIT and not self.reversal


class _Building:
    """A Transaction's slots without its frozen ``__setattr__``: filled with plain
    attribute stores, then made the Transaction it is laid out as (CPython lets
    ``__class__`` change between classes of the same slots).  Four times cheaper than the
    dataclass's ``__init__``, which sets each field with object.__setattr__ from keyword
    arguments: for parsers that make one per document of a big file."""

    __slots__ = Transaction.__slots__


def new_transaction(own_account: str, date: datetime.date, number: str, amount: Decimal,
                    direction: Direction, currency: str, payer_name: str, payer_inn: str,
                    payer_account: str, payee_name: str, payee_inn: str, payee_account: str,
                    purpose: str, entry_ref: str, reversal: bool,
                    document_date: datetime.date | None, document_type: str,
                    occurrence: int, location: str) -> Transaction:
    """``Transaction(...)`` with every field given, in the order of the fields."""
    tx: Any = _Building()
    tx.own_account = own_account
    tx.date = date
    tx.number = number
    tx.amount = amount
    tx.direction = direction
    tx.currency = currency
    tx.payer_name = payer_name
    tx.payer_inn = payer_inn
    tx.payer_account = payer_account
    tx.payee_name = payee_name
    tx.payee_inn = payee_inn
    tx.payee_account = payee_account
    tx.purpose = purpose
    tx.entry_ref = entry_ref
    tx.reversal = reversal
    tx.document_date = document_date
    tx.document_type = document_type
    tx.occurrence = occurrence
    tx.location = location
    tx.__class__ = Transaction
    return cast(Transaction, tx)


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountBalance:
    """What the statement says about one account next to what its records add up to."""

    account: str
    currency: str = ""
    opening: Decimal | None = None
    closing: Decimal | None = None
    stated_credit: Decimal | None = None
    stated_debit: Decimal | None = None
    credit_total: Decimal = Decimal("0.00")
    debit_total: Decimal = Decimal("0.00")


@dataclass(frozen=True, kw_only=True, slots=True)
class StatementInfo:
    """Trailer yielded after the records of one statement (a 1C file, a camt ``Stmt``,
    an MT940 message): what the bank stated and what the parser found.

    ``warnings`` are inconsistencies that do not make the data unusable (totals that do
    not add up, a lying ``Кодировка``, skipped pending entries); show them to the user.
    """

    format: str
    statement_id: str = ""
    encoding: str = ""
    version: str = ""
    period_start: datetime.date | None = None
    period_end: datetime.date | None = None
    balances: tuple[AccountBalance, ...] = ()
    transactions: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(b.account for b in self.balances)


class Occurrences:
    """Numbers records without a bank reference that share an identity within one file.

    A bank reference is unique: the same one twice in a file is the same entry listed
    twice (overlapping pages), so those are not numbered and de-duplicate.  Keeps a 64-bit
    hash per distinct natural key (about 70 bytes each), the only state that grows with
    the file: 100,000 1C documents cost about 7 MB; the file is never held in memory.
    """

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}

    def stamp(self, tx: Transaction) -> Transaction:
        if tx.entry_ref:
            return tx
        count = self.number(tx.identity)
        return tx if count == 1 else replace(tx, occurrence=count)

    def number(self, identity: str) -> int:
        """The ``occurrence`` of the record whose identity (as the first one) is this."""
        # A 64-bit hash of the identity, as good as an 8-byte digest against collisions
        # and several times cheaper; it lives only while this file is read.
        key = hash(identity)
        count = self._seen.get(key, 0) + 1
        self._seen[key] = count
        return count


class Totals:
    """Running credit/debit sums per account, to check them against stated balances."""

    def __init__(self) -> None:
        self.credit: dict[str, Decimal] = {}
        self.debit: dict[str, Decimal] = {}

    def add(self, account: str, direction: str, amount: Decimal) -> None:
        side = self.credit if direction == CREDIT else self.debit
        side[account] = side.get(account, Decimal("0.00")) + amount

    def of(self, account: str) -> tuple[Decimal, Decimal]:
        zero = Decimal("0.00")
        return self.credit.get(account, zero), self.debit.get(account, zero)


def balance_warnings(b: AccountBalance) -> list[str]:
    """Arithmetic checks a correct statement always passes."""
    found: list[str] = []
    if b.stated_credit is not None and b.stated_credit != b.credit_total:
        found.append(f"account {b.account}: credits add up to {b.credit_total}, "
                     f"the statement says {b.stated_credit}")
    if b.stated_debit is not None and b.stated_debit != b.debit_total:
        found.append(f"account {b.account}: debits add up to {b.debit_total}, "
                     f"the statement says {b.stated_debit}")
    if b.opening is not None and b.closing is not None:
        expected = b.opening + b.credit_total - b.debit_total
        if expected != b.closing:
            found.append(f"account {b.account}: opening {b.opening} + credits "
                         f"{b.credit_total} - debits {b.debit_total} = {expected}, "
                         f"but the closing balance is {b.closing}")
    return found
