"""camt.053: the project's own fixtures and broken input."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from services.payments.feeds import StatementError

OURS = "40702810000000001234"


def test_batch_entry_gives_one_transaction_per_txdtls(own_feeds, parse_file):
    transactions, _ = parse_file(own_feeds / "camt053-ns-batch-reversal.xml")
    batch = transactions[:3]
    assert [(t.amount, t.payer_inn, t.payer_name) for t in batch] == [
        (D("10000.00"), "7705000001", 'ООО "Ромашка"'),  # OrgId, scheme TXID
        (D("15000.00"), "500100732259", "ИП Иванов Иван Иванович"),  # PrvtId, scheme INN
        (D("5000.00"), "", 'АО "Вектор"')]
    assert {(t.own_account, t.direction, t.date, t.currency) for t in batch} == {
        (OURS, "credit", date(2024, 3, 1), "RUB")}
    # the TxDtls' own bank reference when there is one, else entry reference + position
    assert [t.entry_ref for t in batch] == ["RB-0001/1", "RB-0001-B", "RB-0001/3"]
    assert [t.number for t in batch] == ["PP-512", "77", "PP-513"]  # NOTPROVIDED skipped
    assert batch[0].payer_account == "40702810100000000011"
    assert batch[1].purpose == "Оплата по договору 15/2024 за март"  # two Ustrd
    assert batch[0].location == "Stmt[1]/Ntry[1]/TxDtls[1]"


def test_reversal_is_flagged_and_not_incoming(own_feeds, parse_file):
    reversal = parse_file(own_feeds / "camt053-ns-batch-reversal.xml")[0][3]
    assert (reversal.direction, reversal.reversal, reversal.amount) == ("debit", True,
                                                                        D("15000.00"))
    assert reversal.purpose == "Возврат ошибочно зачисленных средств"  # AddtlNtryInf
    assert reversal.date == date(2024, 3, 1)  # from BookgDt/DtTm
    assert not reversal.is_incoming


def test_pending_entry_is_skipped_with_a_warning(own_feeds, parse_file):
    transactions, (info,) = parse_file(own_feeds / "camt053-ns-batch-reversal.xml")
    assert D("777.77") not in [t.amount for t in transactions]
    assert info.warnings == ("Stmt[1]/Ntry[3]: skipped, status PDNG is not booked",)
    assert info.transactions == 5


def test_structured_reference_joins_the_purpose(own_feeds, parse_file):
    last = parse_file(own_feeds / "camt053-ns-batch-reversal.xml")[0][4]
    assert (last.entry_ref, last.purpose) == ("NR-0004", "Services March INV-77")
    assert last.payer_account == "DE44500105175407324931"


def test_balances_reconcile(own_feeds, parse_file):
    _, (info,) = parse_file(own_feeds / "camt053-ns-batch-reversal.xml")
    (balance,) = info.balances
    assert (balance.account, balance.currency) == (OURS, "RUB")
    assert (balance.opening, balance.closing) == (D("1000.00"), D("17200.00"))
    assert (balance.credit_total, balance.debit_total) == (D("31200.00"), D("15000.00"))
    assert (info.statement_id, info.period_start) == ("CRM-STMT-2024-03-01", date(2024, 3, 1))


def test_plain_camt_without_namespace(own_feeds, parse_file):
    (credit, debit), (info,) = parse_file(own_feeds / "camt053-plain.xml")
    assert (credit.amount, credit.currency, credit.payer_inn) == (D("2500.00"), "EUR",
                                                                  "9909000012")
    assert (credit.number, credit.purpose) == ("E2E-2050", "Invoice 2050")
    assert debit.payee_name == "Cloud Hosting Inc" and debit.payer_name == ""
    assert info.balances[0].opening == D("-50.00")  # PRCD, DBIT
    assert info.warnings == ()


# --- broken input: the error names the element -------------------------------------

def camt(entries: str, namespace: str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
         account: str = "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{namespace}">'
            f"<BkToCstmrStmt><Stmt><Id>S</Id>{account}{entries}</Stmt></BkToCstmrStmt>"
            "</Document>").encode()


def entry(amount: str = "10.00", mark: str = "CRDT", ccy: str = "EUR",
          booked: str = "<BookgDt><Dt>2024-01-02</Dt></BookgDt>", extra: str = "") -> str:
    return (f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>{mark}</CdtDbtInd>'
            f"<Sts>BOOK</Sts>{booked}{extra}</Ntry>")


def refused(parse_bytes, data: bytes) -> str:
    with pytest.raises(StatementError) as caught:
        parse_bytes(data)
    return str(caught.value)


def test_garbled_amount_is_refused_naming_the_entry(parse_bytes):
    data = camt(entry() + entry() + entry("12..34"))
    assert refused(parse_bytes, data) == "Stmt[1]/Ntry[3]/Amt: '12..34' is not an amount"


@pytest.mark.parametrize("amount", ["", "-1.00", "1,00", "1.123456", "1e3", "NaN", "١٠"])
def test_amount_shapes_that_are_refused(parse_bytes, amount):
    assert "Stmt[1]/Ntry[1]/Amt" in refused(parse_bytes, camt(entry(amount)))


def test_bad_currency(parse_bytes):
    assert refused(parse_bytes, camt(entry(ccy="euro"))) == (
        "Stmt[1]/Ntry[1]/Amt: Ccy 'euro' is not a currency")


def test_bad_credit_debit_indicator(parse_bytes):
    assert refused(parse_bytes, camt(entry(mark="CREDIT"))) == (
        "Stmt[1]/Ntry[1]/CdtDbtInd: 'CREDIT' is neither CRDT nor DBIT")


def test_bad_or_missing_booking_date(parse_bytes):
    bad = entry(booked="<BookgDt><Dt>2024-13-01</Dt></BookgDt>")
    assert refused(parse_bytes, camt(bad)) == (
        "Stmt[1]/Ntry[1]/BookgDt/Dt: '2024-13-01' is not a date")
    assert refused(parse_bytes, camt(entry(booked=""))) == (
        "Stmt[1]/Ntry[1]: neither BookgDt nor ValDt")


def test_entries_without_an_account(parse_bytes):
    assert refused(parse_bytes, camt(entry(), account="")) == (
        "Stmt[1]/Ntry[1]: the statement has no Acct/Id before its entries")


def test_not_well_formed_xml_names_line_and_column(parse_bytes):
    data = camt(entry()).replace(b"</Stmt>", b"</Stmt>\n  <&")
    assert refused(parse_bytes, data) == "line 2, column 3: not valid XML: not well-formed " \
        "(invalid token)"


def test_unknown_xml_encoding_is_refused(parse_bytes):
    data = camt(entry()).replace(b'encoding="UTF-8"', b'encoding="bogus"')
    assert refused(parse_bytes, data) == "line 1: not valid XML: unknown encoding: bogus"


def test_another_camt_message_is_refused(parse_bytes):
    data = camt(entry(), namespace="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02")
    assert refused(parse_bytes, data) == (
        "Document: namespace 'urn:iso:std:iso:20022:tech:xsd:camt.054.001.02' is not camt.053")


def test_batch_without_item_amounts_stays_one_record_with_a_warning(parse_bytes):
    details = ("<NtryDtls><TxDtls><RmtInf><Ustrd>A</Ustrd></RmtInf></TxDtls>"
               "<TxDtls><RmtInf><Ustrd>B</Ustrd></RmtInf></TxDtls></NtryDtls>")
    (tx,), (info,) = parse_bytes(camt(entry(extra=details)))
    assert (tx.amount, tx.purpose) == (D("10.00"), "A B")
    assert info.warnings == ("Stmt[1]/Ntry[1]: 2 TxDtls without their own amounts, "
                             "kept as one record",)


def test_batch_items_that_do_not_add_up_are_a_warning(parse_bytes):
    details = ('<NtryDtls><TxDtls><Amt Ccy="EUR">4.00</Amt></TxDtls>'
               '<TxDtls><Amt Ccy="EUR">5.00</Amt></TxDtls></NtryDtls>')
    transactions, (info,) = parse_bytes(camt(entry(extra=details)))
    assert [t.amount for t in transactions] == [D("4.00"), D("5.00")]
    assert info.warnings == ("Stmt[1]/Ntry[1]: TxDtls add up to 9.00, the entry is 10.00",)
