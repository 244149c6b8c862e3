"""1CClientBankExchange (versions 1.01-1.03), the Russian bank-client text format.

The file is ``Key=Value`` lines: a header, ``СекцияРасчСчет ... КонецРасчСчет`` balance
blocks, ``СекцияДокумент=<type> ... КонецДокумента`` documents and ``КонецФайла``.
Read a block of lines at a time: only the block and the current document are held in
memory.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import repeat
from operator import is_
from typing import Any

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
from services.payments.feeds.textio import line_blocks

MAGIC = "1CClientBankExchange"
DECLARED = {"windows": "cp1251", "dos": "cp866", "utf-8": "utf-8", "utf8": "utf-8"}
PURPOSE_LINES = tuple(f"НазначениеПлатежа{i}" for i in range(1, 7))
MAX_KEYS = 500  # a real document has about 60 keys; more means a runaway section
_ENDS = frozenset(("КонецДокумента", "КонецРасчСчет"))
_STRUCTURE = frozenset(("СекцияДокумент", "СекцияРасчСчет", "КонецФайла"))  # never a key inside


@dataclass
class _Section:
    """Keys of one balance block or document, with the line each came from."""

    start: int
    kind: str = ""
    values: dict[str, str] = field(default_factory=dict)
    where: Any = field(default_factory=dict)  # key -> line: a dict, or _LinesOf

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
        self._dates: dict[str, date | None] = {}

    def run(self, reader: io.BufferedReader) -> Iterator[Transaction | StatementInfo]:
        # The hot loop.  A document whose end line is in the same block and whose lines are
        # all plain "Key=Value" is read at once (``_plain_fields``); anything else (the
        # header, balances, blank lines, errors) goes a line at a time, as it always did.
        section: _Section | None = None
        values: dict[str, str] = {}
        where: dict[str, int] = {}
        end_line: str | None = None  # the document end line exactly as this file writes it
        number = 0
        for first, block in line_blocks(reader, self.encoding):
            index = 0
            if first == 1:
                self._check_magic(block[0])
                index = number = 1
            size = len(block)
            while index < size:
                text = block[index]
                number = first + index
                index += 1
                line = text.strip()
                if section is not None:
                    key, sep, value = line.partition("=")
                    if sep:
                        key = key.rstrip()
                        if key and key not in _STRUCTURE:
                            values[key] = value.lstrip()
                            where[key] = number
                            if len(values) > MAX_KEYS:
                                self._inside(section, line, number)
                            continue
                    if line in _ENDS:
                        if line == "КонецДокумента":
                            end_line = text
                        tx = self._close(section, line, number)
                        if tx is not None:
                            yield tx
                        section = None
                    else:
                        self._inside(section, line, number)
                elif line == "КонецФайла":
                    yield self._info()
                    return
                else:
                    section = self._outside(line, number)
                    if section is None:
                        continue
                    values, where = section.values, section.where
                    if end_line is None or section.kind == "СекцияРасчСчет":
                        continue
                    try:
                        end = block.index(end_line, index)
                    except ValueError:
                        continue
                    fields = _plain_fields(block, index, end, number + 1)
                    if fields is None:
                        continue
                    section.values, section.where = fields
                    number = first + end
                    index = end + 1
                    tx = self._close(section, "КонецДокумента", number)
                    if tx is not None:
                        yield tx
                    section = None
        self._truncated(section, number)

    @staticmethod
    def _check_magic(text: str) -> None:
        if text.strip() != MAGIC:
            got = text.strip()[:40]
            raise StatementError.at("line 1", f"expected '{MAGIC}', got '{got}'",
                                    "statement.line.magic", value=got)

    def _outside(self, line: str, number: int) -> _Section | None:
        """Header keys, or the start of a section."""
        if line in ("КонецДокумента", "КонецРасчСчет"):
            raise StatementError.at(f"line {number}", f"{line} without a section to close",
                                    "statement.line.orphan_end", name=line)
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
                raise StatementError.at(f"line {number}", f"more than {MAX_KEYS} header keys",
                                        "statement.line.too_many_header_keys",
                                        limit=MAX_KEYS)
        return None

    def _inside(self, section: _Section, line: str, number: int) -> None:
        key, value = _split(line, number)
        if key in ("СекцияДокумент", "СекцияРасчСчет", "КонецФайла"):
            raise StatementError.at(f"line {number}", f"{key} inside the section started "
                                    f"at line {section.start}: its end line is missing",
                                    "statement.line.unclosed", name=key, start=section.start)
        if key:
            section.put(key, value, number)
        if len(section.values) > MAX_KEYS:
            raise StatementError.at(f"line {number}", f"more than {MAX_KEYS} keys in the "
                                    f"section started at line {section.start}",
                                    "statement.line.too_many_keys", limit=MAX_KEYS,
                                    start=section.start)

    def _close(self, section: _Section, line: str, number: int) -> Transaction | None:
        expected = "КонецРасчСчет" if section.kind == "СекцияРасчСчет" else "КонецДокумента"
        if line != expected:
            raise StatementError.at(f"line {number}", f"{line} closes the section started "
                                    f"at line {section.start}, expected {expected}",
                                    "statement.line.wrong_end", name=line,
                                    start=section.start, expected=expected)
        if section.kind == "СекцияРасчСчет":
            self._balance(section)
            return None
        tx = self.occurrences.stamp(self._transaction(section))
        self.totals.add(tx.own_account, tx.direction, tx.amount)
        source = self._transfer_source(section, tx)
        if source:  # between two of our accounts: one record, but both balances moved
            self.totals.add(source, DEBIT, tx.amount)
        self.count += 1
        return tx

    def _transfer_source(self, doc: _Section, tx: Transaction) -> str:
        if tx.direction != CREDIT:
            return ""
        for key in ("ПлательщикСчет", "ПлательщикРасчСчет"):
            account = doc.values.get(key, "")
            if account in self.accounts and account != tx.own_account:
                return account
        return ""

    @staticmethod
    def _truncated(section: _Section | None, number: int) -> None:
        where = f"line {number}"
        if section is not None:
            raise StatementError.at(where, f"the file ends inside the section started at "
                                    f"line {section.start} (truncated?)",
                                    "statement.line.truncated_section", start=section.start)
        raise StatementError.at(where, "the file ends without КонецФайла (truncated?)",
                                "statement.line.truncated")

    def _own(self, account: str) -> None:
        if account and account not in self.accounts:
            self.accounts.append(account)

    def _balance(self, section: _Section) -> None:
        account = section.get("РасчСчет")
        if not account:
            raise StatementError.at(f"line {section.start}", "СекцияРасчСчет without РасчСчет",
                                    "statement.line.missing", field="РасчСчет",
                                    start=section.start)
        self._own(account)
        block = self.balances.setdefault(account, _Balances())
        opening = _amount(section, "НачальныйОстаток", optional=True, signed=True)
        if block.opening is None:  # the first day's opening is the period's opening
            block.opening = opening
        block.closing = _amount(section, "КонечныйОстаток", optional=True, signed=True)
        block.credit = _add(block.credit, _amount(section, "ВсегоПоступило", optional=True))
        block.debit = _add(block.debit, _amount(section, "ВсегоСписано", optional=True))

    def _transaction(self, doc: _Section) -> Transaction:
        v = doc.values
        amount = _plain_amount(v.get("Сумма", "")) or _amount(doc, "Сумма")
        assert amount is not None  # not optional: _amount raised if missing
        document_date = self._date(doc, "Дата")
        if document_date is None:
            raise StatementError.at(doc.line_of("Дата"), "Дата is missing in the document "
                                    f"started at line {doc.start}",
                                    "statement.line.missing", field="Дата", start=doc.start)
        direction, own = self._side(doc)
        posted = self._date(doc, "ДатаПоступило" if direction == CREDIT else "ДатаСписано")
        get = v.get
        return Transaction(
            own_account=own, date=posted or document_date, number=get("Номер", ""),
            amount=amount, direction=direction, currency="RUB",
            payer_name=get("Плательщик1") or get("Плательщик", ""),
            payer_inn=get("ПлательщикИНН", ""),
            payer_account=get("ПлательщикСчет") or get("ПлательщикРасчСчет", ""),
            payee_name=get("Получатель1") or get("Получатель", ""),
            payee_inn=get("ПолучательИНН", ""),
            payee_account=get("ПолучательСчет") or get("ПолучательРасчСчет", ""),
            purpose=purpose(v), document_date=document_date,
            document_type=doc.kind, location=f"line {doc.start}")

    def _date(self, doc: _Section, key: str) -> date | None:
        """``_date`` with the answers remembered: a statement has few distinct dates."""
        text = doc.values.get(key, "")
        known = self._dates.get(text)
        if known is None:
            known = _date(doc, key)
            if len(self._dates) < 10_000:
                self._dates[text] = known
        return known

    def _side(self, doc: _Section) -> tuple[Direction, str]:
        """(direction, our account).  Incoming when the receiver's account is ours;
        when neither side's account is listed as ours, when only a receipt date is given."""
        own = self.accounts
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


class _LinesOf:
    """The line each key of a document read at once came from, worked out only when an
    error names it (most documents never need it)."""

    def __init__(self, keys: tuple[str, ...], number: int) -> None:
        self.keys, self.number = keys, number

    def get(self, key: str, default: int) -> int:
        for index in range(len(self.keys) - 1, -1, -1):  # the last one counts, as in a dict
            if self.keys[index] == key:
                return self.number + index
        return default


def _plain_fields(block: list[str], start: int, end: int,
                  number: int) -> tuple[dict[str, str], Any] | None:
    """The keys of ``block[start:end]`` (a document's lines, the first one numbered
    ``number``) with the lines they came from, when every line is ``Key=Value``: what the
    line-at-a-time reading gives, computed a column at a time.  None for anything else
    (a blank or malformed line, a structure key, too many keys): read those one by one."""
    fast = _clean_fields(block, start, end, number)
    if fast is not None:
        return fast
    lines = list(map(str.strip, block[start:end]))
    if not lines:
        return None
    keys, signs, texts = zip(*map(str.partition, lines, repeat("=", len(lines))), strict=True)
    if "" in signs:
        return None
    keys = tuple(map(str.rstrip, keys))
    if "" in keys or not _STRUCTURE.isdisjoint(keys):
        return None
    values = dict(zip(keys, map(str.lstrip, texts), strict=True))
    if len(values) > MAX_KEYS:
        return None
    return values, _LinesOf(keys, number)


def _clean_fields(block: list[str], start: int, end: int,
                  number: int) -> tuple[dict[str, str], Any] | None:
    """``_plain_fields`` for the usual document, whose lines need no stripping and whose
    keys are all different: one split per line, and a check (identifier keys, values
    that strip to themselves) that stripping would have changed nothing.  None when that
    does not hold: the general reading decides."""
    lines = block[start:end]
    count = len(lines)
    try:
        values = dict(map(str.split, lines, repeat("=", count), repeat(1, count)))
    except ValueError:  # a line without "="
        return None
    if (len(values) != count or not 0 < count <= MAX_KEYS or "" in values
            or not "".join(values).isidentifier() or not _STRUCTURE.isdisjoint(values)):
        return None
    texts = list(values.values())
    if not all(map(is_, map(str.strip, texts), texts)):
        return None
    return values, _LinesOf(tuple(values), number)


def _split(line: str, number: int) -> tuple[str, str]:
    """``Key=Value`` with stray spaces around either; a blank line is ("", "")."""
    if not line:
        return "", ""
    key, sep, value = line.partition("=")
    if key.strip() in ("СекцияРасчСчет", "КонецФайла") and not sep:
        return key.strip(), ""
    if not sep or not key.strip():
        raise StatementError.at(f"line {number}", f"expected Key=Value, got '{line[:60]}'",
                                "statement.line.key_value", value=line[:60])
    return key.strip(), value.strip()


def _plain_amount(text: str) -> Decimal | None:
    """"1234.56" (the usual spelling) without a regular expression; None for anything
    else, which ``values.ru_amount`` then judges."""
    whole, dot, cents = text.partition(".")
    if (0 < len(whole) <= 16 and whole.isascii() and whole.isdigit()
            and (not dot or (0 < len(cents) <= 2 and cents.isascii() and cents.isdigit()))):
        return Decimal(text) if len(cents) == 2 else Decimal(text).quantize(values.CENT)
    return None


def _amount(section: _Section, key: str, *, optional: bool = False,
            signed: bool = False) -> Decimal | None:
    text = section.get(key)
    if not text:
        if optional:
            return None
        raise StatementError.at(section.line_of(key), f"{key} is missing in the section "
                                f"started at line {section.start}",
                                "statement.line.missing", field=key, start=section.start)
    amount = values.ru_amount(text, signed=signed)
    if amount is None:
        raise StatementError.at(section.line_of(key), f"{key} '{text[:40]}' is not an amount",
                                "statement.line.amount", field=key, value=text[:40])
    return amount


def _date(section: _Section, key: str) -> date | None:
    text = section.get(key)
    if not text:
        return None
    parsed = values.ru_date(text)
    if parsed is None:
        raise StatementError.at(section.line_of(key),
                                f"{key} '{text[:40]}' is not a date (DD.MM.YYYY)",
                                "statement.line.date", field=key, value=text[:40])
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
