"""1CClientBankExchange (versions 1.01-1.03), the Russian bank-client text format.

The file is ``Key=Value`` lines: a header, ``СекцияРасчСчет ... КонецРасчСчет`` balance
blocks, ``СекцияДокумент=<type> ... КонецДокумента`` documents and ``КонецФайла``.
Read a block of text at a time: only the block and the current document are held in
memory.  A document whose keys come in an order seen before is read with one compiled
pattern for that order (``_Layout``); anything else goes a line at a time.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
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
    natural_identity,
    new_transaction,
)
from services.payments.feeds.textio import text_blocks

MAGIC = "1CClientBankExchange"
DECLARED = {"windows": "cp1251", "dos": "cp866", "utf-8": "utf-8", "utf8": "utf-8"}
PURPOSE_LINES = tuple(f"НазначениеПлатежа{i}" for i in range(1, 7))
MAX_KEYS = 500  # a real document has about 60 keys; more means a runaway section
_ENDS = frozenset(("КонецДокумента", "КонецРасчСчет"))
_STRUCTURE = frozenset(("СекцияДокумент", "СекцияРасчСчет", "КонецФайла"))  # never a key inside
# The keys a transaction is made of, in the order ``_OneC._document`` takes them.
USED = ("Номер", "Дата", "Сумма", "ДатаПоступило", "ДатаСписано", "Плательщик1", "Плательщик",
        "ПлательщикИНН", "ПлательщикСчет", "ПлательщикРасчСчет", "Получатель1", "Получатель",
        "ПолучательИНН", "ПолучательСчет", "ПолучательРасчСчет", "НазначениеПлатежа",
        *PURPOSE_LINES)
DOCUMENT = "СекцияДокумент="
MAX_LAYOUTS = 64  # orders of keys remembered per file; a real bank writes one or a few
# A document made of plain "Key=Value" lines, to learn the order of its keys from.
_PLAIN_DOCUMENT = re.compile(r"СекцияДокумент=([^\r\n]*)\r?\n((?:[^\r\n=]*=[^\r\n]*\r?\n)"
                             rf"{{0,{MAX_KEYS}}})КонецДокумента\r?(?:\n|\Z)")
_PAIRS = re.compile(r"([^\r\n=]*)=([^\r\n]*)\r?\n")
_NEVER = re.compile(r"(?!)")


@dataclass
class _Section:
    """Keys of one balance block or document, with the line each came from."""

    start: int
    kind: str = ""
    values: dict[str, str] = field(default_factory=dict)
    where: dict[str, int] = field(default_factory=dict)  # key -> line

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
        self._layouts: dict[tuple[str, ...], _Layout] = {}
        self._clean_keys: set[str] = set()  # keys that need no stripping, no structure
        # the layout that read the last document at once: its pattern's match, the
        # groups of USED and the number of lines
        self._match: Any = _NEVER.match
        self._pick: tuple[int, ...] = ()
        self._lines = 0

    def run(self, reader: io.BufferedReader) -> Iterator[Transaction | StatementInfo]:
        # The hot loop.  Outside a section, a line that starts a document is tried with the
        # pattern of the order of keys that read the last document (``_match``), then with
        # the one of its own order (``_learned``); anything else (the header, balances, an
        # unusual document, an error) goes a line at a time.
        section: _Section | None = None
        values: dict[str, str] = {}
        where: dict[str, int] = {}
        number = 0
        for first, text in text_blocks(reader, self.encoding):
            pos, size, number = 0, len(text), first - 1
            if first == 1:
                end = text.find("\n")
                self._check_magic(text[:end] if end >= 0 else text)
                pos, number = (end + 1 if end >= 0 else size), 1
            while pos < size:
                if section is None and text.startswith(DOCUMENT, pos):
                    found = self._match(text, pos)
                    if found is not None:
                        tx = self._at_once(found.group(1), found.group(*self._pick), number + 1)
                        lines = self._lines
                    else:
                        tx, found, lines = self._learned(text, pos, number + 1)
                    if tx is not None:
                        pos = found.end()
                        number += lines
                        yield tx
                        continue
                end = text.find("\n", pos)
                if end < 0:
                    end = size
                raw = text[pos:end]
                pos = end + 1
                number += 1
                line = raw.strip()
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
                    if section is not None:
                        values, where = section.values, section.where
        self._truncated(section, number)

    def _learned(self, text: str, pos: int, number: int) -> tuple[Transaction | None, Any, int]:
        """The plain document at ``text[pos]`` (line ``number``) read at once: (its
        transaction, the match, its number of lines).  Its order of keys gets a pattern,
        then tried first; past MAX_LAYOUTS orders the document is read from its pairs.
        (None, None, 0) for a document that is not plain (blank or broken lines, keys with
        spaces around them, a structure line inside, a lone "\r" in a value): the
        line-at-a-time reading decides, errors included."""
        found = _PLAIN_DOCUMENT.match(text, pos)
        if found is None:
            return None, None, 0
        pairs = _PAIRS.findall(found[2])
        keys = tuple(map(itemgetter(0), pairs))
        layout = self._layouts.get(keys)
        if layout is None:
            if not self._clean_keys.issuperset(keys):
                if not all(key and key == key.strip() and key not in _STRUCTURE
                           for key in keys):
                    return None, None, 0
                self._clean_keys.update(keys)
            if len(self._layouts) < MAX_LAYOUTS:
                layout = self._layouts[keys] = _Layout(keys)
        if layout is None:
            fields = dict(pairs)  # the last line of a key counts, as when read line by line
            return (self._at_once(found[1], tuple(map(fields.get, USED, repeat(""))), number),
                    found, len(keys) + 2)
        found = layout.pattern.match(text, pos)
        if found is None:  # the same lines as _PLAIN_DOCUMENT's: not expected
            return None, None, 0
        self._match, self._pick, self._lines = layout.pattern.match, layout.pick, layout.lines
        return self._at_once(found[1], found.group(*layout.pick), number), found, layout.lines

    def _at_once(self, kind: str, values: tuple[str, ...], number: int) -> Transaction | None:
        """The transaction of a document read at once, from its type and its USED values
        as written; None when anything in it needs the line-at-a-time reading."""
        try:
            return self._document(kind.strip() or "Документ", number,
                                  tuple(map(str.strip, values)), None)
        except _Unusual:
            return None

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
        return self._document(section.kind, section.start,
                              tuple(map(section.values.get, USED, repeat(""))), section)

    def _document(self, kind: str, start: int, v: tuple[str, ...],
                  doc: _Section | None) -> Transaction:
        """The transaction of a document from its values (stripped, in USED order, ""
        for a missing key), counted in the totals.  ``doc`` None: the document was read
        at once, and anything that would be an error raises _Unusual instead."""
        (number, dated, total, received, spent, payer1, payer, payer_inn, payer_account,
         payer_rs, payee1, payee, payee_inn, payee_account, payee_rs, whole) = v[:16]
        amount = _plain_amount(total)
        if amount is None:
            amount = _amount(_known(doc), "Сумма")
            assert amount is not None  # not optional: _amount raised if missing
        document_date = self._dates.get(dated) or self._date(dated, doc, "Дата")
        if document_date is None:
            raise StatementError.at(_known(doc).line_of("Дата"), "Дата is missing in the "
                                    f"document started at line {start}",
                                    "statement.line.missing", field="Дата", start=start)
        # (direction, our account).  Incoming when the receiver's account is ours; when
        # neither side's account is listed as ours, when only a receipt date is given.
        own = self.accounts
        direction: Direction
        if payee_account in own or payee_rs in own:
            direction, account = CREDIT, payee_account if payee_account in own else payee_rs
        elif payer_account in own or payer_rs in own:
            direction, account = DEBIT, payer_account if payer_account in own else payer_rs
        else:
            default = own[0] if len(own) == 1 else ""
            if received and not spent:
                direction, account = CREDIT, default or payee_account or payee_rs
            else:  # a bank order between two foreign accounts (commission, a card
                # settlement) still moved our money if the file lists it: book it as spent
                # from our only account
                direction, account = DEBIT, default or payer_account or payer_rs
        arrived = received if direction == CREDIT else spent
        posted = arrived and (self._dates.get(arrived) or self._date(
            arrived, doc, "ДатаПоступило" if direction == CREDIT else "ДатаСписано"))
        booked = posted or document_date
        # 1C amounts have two decimals (_plain_amount, ru_amount): str() is amount_key()
        occurrence = self.occurrences.number(natural_identity(
            account, booked, number, str(amount), "RUB", payer_inn, direction))
        self.totals.add(account, direction, amount)
        if direction == CREDIT:  # between two of our accounts: one record, both moved
            for source in (payer_account, payer_rs):
                if source in own and source != account:
                    self.totals.add(source, DEBIT, amount)
                    break
        self.count += 1
        return new_transaction(
            account, booked, number, amount, direction, "RUB", payer1 or payer, payer_inn,
            payer_account or payer_rs, payee1 or payee, payee_inn, payee_account or payee_rs,
            _purpose(whole, v[16:]), "", False, document_date, kind, occurrence,
            f"line {start}")

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

    def _date(self, text: str, doc: _Section | None, key: str) -> date | None:
        """``_date`` with the answers remembered: a statement has few distinct dates."""
        known = self._dates.get(text)
        if known is None and text:
            known = values.ru_date(text)
            if known is None:
                _date(_known(doc), key)  # raises the error that names the line
            if len(self._dates) < 10_000:
                self._dates[text] = known
        return known

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


class _Layout:
    """One order of a document's keys, as a pattern that reads such a document at once:
    its "СекцияДокумент=" line, its "Key=Value" lines (exactly those keys, no space
    around them) and its "КонецДокумента" line, each value up to the line's end (a
    "\r" before the "\n" excepted).  A match reads what the line-at-a-time reading
    would, once the values are stripped: each key with the value of its last line."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        value = r"([^\r\n]*)\r?\n"
        self.pattern = re.compile(DOCUMENT + value + "".join(f"{re.escape(k)}={value}"
                                                             for k in keys)
                                  + r"КонецДокумента\r?(?:\n|\Z)()")
        self.lines = len(keys) + 2
        last = {key: index + 2 for index, key in enumerate(keys)}  # groups: type, values
        missing = len(keys) + 2  # the empty group at the end
        self.pick = tuple(last.get(key, missing) for key in USED)


class _Unusual(Exception):
    """A document read at once has something the line-at-a-time reading must judge."""


def _known(doc: _Section | None) -> _Section:
    if doc is None:
        raise _Unusual
    return doc


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


def _purpose(whole: str, lines: tuple[str, ...]) -> str:
    """НазначениеПлатежа (``whole``), or its continuation lines 1..6 when it is missing or
    cut short.

    The standard writes the whole text in НазначениеПлатежа and the same text split for
    printing in НазначениеПлатежа1..6; some programs write only one of the two.
    """
    if not any(lines):
        return whole
    joined = " ".join([line for line in lines if line])
    if _squashed(joined) in _squashed(whole):
        return whole
    if _squashed(joined).startswith(_squashed(whole)):  # whole was cut at a field limit
        return joined
    return f"{whole} {joined}" if whole else joined


def _squashed(text: str) -> str:
    return "".join(text.split())
