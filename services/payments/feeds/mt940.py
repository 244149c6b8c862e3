"""SWIFT MT940 customer statements: ``:20:`` reference, ``:25:`` account, ``:60F:``
opening balance, ``:61:`` statement lines each followed by an optional ``:86:``,
``:62F:`` closing balance.  Several messages may follow each other, with or without the
``{1:...}{2:...}{4:`` envelope.  Read one line at a time.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from services.payments.feeds import values
from services.payments.feeds.errors import StatementError
from services.payments.feeds.model import (
    CREDIT,
    DEBIT,
    AccountBalance,
    Direction,
    Occurrences,
    StatementInfo,
    Totals,
    Transaction,
    balance_warnings,
)
from services.payments.feeds.textio import lines

_TAG = re.compile(r":([0-9]{2}[A-Z]?):(.*)")
_LINE61 = re.compile(
    r"(?P<value>[0-9]{6})(?P<entry>[0-9]{4})?(?P<mark>R?[CD]|E[CD])(?P<funds>[A-Z])?"
    r"(?P<amount>[0-9]{1,15},[0-9]{0,2})(?P<type>[A-Z][A-Z0-9]{3})(?P<rest>.*)")
_BALANCE = re.compile(r"(?P<mark>[CD])(?P<date>[0-9]{6})(?P<currency>[A-Z]{3})"
                      r"(?P<amount>[0-9]{1,15},[0-9]{0,2})")
_STRUCTURED = re.compile(r"[0-9]{3}\?")
# SEPA keywords inside German ?20-?29 subfields: "EREF+INV1024SVWZ+Invoice 1024"
_SEPA_KEY = re.compile(r"(?<=\S)(?=(?:EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE)\+)")
_BIC_OR_BIK = re.compile(r"[A-Z0-9]{8}(?:[A-Z0-9]{3})?|[0-9]{9}")
WRAP = 65  # :86: is 6 lines of 65 characters; a full line was cut mid-word
NO_REFERENCE = {"", "NONREF"}
MAX_LINES = 100  # :86: has at most 6 lines; more is not a statement


@dataclass
class _Field:
    tag: str
    line: int
    parts: list[str]


@dataclass
class _Message:
    start: int
    reference: str
    account: str = ""
    currency: str = ""
    opening: Decimal | None = None
    closing: Decimal | None = None
    period: list[date | None] = field(default_factory=lambda: [None, None])
    pending: Transaction | None = None  # a :61: waiting for its :86:
    count: int = 0
    closed: bool = False
    totals: Totals = field(default_factory=Totals)


def parse(reader: io.BufferedReader, encoding: str) -> Iterator[Transaction | StatementInfo]:
    yield from _Mt940(encoding).run(reader)


class _Mt940:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.message: _Message | None = None
        self.messages = 0
        self.occurrences = Occurrences()

    def run(self, reader: io.BufferedReader) -> Iterator[Transaction | StatementInfo]:
        current: _Field | None = None
        number = 0
        for number, text in lines(reader, self.encoding):
            text = _unwrap(text)
            tag = _TAG.match(text)
            if tag or _is_separator(text):
                if current is not None:
                    yield from self._field(current)
                current = _Field(tag[1], number, [tag[2]]) if tag else None
            elif current is not None:
                current.parts.append(text)
                if len(current.parts) > MAX_LINES:
                    raise StatementError.at(f"line {number}", f":{current.tag}: runs over "
                                            f"{MAX_LINES} lines")
        if current is not None:
            yield from self._field(current)
        self._finish(number)

    def _finish(self, number: int) -> None:
        if self.messages == 0:
            raise StatementError.at(f"line {number}", "no :20: statement message")
        if self.message is not None and not self.message.closed:
            raise StatementError.at(f"line {number}", "the file ends before the :62F: "
                                    f"of the message started at line {self.message.start}")

    def _field(self, f: _Field) -> Iterator[Transaction | StatementInfo]:
        if f.tag == "20":
            self._open(f)
            return
        msg = self.message
        if msg is None or msg.closed:
            # after :62F: only :64:, :65: and a statement-level :86: may follow
            if f.tag in ("25", "60F", "60M", "61", "62F", "62M") or msg is None and f.tag == "86":
                raise StatementError.at(f"line {f.line}", f":{f.tag}: outside a message "
                                        "(no :20: before it)")
            return
        if f.tag == "25":
            msg.account = _account(f.parts[0])
        elif f.tag in ("60F", "60M"):
            msg.opening, msg.currency, msg.period[0] = _balance(f)
        elif f.tag == "61":
            yield from self._flush(msg)
            msg.pending = self._statement_line(msg, f)
        elif f.tag == "86" and msg.pending is not None:
            msg.pending = _with_info(msg.pending, f)
            yield from self._flush(msg)
        elif f.tag in ("62F", "62M"):
            yield from self._flush(msg)
            msg.closing, _, msg.period[1] = _balance(f)
            msg.closed = True
            yield _info(msg, self.encoding)

    def _open(self, f: _Field) -> None:
        if self.message is not None and not self.message.closed:
            raise StatementError.at(f"line {f.line}", ":20: starts a new message before the "
                                    f":62F: of the one started at line {self.message.start}")
        self.messages += 1
        self.message = _Message(f.line, f.parts[0].strip())

    def _flush(self, msg: _Message) -> Iterator[Transaction]:
        if msg.pending is None:
            return
        tx = self.occurrences.stamp(msg.pending)
        msg.pending = None
        msg.totals.add(tx.own_account, tx.direction, tx.amount)
        msg.count += 1
        yield tx

    def _statement_line(self, msg: _Message, f: _Field) -> Transaction:
        where = f"line {f.line}"
        if not msg.account or not msg.currency:
            raise StatementError.at(where, ":61: before the :25: account and :60F: balance")
        found = _LINE61.match(f.parts[0])
        if not found:
            raise StatementError.at(where, f":61: '{f.parts[0][:40]}' is not a statement line "
                                    "(YYMMDD[MMDD]C|D|RC|RD amount,cents type reference)")
        value_date = values.yymmdd(found["value"])
        if value_date is None:
            raise StatementError.at(where, f":61: '{found['value']}' is not a date (YYMMDD)")
        amount = values.swift_amount(found["amount"])
        assert amount is not None  # the regex already checked the shape
        customer, _, bank = found["rest"].partition("//")
        mark = found["mark"]
        # RC reverses a credit (money goes out), RD reverses a debit (money comes back)
        direction: Direction = CREDIT if mark in ("C", "RD", "EC") else DEBIT
        return Transaction(
            own_account=msg.account, date=_entry_date(value_date, found["entry"], where),
            number="" if customer.strip() in NO_REFERENCE else customer.strip(),
            amount=amount, currency=msg.currency,
            direction=direction,
            reversal=mark.startswith("R"),
            entry_ref="" if bank.strip() in NO_REFERENCE else bank.strip(),
            document_type=found["type"], location=where,
            purpose=" ".join(p.strip() for p in f.parts[1:]))


def _unwrap(text: str) -> str:
    """Drop the SWIFT envelope around block 4: ``{1:...}{2:...}{4:`` and ``-}``."""
    start = text.find("{4:")
    if text.startswith("{") and start >= 0:
        return text[start + 3:]
    return text


def _is_separator(text: str) -> bool:
    stripped = text.strip()
    return stripped in ("", "-") or stripped.startswith(("-}", "{"))


def _account(value: str) -> str:
    value = value.strip()
    left, slash, right = value.partition("/")
    return right.strip() if slash and _BIC_OR_BIK.fullmatch(left) else value


def _balance(f: _Field) -> tuple[Decimal, str, date | None]:
    found = _BALANCE.fullmatch(f.parts[0].strip())
    if not found:
        raise StatementError.at(f"line {f.line}", f":{f.tag}: '{f.parts[0][:40]}' is not a "
                                "balance (C|D YYMMDD currency amount,cents)")
    amount = values.swift_amount(found["amount"])
    assert amount is not None
    if found["mark"] == "D":
        amount = -amount
    return amount, found["currency"], values.yymmdd(found["date"])


def _entry_date(value_date: date, entry: str | None, where: str) -> date:
    """The booking date MMDD borrows its year from the value date, across New Year."""
    if not entry:
        return value_date
    year = value_date.year
    month = int(entry[:2])
    if month == 12 and value_date.month == 1:
        year -= 1
    elif month == 1 and value_date.month == 12:
        year += 1
    booked = values.ru_date(f"{entry[2:]}.{entry[:2]}.{year}")
    if booked is None:
        raise StatementError.at(where, f":61: entry date '{entry}' is not a date (MMDD)")
    return booked


def _with_info(tx: Transaction, f: _Field) -> Transaction:
    text = _join86(f.parts)
    name = account = ""
    if _STRUCTURED.match(text):
        sub = re.findall(r"\?([0-9]{2})([^?]*)", text)
        purpose = _SEPA_KEY.sub(" ", "".join(v for k, v in sub
                                             if "20" <= k <= "29" or "60" <= k <= "63"))
        name = "".join(v for k, v in sub if k in ("32", "33"))
        account = "".join(v for k, v in sub if k == "31")
    else:
        purpose = text
    purpose = " ".join(p for p in (purpose.strip(), tx.purpose) if p)
    if tx.direction == CREDIT:
        return replace(tx, purpose=purpose, payer_name=name or tx.payer_name,
                       payer_account=account or tx.payer_account)
    return replace(tx, purpose=purpose, payee_name=name or tx.payee_name,
                   payee_account=account or tx.payee_account)


def _join86(parts: list[str]) -> str:
    text = parts[0]
    for previous, part in zip(parts, parts[1:], strict=False):
        # a 65-character line was cut by the line limit, not at a word boundary
        text += ("" if len(previous) >= WRAP or _STRUCTURED.match(parts[0]) else " ") + part
    return text


def _info(msg: _Message, encoding: str) -> StatementInfo:
    credit, debit = msg.totals.of(msg.account)
    balance = AccountBalance(account=msg.account, currency=msg.currency, opening=msg.opening,
                             closing=msg.closing, credit_total=credit, debit_total=debit)
    return StatementInfo(format="mt940", statement_id=msg.reference, encoding=encoding,
                         period_start=msg.period[0], period_end=msg.period[1],
                         balances=(balance,), transactions=msg.count,
                         warnings=tuple(balance_warnings(balance)))
