"""Format detection, streaming, and identities that survive re-imports."""
from __future__ import annotations

import io
import tracemalloc
from collections import deque
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from services.kit.errors import ValidationError
from services.payments.feeds import (
    StatementError,
    StatementInfo,
    Transaction,
    detect_format,
    parse_statement,
    write_1c_statement,
)

OWN_FIXTURES = {"1c-cp1251-crlf.txt": "1c", "1c-cp866.txt": "1c", "1c-utf8-lf.txt": "1c",
                "camt053-ns-batch-reversal.xml": "camt053", "camt053-plain.xml": "camt053",
                "mt940-two-messages.sta": "mt940"}


def test_every_own_fixture_is_listed(own_feeds):
    assert {p.name for p in own_feeds.iterdir() if p.suffix != ".md"} == set(OWN_FIXTURES)


@pytest.mark.parametrize(("name", "kind"), sorted(OWN_FIXTURES.items()))
def test_detect_format_of_own_fixtures(own_feeds, name, kind):
    assert detect_format((own_feeds / name).read_bytes()[:4096]) == kind


@pytest.mark.parametrize("head", [b"", b"hello", b"<html><body>", b"\xff\xfe1\x00C\x00",
                                  b'<?xml version="1.0"?><Document><BkToCstmrAcctRpt>',
                                  b"Date,Amount\n2024-01-01,5\n"])
def test_unknown_formats_are_refused(head):
    with pytest.raises(StatementError) as caught:
        detect_format(head)
    assert "not" in str(caught.value)


def test_statement_error_is_a_validation_error_and_survives_rpc_rebuild():
    error = StatementError.at("line 14", "Сумма 'abc' is not an amount")
    assert isinstance(error, ValidationError) and error.http_status == 422
    rebuilt = StatementError(*error.args)  # what nameko does on the caller's side
    assert (str(rebuilt), rebuilt.field, rebuilt.reason) == (
        "line 14: Сумма 'abc' is not an amount", "line 14", "Сумма 'abc' is not an amount")


def test_unknown_format_fails_at_the_call_with_the_file_name():
    with pytest.raises(StatementError) as caught:
        parse_statement(io.BytesIO(b"just text"), "notes.txt")
    assert caught.value.details["file"] == "notes.txt"


class CountingStream(io.RawIOBase):
    """A non-seekable upload that remembers how much of it was read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data[self.position:self.position + min(len(buffer), 8192)]
        buffer[:len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def many(count: int) -> list[Transaction]:
    return [Transaction(own_account="40702810000000001234", date=date(2024, 1, 1) + timedelta(
        days=i % 60), number=str(i), amount=D(1000 + i) / 100, direction="credit",
        payer_inn="7705000001", purpose=f"Оплата по счету № {i}") for i in range(count)]


def camt_bytes(count: int) -> bytes:
    # about 1 KB an entry, like real ones, so the file dwarfs the parser's fixed buffers
    entry = ('<Ntry><Amt Ccy="EUR">{i}.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
             "<BookgDt><Dt>2024-01-02</Dt></BookgDt><AcctSvcrRef>R{i}</AcctSvcrRef>"
             f"<AddtlNtryInf>{'x' * 700}</AddtlNtryInf><NtryDtls><TxDtls><RmtInf>"
             "<Ustrd>Invoice {i} with some words to make it longer</Ustrd>"
             "</RmtInf></TxDtls></NtryDtls></Ntry>")
    body = "".join(entry.format(i=i) for i in range(1, count + 1))
    return ("<?xml version='1.0'?><Document><BkToCstmrStmt><Stmt><Id>S</Id><Acct><Id><IBAN>"
            f"DE89370400440532013000</IBAN></Id></Acct>{body}</Stmt></BkToCstmrStmt>"
            "</Document>").encode()


def test_1c_is_read_as_a_stream(tmp_path):
    buffer = io.BytesIO()
    write_1c_statement(buffer, many(3000))
    stream = CountingStream(buffer.getvalue())
    records = parse_statement(io.BufferedReader(stream))
    first = next(records)
    assert isinstance(first, Transaction) and first.number == "0"
    assert stream.position < len(stream.data) // 3  # the rest is still unread
    assert sum(1 for _ in records) == 3000  # 2999 transactions and the StatementInfo


def peak_memory(data: bytes) -> tuple[int, StatementInfo]:
    stream = CountingStream(data)
    tracemalloc.start()
    try:
        records = parse_statement(io.BufferedReader(stream))
        next(records)
        assert stream.position < len(data) // 3  # the rest is still unread
        info = deque(records, maxlen=1)[0]  # consume without keeping the records
        assert isinstance(info, StatementInfo)
        return tracemalloc.get_traced_memory()[1], info
    finally:
        tracemalloc.stop()


def test_camt_is_read_as_a_stream_and_entries_are_dropped():
    data = camt_bytes(2500)
    peak, info = peak_memory(data)
    assert info.transactions == 2500
    # a tree that kept its entries would take several times the file
    assert peak < len(data) // 2


def test_reimporting_the_same_file_gives_the_same_identities(own_feeds, parse_file):
    for path in (p for p in own_feeds.iterdir() if p.suffix != ".md"):
        first, _ = parse_file(path)
        second, _ = parse_file(path)
        assert [t.identity for t in first] == [t.identity for t in second]


def test_overlapping_files_share_identities_of_common_records():
    txs = many(10)
    monday, both_days = io.BytesIO(), io.BytesIO()
    write_1c_statement(monday, txs[:5])
    write_1c_statement(both_days, txs[3:], encoding="utf-8", newline="\n")
    seen = {r.identity for r in parse_statement(io.BytesIO(monday.getvalue()))
            if isinstance(r, Transaction)}
    later = [r for r in parse_statement(io.BytesIO(both_days.getvalue()))
             if isinstance(r, Transaction)]
    assert [t.number for t in later if t.identity not in seen] == [str(i) for i in range(5, 10)]


def test_identity_spelling_does_not_depend_on_trailing_zeros():
    base = many(1)[0]
    assert replace(base, amount=D("10")).identity == replace(base, amount=D("10.00")).identity
    assert replace(base, entry_ref="R1").identity == "40702810000000001234|ref:R1|C"
