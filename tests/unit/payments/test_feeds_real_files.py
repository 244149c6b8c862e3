"""Every real bank file in ../shared/data/feeds parses to what a person reading it sees.

The expectations were worked out by reading the files by hand; they are not computed by
the parser under test.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from services.payments.domain.matching import extract_document_numbers
from services.payments.feeds import StatementError

KILY_ACCOUNT = "40702810200000000001"
KILY_INN = "123123123123"  # anonymised: the same INN for payer and payee everywhere
# (direction, amount, payer INN) in file order
KILYLABS = [("debit", D("83.23"), KILY_INN), ("debit", D("199.74"), KILY_INN),
            ("debit", D("271.87"), KILY_INN), ("debit", D("561.77"), KILY_INN),
            ("debit", D("1348.26"), KILY_INN), ("debit", D("1835.13"), KILY_INN),
            ("debit", D("2762.80"), KILY_INN), ("debit", D("10000.00"), KILY_INN),
            ("debit", D("10000.00"), KILY_INN), ("debit", D("14121.20"), KILY_INN),
            ("credit", D("6000.00"), KILY_INN), ("credit", D("14000.00"), KILY_INN),
            ("credit", D("20000.00"), KILY_INN)]

EXPECTED = {
    "1c-kilylabs-one_day-cp1251.txt": KILYLABS,
    "1c-kilylabs-one_day-utf8.txt": KILYLABS,
    "1c-odoo-ru-1c_to_kl-min.txt": [],
    "1c-odoo-ru-kl_to_1c.txt": [("debit", D("108159.12"), "0000000002")],
    "1c-unact-test.txt": [("credit", D(a), "000000000000") for a in
                          ("99.00", "98.00", "97.00", "99.00", "98.00", "97.00")],
    "camt053-bsp-001.02.xml": [("credit", D("105678.50"), ""), ("debit", D("200000.00"), ""),
                               ("credit", D("30000.00"), "")],
    "camt053-bsp-duplicate_same_day.xml": [("debit", D("4.50"), ""), ("debit", D("4.50"), "")],
    "camt053-bsp-multicurrency.xml": [("credit", D("1250.50"), ""), ("debit", D("500.25"), ""),
                                      ("debit", D("99.99"), "")],
    "camt053-bsp-no_namespace.xml": [("credit", D("250.00"), "")],
    "mt940-bsp-sample.mt940": [("credit", D("1250.50"), ""), ("debit", D("80.25"), "")],
}
REFUSED = {"camt053-bsp-garbled_amount.xml": ("Stmt[1]/Ntry[1]/Amt", "'12..34' is not an amount")}


def test_every_shared_file_has_an_expectation(shared_feeds):
    files = {p.name for p in shared_feeds.iterdir() if p.suffix != ".md"}
    assert files == set(EXPECTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_count_amounts_and_payer_inns(shared_feeds, parse_file, name):
    transactions, infos = parse_file(shared_feeds / name)
    assert [(t.direction, t.amount, t.payer_inn) for t in transactions] == EXPECTED[name]
    assert all(isinstance(t.amount, D) for t in transactions)
    assert sum(i.transactions for i in infos) == len(transactions)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_identities_are_unique_within_a_file(shared_feeds, parse_file, name):
    transactions, _ = parse_file(shared_feeds / name)
    assert len({t.identity for t in transactions}) == len(transactions)


def test_garbled_camt_amount_is_refused_naming_the_element(shared_feeds, parse_file):
    location, reason = REFUSED["camt053-bsp-garbled_amount.xml"]
    with pytest.raises(StatementError) as caught:
        parse_file(shared_feeds / "camt053-bsp-garbled_amount.xml")
    assert str(caught.value) == f"{location}: {reason}"
    assert caught.value.field == location
    assert caught.value.details["file"] == "camt053-bsp-garbled_amount.xml"


def test_kilylabs_cp1251_and_utf8_copies_are_the_same_transactions(shared_feeds, parse_file):
    windows, _ = parse_file(shared_feeds / "1c-kilylabs-one_day-cp1251.txt")
    utf8, _ = parse_file(shared_feeds / "1c-kilylabs-one_day-utf8.txt")
    assert windows == utf8
    assert [t.identity for t in windows] == [t.identity for t in utf8]


def test_kilylabs_details_and_balances_reconcile(shared_feeds, parse_file):
    transactions, (info,) = parse_file(shared_feeds / "1c-kilylabs-one_day-cp1251.txt")
    assert {t.own_account for t in transactions} == {KILY_ACCOUNT}
    assert {t.date for t in transactions} == {date(2016, 1, 11)}
    assert [t.number for t in transactions if t.direction == "credit"] == ["5", "6", "1"]
    assert transactions[0].document_type == "Банковский ордер"
    assert transactions[0].purpose == "Some random string"
    assert transactions[0].payer_name == "Some random payer"
    (balance,) = info.balances
    assert (balance.opening, balance.closing) == (D("45329.91"), D("44145.91"))
    assert (balance.credit_total, balance.debit_total) == (D("40000.00"), D("41184.00"))
    assert info.encoding == "cp1251" and info.version == "1.02" and info.warnings == ()


def test_utf8_file_that_declares_windows_is_read_as_utf8_with_a_warning(shared_feeds,
                                                                        parse_file):
    _, (info,) = parse_file(shared_feeds / "1c-kilylabs-one_day-utf8.txt")
    assert info.encoding == "utf-8"
    assert info.warnings == ("Кодировка=Windows but the bytes are utf-8",)


def test_odoo_outgoing_payment_keeps_posting_and_document_dates(shared_feeds, parse_file):
    (tx,), (info,) = parse_file(shared_feeds / "1c-odoo-ru-kl_to_1c.txt")
    assert tx.own_account == "00000000000000000001"
    assert (tx.date, tx.document_date) == (date(2023, 4, 3), date(2023, 3, 31))
    assert tx.payer_name == "ООО Плательщик" and tx.payee_inn == "0000000001"
    assert tx.purpose == "Оплата по счету N 1024 от 01.01.23г 18026,52"
    assert extract_document_numbers(tx.purpose)["invoice_numbers"] == ["1024"]
    assert info.period_start == date(2023, 1, 1) and info.warnings == ()


def test_minimal_file_has_no_transactions(shared_feeds, parse_file):
    transactions, (info,) = parse_file(shared_feeds / "1c-odoo-ru-1c_to_kl-min.txt")
    assert transactions == [] and info.transactions == 0 and info.balances == ()


def test_unact_transfers_between_own_accounts(shared_feeds, parse_file):
    transactions, (info,) = parse_file(shared_feeds / "1c-unact-test.txt")
    assert [t.own_account for t in transactions] == ["40600000000000000000"] * 3 + [
        "40700000000000000000"] * 3
    # numbers 1-3 repeat on the other account: the own account keeps identities apart
    assert len({t.identity for t in transactions}) == 6
    assert transactions[0].purpose == " ".join(f"Payment purpose {i}" for i in range(1, 7))
    assert transactions[0].payer_account == "40700000000000000000"
    # both balance blocks add up once each transfer counts as a debit of its source
    assert info.warnings == ("Кодировка=Windows but the bytes are utf-8",)
    assert {b.account: (b.credit_total, b.debit_total) for b in info.balances} == {
        "40700000000000000000": (D("294.00"), D("294.00")),
        "40600000000000000000": (D("294.00"), D("294.00"))}


def test_camt_001_02_uses_entry_amount_not_the_counter_value(shared_feeds, parse_file):
    transactions, (info,) = parse_file(shared_feeds / "camt053-bsp-001.02.xml")
    fx = transactions[2]
    assert (fx.amount, fx.currency) == (D("30000.00"), "SEK")  # not CntrValAmt 3255 EUR
    assert [t.entry_ref for t in transactions] == [
        "AAAASESS-FP-CN_98765/01", "AAAASESS-FP-ACCR-01", "AAAASESS-FP-CONF-FX"]
    assert transactions[0].payer_name == "MUELLER"
    assert transactions[0].number == "MUELL/FINP/RA12345"
    assert info.statement_id == "AAAASESS-FP-STAT001" and info.warnings == ()
    assert info.balances[0].account == "50000000054910000003"


def test_camt_identical_entries_on_one_day_are_two_payments(shared_feeds, parse_file):
    first, second = parse_file(shared_feeds / "camt053-bsp-duplicate_same_day.xml")[0]
    assert first.identity != second.identity
    assert (first.occurrence, second.occurrence) == (1, 2)
    assert first.purpose == second.purpose == "CARD PAYMENT CITY COFFEE"


def test_camt_multicurrency_yields_one_info_per_statement(shared_feeds, parse_file):
    transactions, infos = parse_file(shared_feeds / "camt053-bsp-multicurrency.xml")
    assert [(t.own_account, t.currency) for t in transactions] == [
        ("DE89370400440532013000", "EUR"), ("DE89370400440532013000", "EUR"),
        ("US-ACCT-0099", "USD")]
    assert [i.statement_id for i in infos] == ["GOLDEN-MULTI-EUR", "GOLDEN-MULTI-USD"]
    assert [i.transactions for i in infos] == [2, 1]
    assert all(i.warnings == () for i in infos)
    assert transactions[0].purpose == "Invoice 2026-117"
    assert transactions[0].payer_name == "ACME GMBH"


def test_camt_without_namespace(shared_feeds, parse_file):
    (tx,), (info,) = parse_file(shared_feeds / "camt053-bsp-no_namespace.xml")
    assert (tx.own_account, tx.payer_name, tx.purpose) == (
        "GB29NWBK60161331926819", "JANE CLIENT", "Consulting fee")
    assert tx.date == date(2026, 4, 12)
    assert (info.balances[0].opening, info.balances[0].closing) == (D("100.00"), D("350.00"))


def test_mt940_sample(shared_feeds, parse_file):
    transactions, (info,) = parse_file(shared_feeds / "mt940-bsp-sample.mt940")
    assert [(t.date, t.purpose, t.entry_ref) for t in transactions] == [
        (date(2026, 3, 20), "Salary payment", "MT940-1"),
        (date(2026, 3, 21), "Groceries", "MT940-2")]
    assert {t.own_account for t in transactions} == {"NL91ABNA0417164300"}
    assert info.statement_id == "STARTUMS" and info.warnings == ()
    assert info.balances[0].closing == D("2170.25")
