"""ISO 20022 camt.053 (BankToCustomerStatement), any 001.xx version, with or without
namespace.

Parsed with ``iterparse``: each ``Ntry`` is turned into records as soon as it is complete
and then dropped from the tree, so memory does not grow with the number of entries.
"""
from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
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

NOT_BOOKED = {"PDNG", "INFO", "FUTR"}
OPENING = ("OPBD", "PRCD")  # opening booked; closing booked of the previous statement
CLOSING = ("CLBD",)
INN_SCHEMES = {"TXID", "INN", "ИНН"}
_INN = re.compile(r"[0-9]{10}|[0-9]{12}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _path(*steps: str) -> str:
    # {*} matches any namespace or none: one code path for every camt version
    return "/".join(f"{{*}}{s}" for s in steps)


def _text(elem: ET.Element | None, *steps: str) -> str:
    if elem is None:
        return ""
    found = elem.find(_path(*steps)) if steps else elem
    return (found.text or "").strip() if found is not None else ""


@dataclass
class _Stmt:
    """What is known about the current ``Stmt`` before its entries arrive."""

    index: int
    statement_id: str = ""
    account: str = ""
    currency: str = ""
    opening: Decimal | None = None
    closing: Decimal | None = None
    period: tuple[date | None, date | None] = (None, None)
    entries: int = 0
    count: int = 0
    warnings: list[str] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


def parse(reader: io.BufferedReader) -> Iterator[Transaction | StatementInfo]:
    yield from _Camt().run(reader)


def _xml_events(reader: io.BufferedReader) -> Iterator[tuple[str, ET.Element]]:
    """iterparse, with the parser's own failures (and only those) as StatementError."""
    events = ET.iterparse(reader, events=("start", "end"))
    while True:
        try:
            item = next(events)
        except StopIteration:
            return
        except ET.ParseError as err:
            line, column = err.position
            reason = str(err).split(":", 1)[0]  # the rest repeats the position
            raise StatementError.at(f"line {line}, column {column}",
                                    f"not valid XML: {reason}") from None
        except (LookupError, ValueError) as err:  # encoding="..." unknown or multi-byte
            raise StatementError.at("line 1", f"not valid XML: {err}") from None
        yield item


class _Camt:
    def __init__(self) -> None:
        self.occurrences = Occurrences()
        self.stmt: _Stmt | None = None
        self.statements = 0

    def run(self, reader: io.BufferedReader) -> Iterator[Transaction | StatementInfo]:
        stack: list[ET.Element] = []
        for event, elem in _xml_events(reader):
            if event == "start":
                self._start(elem, stack)
                stack.append(elem)
                continue
            stack.pop()
            parent = _local(stack[-1].tag) if stack else ""
            yield from self._end(elem, parent)
            if _local(elem.tag) in ("Ntry", "Stmt"):
                elem.clear()
                stack[-1].remove(elem)  # the parent must not keep the husk either
        if self.statements == 0:
            raise StatementError.at("Document", "no Stmt: not a camt.053 statement")

    def _start(self, elem: ET.Element, stack: list[ET.Element]) -> None:
        tag = _local(elem.tag)
        if not stack:
            _check_root(elem)
        elif tag == "Stmt":
            self.statements += 1
            self.stmt = _Stmt(self.statements)
        elif tag == "Ntry" and self.stmt is not None:
            self.stmt.entries += 1

    def _end(self, elem: ET.Element, parent: str) -> Iterator[Transaction | StatementInfo]:
        tag = _local(elem.tag)
        stmt = self.stmt
        if stmt is None or parent != "Stmt" and tag != "Stmt":
            return
        if tag == "Stmt":
            yield _info(stmt)
            self.stmt = None
        elif tag == "Ntry":
            yield from self._entry(stmt, elem)
        elif tag == "Id":
            stmt.statement_id = (elem.text or "").strip()
        elif tag == "Acct":
            stmt.account = _text(elem, "Id", "IBAN") or _text(elem, "Id", "Othr", "Id")
            stmt.currency = _text(elem, "Ccy")
        elif tag == "Bal":
            _balance(stmt, elem)
        elif tag == "FrToDt":
            stmt.period = (values.iso_date(_text(elem, "FrDtTm")),
                           values.iso_date(_text(elem, "ToDtTm")))

    def _entry(self, stmt: _Stmt, entry: ET.Element) -> Iterator[Transaction]:
        where = f"Stmt[{stmt.index}]/Ntry[{stmt.entries}]"
        status = _text(entry, "Sts") or _text(entry, "Sts", "Cd")
        if status in NOT_BOOKED:
            stmt.warnings.append(f"{where}: skipped, status {status} is not booked")
            return
        head = _entry_head(entry, where, stmt)
        stmt.totals.add(stmt.account, head.direction, head.amount)
        for tx in _split(entry, head, where, stmt):
            tx = self.occurrences.stamp(tx)
            stmt.count += 1
            yield tx


def _check_root(elem: ET.Element) -> None:
    tag = _local(elem.tag)
    namespace = elem.tag[1:].split("}", 1)[0] if elem.tag.startswith("{") else ""
    if tag not in ("Document", "BkToCstmrStmt"):
        raise StatementError.at(tag, "the root element is not a camt.053 Document")
    if namespace and "camt.053" not in namespace:
        raise StatementError.at(tag, f"namespace '{namespace}' is not camt.053")


def _balance(stmt: _Stmt, elem: ET.Element) -> None:
    kind = _text(elem, "Tp", "CdOrPrtry", "Cd")
    if kind not in OPENING + CLOSING:
        return
    where = f"Stmt[{stmt.index}]/Bal[{kind}]/Amt"
    amount, currency = _amount(elem, where)
    if _text(elem, "CdtDbtInd") == "DBIT":
        amount = -amount
    stmt.currency = stmt.currency or currency
    if kind in CLOSING:
        stmt.closing = amount
    elif stmt.opening is None or kind == "OPBD":
        stmt.opening = amount


@dataclass(frozen=True)
class _Head:
    """The entry-level facts every record of the entry shares."""

    amount: Decimal
    currency: str
    direction: Direction
    booked: date
    reversal: bool
    ref: str
    kind: str
    info: str


def _entry_head(entry: ET.Element, where: str, stmt: _Stmt) -> _Head:
    amount, currency = _amount(entry, f"{where}/Amt")
    mark = _text(entry, "CdtDbtInd")
    if mark not in ("CRDT", "DBIT"):
        raise StatementError.at(f"{where}/CdtDbtInd", f"'{mark[:20]}' is neither CRDT nor DBIT")
    if not stmt.account:
        raise StatementError.at(where, "the statement has no Acct/Id before its entries")
    return _Head(amount=amount, currency=currency, direction=CREDIT if mark == "CRDT" else DEBIT,
                 booked=_booking_date(entry, where), reversal=_text(entry, "RvslInd") in
                 ("true", "1"), ref=_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef"),
                 kind=_tx_code(entry), info=_text(entry, "AddtlNtryInf"))


def _amount(elem: ET.Element, where: str) -> tuple[Decimal, str]:
    node = elem.find(_path("Amt"))
    if node is None:
        raise StatementError.at(where, "amount is missing", "statement.element.missing",
                                name="Amt")
    amount = values.iso_amount(node.text or "")
    if amount is None:
        value = (node.text or "").strip()[:40]
        raise StatementError.at(where, f"'{value}' is not an amount",
                                "statement.element.amount", value=value)
    currency = values.currency(node.get("Ccy", ""))
    if currency is None:
        value = node.get("Ccy", "")[:10]
        raise StatementError.at(where, f"Ccy '{value}' is not a currency",
                                "statement.element.currency", value=value)
    return amount, currency


def _booking_date(entry: ET.Element, where: str) -> date:
    for steps in (("BookgDt", "Dt"), ("BookgDt", "DtTm"), ("ValDt", "Dt"), ("ValDt", "DtTm")):
        text = _text(entry, *steps)
        if text:
            parsed = values.iso_date(text)
            if parsed is None:
                raise StatementError.at(f"{where}/{'/'.join(steps)}",
                                        f"'{text[:30]}' is not a date",
                                        "statement.element.date", value=text[:30])
            return parsed
    raise StatementError.at(where, "neither BookgDt nor ValDt", "statement.element.missing",
                            name="BookgDt/ValDt")


def _tx_code(entry: ET.Element) -> str:
    domain = [_text(entry, "BkTxCd", "Domn", "Cd"), _text(entry, "BkTxCd", "Domn", "Fmly", "Cd"),
              _text(entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd")]
    return "/".join(p for p in domain if p) or _text(entry, "BkTxCd", "Prtry", "Cd")


def _split(entry: ET.Element, head: _Head, where: str, stmt: _Stmt) -> list[Transaction]:
    """One record per TxDtls when a batch entry itemises its amounts, else one record."""
    details = entry.findall(_path("NtryDtls", "TxDtls"))
    if len(details) <= 1:
        return [_record(head, details[0] if details else None, None, where, stmt, head.ref)]
    amounts = [_detail_amount(d, f"{where}/TxDtls[{i}]") for i, d in enumerate(details, 1)]
    if any(a is None for a in amounts):
        stmt.warnings.append(f"{where}: {len(details)} TxDtls without their own amounts, "
                             "kept as one record")
        merged = " ".join(_purpose(d) for d in details).strip()
        return [_record(head, details[0], None, where, stmt, head.ref, purpose=merged)]
    _check_batch_sum(head, amounts, where, stmt)
    return [_record(head, d, a, f"{where}/TxDtls[{i}]", stmt,
                    _text(d, "Refs", "AcctSvcrRef") or (f"{head.ref}/{i}" if head.ref else ""))
            for i, (d, a) in enumerate(zip(details, amounts, strict=True), 1)]


def _detail_amount(detail: ET.Element, where: str) -> tuple[Decimal, str] | None:
    # TxDtls/Amt (version 04+) or AmtDtls/TxAmt; never CntrValAmt/InstdAmt, which are in
    # the payer's or a counter currency, not what was booked.
    for holder in (detail, detail.find(_path("AmtDtls", "TxAmt"))):
        if holder is not None and holder.find(_path("Amt")) is not None:
            return _amount(holder, f"{where}/Amt")
    return None


def _check_batch_sum(head: _Head, amounts: list, where: str, stmt: _Stmt) -> None:
    if all(currency == head.currency for _, currency in amounts):
        total = sum((a for a, _ in amounts), Decimal("0.00"))
        if total != head.amount:
            stmt.warnings.append(f"{where}: TxDtls add up to {total}, the entry is "
                                 f"{head.amount}")


def _record(head: _Head, detail: ET.Element | None, amount: tuple[Decimal, str] | None,
            where: str, stmt: _Stmt, ref: str, purpose: str | None = None) -> Transaction:
    value, currency = amount or (head.amount, head.currency)
    payer, payee = _party(detail, "Dbtr"), _party(detail, "Cdtr")
    return Transaction(
        own_account=stmt.account, date=head.booked, number=_number(detail), amount=value,
        currency=currency, direction=head.direction,
        purpose=(purpose if purpose is not None else _purpose(detail)) or head.info,
        entry_ref=ref or _text(detail, "Refs", "AcctSvcrRef"), reversal=head.reversal,
        document_type=head.kind, location=where,
        payer_name=_text(payer, "Nm"), payer_inn=_inn(payer),
        payer_account=_party_account(detail, "Dbtr"),
        payee_name=_text(payee, "Nm"), payee_inn=_inn(payee),
        payee_account=_party_account(detail, "Cdtr"))


def _number(detail: ET.Element | None) -> str:
    for key in ("EndToEndId", "InstrId", "TxId"):
        ref = _text(detail, "Refs", key)
        if ref and ref.upper() != "NOTPROVIDED":
            return ref
    return ""


def _purpose(detail: ET.Element | None) -> str:
    if detail is None:
        return ""
    texts = [(u.text or "").strip() for u in detail.findall(_path("RmtInf", "Ustrd"))]
    # Structured remittance: the creditor reference and referred documents (invoices)
    for steps in (("RmtInf", "Strd", "CdtrRefInf", "Ref"), ("RmtInf", "Strd", "RfrdDocInf", "Nb")):
        texts += [(r.text or "").strip() for r in detail.findall(_path(*steps))]
    return " ".join(t for t in texts if t) or _text(detail, "AddtlTxInf")


def _party_account(detail: ET.Element | None, role: str) -> str:
    return (_text(detail, "RltdPties", f"{role}Acct", "Id", "IBAN")
            or _text(detail, "RltdPties", f"{role}Acct", "Id", "Othr", "Id"))


def _party(detail: ET.Element | None, role: str) -> ET.Element | None:
    if detail is None:
        return None
    party = detail.find(_path("RltdPties", role))
    if party is not None and party.find(_path("Pty")) is not None:
        return party.find(_path("Pty"))  # version 08+: Dbtr/Pty/Nm
    return party


def _inn(party: ET.Element | None) -> str:
    """The tax id (ИНН for Russian banks) among the party's OrgId/PrvtId Othr ids."""
    if party is None:
        return ""
    for other in party.findall(_path("Id", "OrgId", "Othr")) + party.findall(
            _path("Id", "PrvtId", "Othr")):
        value = _text(other, "Id")
        scheme = _text(other, "SchmeNm", "Cd") or _text(other, "SchmeNm", "Prtry")
        if scheme.upper() in INN_SCHEMES or (not scheme and _INN.fullmatch(value)):
            return value
    return ""


def _info(stmt: _Stmt) -> StatementInfo:
    credit, debit = stmt.totals.of(stmt.account)
    balance = AccountBalance(account=stmt.account, currency=stmt.currency,
                             opening=stmt.opening, closing=stmt.closing,
                             credit_total=credit, debit_total=debit)
    return StatementInfo(format="camt053", statement_id=stmt.statement_id,
                         period_start=stmt.period[0], period_end=stmt.period[1],
                         balances=(balance,), transactions=stmt.count,
                         warnings=tuple(stmt.warnings + balance_warnings(balance)))
