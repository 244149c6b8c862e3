"""MT940: the project's own fixture and broken input."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from services.payments.feeds import StatementError


def test_two_messages_with_envelope(own_feeds, parse_file):
    transactions, infos = parse_file(own_feeds / "mt940-two-messages.sta")
    assert [(t.direction, t.amount, t.reversal) for t in transactions] == [
        ("credit", D("2500.00"), False), ("debit", D("120.50"), False),
        ("credit", D("120.50"), True),  # RD: reversal of a debit gives the money back
        ("credit", D("990.00"), False), ("credit", D("990.00"), False),
        ("credit", D("990.00"), False)]
    assert {t.own_account for t in transactions} == {"0012345678"}  # BIC/ stripped
    assert [i.statement_id for i in infos] == ["STMT240301", "STMT240304"]
    assert all(i.warnings == () for i in infos)
    assert [i.balances[0].closing for i in infos] == [D("3500.00"), D("6470.00")]


def test_structured_86_gives_purpose_name_and_account(own_feeds, parse_file):
    first = parse_file(own_feeds / "mt940-two-messages.sta")[0][0]
    assert first.purpose == "EREF+INV1024 SVWZ+Invoice 1024 ACME GmbH services March"
    assert (first.payer_name, first.payer_account) == ("ACME GMBH", "DE44500105175407324931")
    assert (first.number, first.entry_ref) == ("INV1024", "BREF-0001")
    assert first.date == date(2024, 3, 1) and first.document_type == "NTRF"


def test_wrapped_86_line_is_joined_without_a_space(own_feeds, parse_file):
    fourth = parse_file(own_feeds / "mt940-two-messages.sta")[0][3]
    assert fourth.purpose == ("Payment for contract 15/2024 and invoice 2048 from "
                              "Northwind Trading Ltd, thank you")


def test_identical_lines_without_reference_are_numbered(own_feeds, parse_file):
    *_, fifth, sixth = parse_file(own_feeds / "mt940-two-messages.sta")[0]
    assert (fifth.occurrence, sixth.occurrence) == (1, 2)
    assert fifth.identity != sixth.identity


def mt940(*lines: str) -> bytes:
    return "\r\n".join([":20:REF", ":25:NL91ABNA0417164300", ":60F:C240101EUR100,00", *lines,
                        ""]).encode()


def refused(parse_bytes, data: bytes) -> str:
    with pytest.raises(StatementError) as caught:
        parse_bytes(data)
    return str(caught.value)


def test_entry_date_across_new_year(parse_bytes):
    (tx,), _ = parse_bytes(mt940(":61:2312310102C5,NTRFNONREF", ":62F:C240102EUR105,00"))
    assert (tx.date, tx.amount) == (date(2024, 1, 2), D("5.00"))
    (tx,), _ = parse_bytes(mt940(":61:2401011231D5,NTRFNONREF", ":62F:C240101EUR95,00"))
    assert tx.date == date(2023, 12, 31)


def test_malformed_statement_line(parse_bytes):
    assert refused(parse_bytes, mt940(":61:240101X5,00NTRF", ":62F:C240101EUR100,00")) == (
        "line 4: :61: '240101X5,00NTRF' is not a statement line "
        "(YYMMDD[MMDD]C|D|RC|RD amount,cents type reference)")


def test_amount_with_a_dot_is_refused(parse_bytes):
    assert "is not a statement line" in refused(
        parse_bytes, mt940(":61:240101C5.00NTRF", ":62F:C240101EUR105,00"))


def test_bad_date(parse_bytes):
    assert refused(parse_bytes, mt940(":61:241301C5,00NTRF", ":62F:C240101EUR105,00")) == (
        "line 4: :61: '241301' is not a date (YYMMDD)")


def test_statement_line_before_the_opening_balance(parse_bytes):
    data = b":20:REF\r\n:25:ACC\r\n:61:240101C5,00NTRF\r\n:62F:C240101EUR5,00\r\n"
    assert refused(parse_bytes, data) == (
        "line 3: :61: before the :25: account and :60F: balance")


def test_bad_balance(parse_bytes):
    assert refused(parse_bytes, mt940(":62F:C2401EUR100,00")) == (
        "line 4: :62F: 'C2401EUR100,00' is not a balance (C|D YYMMDD currency amount,cents)")


def test_truncated_message(parse_bytes):
    assert refused(parse_bytes, mt940(":61:240101C5,00NTRF")) == (
        "line 4: the file ends before the :62F: of the message started at line 1")


def test_closing_balance_that_does_not_add_up_is_a_warning(parse_bytes):
    _, (info,) = parse_bytes(mt940(":61:240101C5,00NTRF", ":62F:C240101EUR100,00"))
    assert info.warnings == ("account NL91ABNA0417164300: opening 100.00 + credits 5.00 - "
                             "debits 0.00 = 105.00, but the closing balance is 100.00",)


def test_runaway_field_is_refused(parse_bytes):
    assert refused(parse_bytes, mt940(":61:240101C5,00NTRF", ":86:start", *["more"] * 150)) == (
        "line 105: :86: runs over 100 lines")
