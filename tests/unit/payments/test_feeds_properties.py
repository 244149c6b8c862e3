"""Property tests: whatever the bytes, a statement parses or is refused with a
StatementError, never another exception; generated 1C files round-trip."""
from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.payments.feeds import (
    StatementError,
    StatementInfo,
    Transaction,
    parse_statement,
    write_1c_statement,
)

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OURS = "40702810000000001234"
PREFIXES = [b"", b"1CClientBankExchange\r\n", b"\xef\xbb\xbf1CClientBankExchange\n",
            b"<?xml version='1.0'?><Document><BkToCstmrStmt><Stmt>", b":20:X\r\n:25:ACC\r\n",
            b"{1:F01}{2:O940}{4:\r\n:20:X\r\n:25:A\r\n:60F:C240101EUR1,\r\n"]
OWN_FEEDS = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "feeds"
FIXTURES = sorted(p.read_bytes() for p in OWN_FEEDS.iterdir() if p.suffix != ".md")


def parse_or_refuse(data: bytes) -> list[Transaction | StatementInfo] | StatementError:
    try:
        return list(parse_statement(io.BytesIO(data), "fuzz"))
    except StatementError as error:
        assert str(error)  # a message a person can read
        return error


@FAST
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=600))
def test_random_bytes_parse_or_are_refused(prefix, body):
    parse_or_refuse(prefix + body)


# pieces that mean something to one of the formats, to damage files where it hurts
SHARP = st.sampled_from([
    b"\r\n", b"\n", b"=", b"<", b">", b"&", b":61:", b":20:", b"-}", b"\x00", b"&a;",
    "КонецДокумента".encode("cp1251"), "СекцияДокумент=".encode(),
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"<?xml version='1.0' encoding='utf-16'?>",
    b"<?xml version='1.0' encoding='bogus'?>", b"<Ntry>", b"</Ntry>", b"<TxDtls>"])


@FAST
@given(original=st.sampled_from(FIXTURES), data=st.data())
def test_damaged_statements_parse_or_are_refused(original, data):
    for _ in range(data.draw(st.integers(1, 3), label="damages")):
        position = data.draw(st.integers(0, len(original)), label="position")
        cut = data.draw(st.integers(0, 12), label="cut")
        insert = data.draw(st.binary(max_size=12) | SHARP, label="insert")
        original = original[:position] + insert + original[position + cut:]
    parse_or_refuse(original)


@FAST
@given(original=st.sampled_from(FIXTURES), keep=st.floats(0, 1))
def test_truncated_statements_parse_or_are_refused(original, keep):
    parse_or_refuse(original[:int(len(original) * keep)])


# --- generated 1C files --------------------------------------------------------------

# characters every 1C encoding can write: Cyrillic, Latin, digits, punctuation
TEXT = st.text(alphabet="абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
               "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789.,;:-()/\"'№% ", max_size=120)
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999999.99"),
                      places=2)
INNS = st.from_regex(r"\A([0-9]{10}|[0-9]{12})?\Z")


@st.composite
def transactions(draw) -> Transaction:
    incoming = draw(st.booleans())
    return Transaction(
        own_account=OURS, date=draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))),
        number=draw(st.from_regex(r"\A[0-9]{1,6}\Z")), amount=draw(AMOUNTS),
        direction="credit" if incoming else "debit",
        payer_name=draw(TEXT).strip(), payer_inn=draw(INNS),
        payer_account=draw(st.from_regex(r"\A[0-9]{20}\Z")), payee_inn=draw(INNS),
        payee_account=draw(st.from_regex(r"\A[0-9]{20}\Z")).replace(OURS, "0" * 20),
        purpose=" ".join(draw(TEXT).split()))


@FAST
@given(txs=st.lists(transactions(), max_size=8),
       encoding=st.sampled_from(["cp1251", "cp866", "utf-8"]),
       newline=st.sampled_from(["\r\n", "\n"]))
def test_generated_1c_files_round_trip(txs, encoding, newline):
    buffer = io.BytesIO()
    write_1c_statement(buffer, txs, encoding=encoding, newline=newline)
    records = list(parse_statement(io.BytesIO(buffer.getvalue())))
    parsed = [r for r in records if isinstance(r, Transaction)]
    (info,) = [r for r in records if isinstance(r, StatementInfo)]
    assert info.encoding == encoding and info.warnings == ()
    assert len(parsed) == len(txs)
    for sent, got in zip(txs, parsed, strict=True):
        assert (got.own_account, got.date, got.number, got.amount, got.direction) == (
            sent.own_account, sent.date, sent.number, sent.amount, sent.direction)
        assert (got.payer_inn, got.payee_inn, got.purpose, got.payer_name) == (
            sent.payer_inn, sent.payee_inn, sent.purpose, sent.payer_name)


@FAST
@given(text=st.text(max_size=20), encoding=st.sampled_from(["cp1251", "utf-8"]))
def test_any_amount_text_is_read_exactly_or_refused_naming_it(text, encoding):
    text = text.replace("\r", "").replace("\n", "")
    lines = ["1CClientBankExchange", f"РасчСчет={OURS}", "СекцияДокумент=Платежное поручение",
             "Номер=1", "Дата=01.02.2024", f"Сумма={text}", f"ПолучательСчет={OURS}",
             "КонецДокумента", "КонецФайла"]
    try:
        data = "\r\n".join(lines).encode(encoding)
    except UnicodeEncodeError:
        return
    result = parse_or_refuse(data)
    if isinstance(result, StatementError):
        assert result.field in ("line 6", "line 1") or "Key=Value" in str(result)
        return
    (tx, _info) = result
    cleaned = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    assert tx.amount == Decimal(cleaned)


@FAST
@given(text=st.text(alphabet="0123456789.,-+eE ", max_size=12))
def test_any_camt_amount_is_read_exactly_or_refused_naming_it(text):
    data = ("<Document><BkToCstmrStmt><Stmt><Acct><Id><IBAN>X</IBAN></Id></Acct><Ntry>"
            f'<Amt Ccy="EUR">{text}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
            "<BookgDt><Dt>2024-01-01</Dt></BookgDt></Ntry></Stmt></BkToCstmrStmt>"
            "</Document>").encode()
    result = parse_or_refuse(data)
    if isinstance(result, StatementError):
        assert str(result).startswith("Stmt[1]/Ntry[1]/Amt: ")
    else:
        assert result[0].amount == Decimal(text.strip())
