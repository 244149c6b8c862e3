"""1CClientBankExchange (versions 1.01-1.03), the Russian bank-client text format.

The file is ``Key=Value`` lines: a header, ``СекцияРасчСчет ... КонецРасчСчет`` balance
blocks, ``СекцияДокумент=<type> ... КонецДокумента`` documents and ``КонецФайла``.
Read one line at a time: only the current document is held in memory.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
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

MAGIC = "1CClientBankExchange"
DECLARED = {"windows": "cp1251", "dos": "cp866", "utf-8": "utf-8", "utf8": "utf-8"}
PURPOSE_LINES = tuple(f"НазначениеПлатежа{i}" for i in range(1, 7))
MAX_KEYS = 500  # a real document has about 60 keys; more means a runaway section


@dataclass
class _Section:
    """Keys of one balance block or document, with the line each came from."""

    start: int
    kind: str = ""
    values: dict[str, str] = field(default_factory=dict)
    where: dict[str, int] = field(default_factory=dict)

    def put(self, key: str, value: str, line: int) -> None:
        self.values[key] = value
        self.where[key] = line

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    def line_of(self, key: str) -> str:
        return f"line {self.where.get(key, self.start)}"


@dataclass
class _Balances:
    """СекцияРасчСчет blocks of one account; a multi-day file has one block per day."""

    opening: Decimal | None = None
    closing: Decimal | None = None
    credit: Decimal | None = None
    debit: Decimal | None = None


def parse(reader: io.BufferedReader, encoding: str) -> Iterator[Transaction | StatementInfo]:
    yield from _OneC(encoding).run(reader)


class _OneC:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.header: dict[str, str] = {}
        self.accounts: list[str] = []  # ordered: the first one is "the" account
        self.balances: dict[str, _Balances] = {}
        self.totals = Totals()
        self.occurrences = Occurrences()
        self.count = 0

    def run(self, reader: io.BufferedReader) -> Iterator[Transaction | StatementInfo]:
        section: _Section | None = None
        number = 0
        for number, text in lines(reader, self.encoding):
            if number == 1:
                self._check_magic(text)
                continue
            line = text.strip()
            if section is None:
                if line == "КонецФайла":
                    yield self._info()
                    return
                section = self._outside(line, number)
            elif line in ("КонецДокумента", "КонецРасчСчет"):
                yield from self._close(section, line, number)
                section = None
            else:
                self._inside(section, line, number)
        self._truncated(section, number)

    @staticmethod
    def _check_magic(text: str) -> None:
        if text.strip() != MAGIC:
            raise StatementError.at("line 1", f"expected '{MAGIC}', got '{text[:40]}'")

    def _outside(self, line: str, number: int) -> _Section | None:
        """Header keys, or the start of a section."""
        if line in ("КонецДокумента", "КонецРасчСчет"):
            raise StatementError.at(f"line {number}", f"{line} without a section to close")
        key, value = _split(line, number)
        if key == "СекцияРасчСчет" and not value:
            return _Section(number, key)
        if key == "СекцияДокумент":
            return _Section(number, value or "Документ")
        if key == "РасчСчет":
            self._own(value)
        elif key:
            self.header.setdefault(key, value)
            if len(self.header) > MAX_KEYS:
                raise StatementError.at(f"line {number}", f"more than {MAX_KEYS} header keys")
        return None

    def _inside(self, section: _Section, line: str, number: int) -> None:
        key, value = _split(line, number)
        if key in ("СекцияДокумент", "СекцияРасчСчет", "КонецФайла"):
            raise StatementError.at(f"line {number}", f"{key} inside the section started "
                                    f"at line {section.start}: its end line is missing")
        if key:
            section.put(key, value, number)
        if len(section.values) > MAX_KEYS:
            raise StatementError.at(f"line {number}", f"more than {MAX_KEYS} keys in the "
                                    f"section started at line {section.start}")

    def _close(self, section: _Section, line: str, number: int) -> Iterator[Transaction]:
        expected = "КонецРасчСчет" if section.kind == "СекцияРасчСчет" else "КонецДокумента"
        if line != expected:
            raise StatementError.at(f"line {number}", f"{line} closes the section started "
                                    f"at line {section.start}, expected {expected}")
        if section.kind == "СекцияРасчСчет":
            self._balance(section)
            return
        tx = self.occurrences.stamp(self._transaction(section))
        self.totals.add(tx.own_account, tx.direction, tx.amount)
        source = self._transfer_source(section, tx)
        if source:  # between two of our accounts: one record, but both balances moved
            self.totals.add(source, DEBIT, tx.amount)
        self.count += 1
        yield tx

    def _transfer_source(self, doc: _Section, tx: Transaction) -> str:
        if tx.direction != CREDIT:
            return ""
        for key in ("ПлательщикСчет", "ПлательщикРасчСчет"):
            if doc.get(key) in self.accounts and doc.get(key) != tx.own_account:
                return doc.get(key)
        return ""

    @staticmethod
    def _truncated(section: _Section | None, number: int) -> None:
        where = f"line {number}"
        if section is not None:
            raise StatementError.at(where, f"the file ends inside the section started at "
                                    f"line {section.start} (truncated?)")
        raise StatementError.at(where, "the file ends without КонецФайла (truncated?)")

    def _own(self, account: str) -> None:
        if account and account not in self.accounts:
            self.accounts.append(account)

    def _balance(self, section: _Section) -> None:
        account = section.get("РасчСчет")
        if not account:
            raise StatementError.at(f"line {section.start}", "СекцияРасчСчет without РасчСчет")
        self._own(account)
        block = self.balances.setdefault(account, _Balances())
        opening = _amount(section, "НачальныйОстаток", optional=True, signed=True)
        if block.opening is None:  # the first day's opening is the period's opening
            block.opening = opening
        block.closing = _amount(section, "КонечныйОстаток", optional=True, signed=True)
        block.credit = _add(block.credit, _amount(section, "ВсегоПоступило", optional=True))
        block.debit = _add(block.debit, _amount(section, "ВсегоСписано", optional=True))

    def _transaction(self, doc: _Section) -> Transaction:
        amount = _amount(doc, "Сумма")
        assert amount is not None  # not optional: _amount raised if missing
        document_date = _date(doc, "Дата")
        if document_date is None:
            raise StatementError.at(doc.line_of("Дата"), "Дата is missing in the document "
                                    f"started at line {doc.start}")
        direction, own = self._side(doc)
        posted = _date(doc, "ДатаПоступило" if direction == CREDIT else "ДатаСписано")
        return Transaction(
            own_account=own, date=posted or document_date, number=doc.get("Номер"),
            amount=amount, direction=direction, currency="RUB",
            payer_name=doc.get("Плательщик1") or doc.get("Плательщик"),
            payer_inn=doc.get("ПлательщикИНН"), payer_account=_payer_account(doc),
            payee_name=doc.get("Получатель1") or doc.get("Получатель"),
            payee_inn=doc.get("ПолучательИНН"), payee_account=_payee_account(doc),
            purpose=purpose(doc.values), document_date=document_date,
            document_type=doc.kind, location=f"line {doc.start}")

    def _side(self, doc: _Section) -> tuple[Direction, str]:
        """(direction, our account).  Incoming when the receiver's account is ours;
        when neither side's account is listed as ours, when only a receipt date is given."""
        own = set(self.accounts)
        for key in ("ПолучательСчет", "ПолучательРасчСчет"):
            if doc.get(key) in own:
                return CREDIT, doc.get(key)
        for key in ("ПлательщикСчет", "ПлательщикРасчСчет"):
            if doc.get(key) in own:
                return DEBIT, doc.get(key)
        default = self.accounts[0] if len(self.accounts) == 1 else ""
        if doc.get("ДатаПоступило") and not doc.get("ДатаСписано"):
            return CREDIT, default or _payee_account(doc)
        # A bank order between two foreign accounts (commission, a card settlement) still
        # moved our money if the file lists it: book it as spent from our only account.
        return DEBIT, default or _payer_account(doc)

    def _info(self) -> StatementInfo:
        warnings = self._encoding_warnings()
        balances = []
        for account in self.accounts:
            credit, debit = self.totals.of(account)
            stated = self.balances.get(account, _Balances())
            balance = AccountBalance(account=account, currency="RUB", opening=stated.opening,
                                     closing=stated.closing, stated_credit=stated.credit,
                                     stated_debit=stated.debit, credit_total=credit,
                                     debit_total=debit)
            warnings += balance_warnings(balance) if account in self.balances else []
            balances.append(balance)
        return StatementInfo(
            format="1c", encoding=self.encoding, version=self.header.get("ВерсияФормата", ""),
            period_start=values.ru_date(self.header.get("ДатаНачала", "")),
            period_end=values.ru_date(self.header.get("ДатаКонца", "")),
            balances=tuple(balances), transactions=self.count, warnings=tuple(warnings))

    def _encoding_warnings(self) -> list[str]:
        declared = self.header.get("Кодировка", "")
        expected = DECLARED.get(declared.lower())
        if expected and expected != self.encoding:
            return [f"Кодировка={declared} but the bytes are {self.encoding}"]
        return []


def _split(line: str, number: int) -> tuple[str, str]:
    """``Key=Value`` with stray spaces around either; a blank line is ("", "")."""
    if not line:
        return "", ""
    key, sep, value = line.partition("=")
    if key.strip() in ("СекцияРасчСчет", "КонецФайла") and not sep:
        return key.strip(), ""
    if not sep or not key.strip():
        raise StatementError.at(f"line {number}", f"expected Key=Value, got '{line[:60]}'")
    return key.strip(), value.strip()


def _amount(section: _Section, key: str, *, optional: bool = False,
            signed: bool = False) -> Decimal | None:
    text = section.get(key)
    if not text:
        if optional:
            return None
        raise StatementError.at(section.line_of(key), f"{key} is missing in the section "
                                f"started at line {section.start}")
    amount = values.ru_amount(text, signed=signed)
    if amount is None:
        raise StatementError.at(section.line_of(key), f"{key} '{text[:40]}' is not an amount")
    return amount


def _date(section: _Section, key: str) -> date | None:
    text = section.get(key)
    if not text:
        return None
    parsed = values.ru_date(text)
    if parsed is None:
        raise StatementError.at(section.line_of(key),
                                f"{key} '{text[:40]}' is not a date (DD.MM.YYYY)")
    return parsed


def _add(total: Decimal | None, amount: Decimal | None) -> Decimal | None:
    if amount is None:
        return total
    return amount if total is None else total + amount


def _payer_account(doc: _Section) -> str:
    return doc.get("ПлательщикСчет") or doc.get("ПлательщикРасчСчет")


def _payee_account(doc: _Section) -> str:
    return doc.get("ПолучательСчет") or doc.get("ПолучательРасчСчет")


def purpose(fields: dict[str, str]) -> str:
    """НазначениеПлатежа, or its continuation lines 1..6 when it is missing or cut short.

    The standard writes the whole text in НазначениеПлатежа and the same text split for
    printing in НазначениеПлатежа1..6; some programs write only one of the two.
    """
    whole = fields.get("НазначениеПлатежа", "")
    parts = [fields[k] for k in PURPOSE_LINES if fields.get(k)]
    if not parts:
        return whole
    joined = " ".join(parts)
    if _squashed(joined) in _squashed(whole):
        return whole
    if _squashed(joined).startswith(_squashed(whole)):  # whole was cut at a field limit
        return joined
    return f"{whole} {joined}" if whole else joined


def _squashed(text: str) -> str:
    return "".join(text.split())
