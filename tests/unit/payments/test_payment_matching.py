"""Matching an incoming transaction to open planned payments, one rule at a time."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.domain.matching import (
    Candidate,
    candidate_query,
    canonical_inn,
    canonical_number,
    extract_document_numbers,
    match_transaction,
)
from services.payments.feeds import Transaction

CLIENT = "7705000001"
OTHER = "7812345678"
PAID_ON = date(2024, 3, 1)


def payment(amount: str = "1000.00", purpose: str = "Оплата по договору поставки",
            inn: str = CLIENT, **changes) -> Transaction:
    tx = Transaction(own_account="40702810000000001234", date=PAID_ON, number="512",
                     amount=D(amount), direction="credit", payer_inn=inn, purpose=purpose)
    return replace(tx, **changes)


def plan(id: int, amount: str = "1000.00", inn: str = CLIENT, due: date = PAID_ON,
         invoices: tuple[str, ...] = (), contracts: tuple[str, ...] = (),
         currency: str = "RUB") -> Candidate:
    return Candidate(id=id, deal_id=100 + id, client_inn=inn, amount_outstanding=D(amount),
                     due_date=due, invoice_numbers=invoices, contract_numbers=contracts,
                     currency=currency)


# --- rule a: INN and amount ----------------------------------------------------------

def test_inn_and_exact_amount_is_confident():
    result = match_transaction(payment(), [plan(1), plan(2, amount="500.00")])
    assert (result.kind, result.payment_id, result.candidates) == ("confident", 1, [1])
    assert result.score == 0.95
    assert "payer INN 7705000001 is the client's" in result.reasons


def test_inn_and_amount_is_confident_even_far_from_the_due_date():
    result = match_transaction(payment(), [plan(1, due=PAID_ON + timedelta(days=200))])
    assert (result.kind, result.payment_id) == ("confident", 1)


def test_inn_amount_and_named_invoice_scores_highest():
    result = match_transaction(payment(purpose="Оплата по счету № 1024"),
                               [plan(1, invoices=("1024",))])
    assert (result.kind, result.score) == ("confident", 0.99)
    assert "the purpose names invoice 1024" in result.reasons


def test_two_equal_candidates_is_never_confident():
    result = match_transaction(payment(), [plan(1), plan(2, due=PAID_ON + timedelta(days=30))])
    assert (result.kind, result.payment_id) == ("doubtful", None)
    assert result.candidates == [1, 2]
    assert result.reasons[0].startswith("2 planned payments of this client have this amount")


def test_named_invoice_breaks_a_tie_between_equal_instalments():
    result = match_transaction(payment(purpose="Оплата по сч. №2049 за март"),
                               [plan(1, invoices=("2048",)), plan(2, invoices=("2049",))])
    assert (result.kind, result.payment_id, result.score) == ("confident", 2, 0.97)


def test_tie_named_twice_stays_doubtful():
    result = match_transaction(payment(purpose="по договору № 15/2024"),
                               [plan(1, contracts=("15/2024",)), plan(2, contracts=("15/2024",))])
    assert (result.kind, result.payment_id) == ("doubtful", None)


# --- rule b: number named in the purpose and amount ----------------------------------

def test_invoice_number_and_amount_without_payer_inn_is_confident():
    result = match_transaction(payment(inn="", purpose="Invoice 2050"),
                               [plan(1, invoices=("2050",)), plan(2)])
    assert (result.kind, result.payment_id, result.score) == ("confident", 1, 0.9)
    assert "the file gives no payer INN" in result.reasons


def test_zero_inn_counts_as_no_inn():
    result = match_transaction(payment(inn="0000000000", purpose="Оплата по счету N 1024"),
                               [plan(1, inn="0000000000", invoices=("1024",))])
    assert (result.kind, result.payment_id) == ("confident", 1)
    assert not any("INN" in r and "client's" in r for r in result.reasons)


def test_contract_number_and_amount_from_another_inn_is_doubtful():
    paid = payment(inn=OTHER, purpose="Оплата по дог. № 15/2024 за ООО Ромашка")
    result = match_transaction(paid, [plan(1, contracts=("15/2024",))])
    assert (result.kind, result.payment_id, result.score) == ("doubtful", 1, 0.75)
    assert result.reasons[-1] == f"paid by INN {OTHER}, not the client's {CLIENT}"


def test_number_and_amount_on_two_candidates_is_doubtful():
    result = match_transaction(payment(inn="", purpose="счет 77"),
                               [plan(1, invoices=("77",)), plan(2, invoices=("077",))])
    assert (result.kind, result.payment_id, result.candidates) == ("doubtful", None, [1, 2])


def test_invoice_number_with_leading_zeros_and_no_sign_matches():
    result = match_transaction(payment(inn="", purpose="по счёту №00001024 от 01.02.2024"),
                               [plan(1, invoices=("1024",))])
    assert (result.kind, result.payment_id) == ("confident", 1)


# --- rule c: weaker evidence is doubtful ---------------------------------------------

def test_same_inn_near_due_date_with_a_partial_amount_is_doubtful():
    result = match_transaction(payment(amount="400.00"),
                               [plan(1, due=PAID_ON + timedelta(days=10))])
    assert (result.kind, result.payment_id) == ("doubtful", 1)
    assert "amount 400.00 is part of the outstanding 1000.00" in result.reasons
    assert "paid 10 days from the due date 2024-03-11" in result.reasons


def test_same_inn_far_from_due_date_with_another_amount_is_unmatched():
    result = match_transaction(payment(amount="400.00"),
                               [plan(1, due=PAID_ON + timedelta(days=31))])
    assert (result.kind, result.payment_id, result.candidates) == ("unmatched", None, [])


def test_amount_near_due_date_without_inn_is_doubtful():
    result = match_transaction(payment(inn=""), [plan(1, inn=OTHER)])
    assert (result.kind, result.payment_id) == ("doubtful", 1)


def test_amount_near_due_date_from_another_inn_is_unmatched():
    assert match_transaction(payment(inn=OTHER), [plan(1)]).kind == "unmatched"


def test_named_invoice_with_another_amount_is_doubtful():
    result = match_transaction(payment(amount="999.00", inn="", purpose="invoice 1024"),
                               [plan(1, invoices=("1024",), due=date(2023, 1, 1))])
    assert (result.kind, result.payment_id) == ("doubtful", 1)


def test_equally_weak_candidates_name_no_payment():
    result = match_transaction(payment(amount="10.00"), [plan(1), plan(2)])
    assert (result.kind, result.payment_id, result.candidates) == ("doubtful", None, [1, 2])


def test_the_stronger_of_two_weak_candidates_is_suggested():
    result = match_transaction(payment(amount="10.00", purpose="по счету 5"),
                               [plan(1), plan(2, invoices=("5",))])
    assert (result.kind, result.payment_id, result.candidates) == ("doubtful", 2, [2, 1])
    assert result.score <= 0.7


# --- what is never matched -----------------------------------------------------------

def test_nothing_in_common_is_unmatched():
    result = match_transaction(payment(inn=OTHER, amount="5.00"), [plan(1), plan(2)])
    assert result.kind == "unmatched" and result.reasons


def test_no_candidates_is_unmatched():
    assert match_transaction(payment(), []).kind == "unmatched"


def test_outgoing_payment_is_never_matched():
    result = match_transaction(payment(direction="debit"), [plan(1)])
    assert (result.kind, result.reasons) == ("unmatched", ["outgoing payment"])


def test_reversal_is_never_matched():
    result = match_transaction(payment(reversal=True), [plan(1)])
    assert (result.kind, result.reasons) == ("unmatched", ["a bank reversal, not a client payment"])


def test_another_currency_is_not_a_candidate():
    assert match_transaction(payment(), [plan(1, currency="EUR")]).kind == "unmatched"


def test_fully_paid_planned_payment_is_not_a_candidate():
    assert match_transaction(payment(), [plan(1, amount="0.00")]).kind == "unmatched"


@settings(max_examples=100, deadline=None)
@given(amount=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2),
       inn=st.sampled_from(["", CLIENT, OTHER]), days=st.integers(-60, 60),
       purpose=st.sampled_from(["", "Оплата по счету № 1024", "по договору 15/2024", "x"]))
def test_a_duplicated_candidate_is_never_confident(amount, inn, days, purpose):
    candidate = plan(1, amount=str(amount), due=PAID_ON + timedelta(days=days),
                     invoices=("1024",), contracts=("15/2024",))
    result = match_transaction(payment(inn=inn, purpose=purpose),
                               [candidate, replace(candidate, id=2)])
    assert result.kind != "confident"
    assert result.payment_id is None


# --- document numbers ----------------------------------------------------------------

@pytest.mark.parametrize(("purpose", "invoices", "contracts"), [
    ("Оплата по счету N 1024 от 01.01.23", ["1024"], []),
    ("сч. №1024", ["1024"], []),
    ("по счёту № 1024", ["1024"], []),
    ("Оплата по счету на оплату № 77 от 02.02.2024", ["77"], []),
    ("оплата по счету от 01.01.2024 № 99", ["99"], []),
    ("Оплата по счету-фактуре №45 от 01.01.2024", ["45"], []),
    ("Оплата по сч/ф 55", ["55"], []),
    ("по счетам №№ 12, 13 и 14", ["12", "13", "14"], []),
    ("Оплата по сч.1024 и сч.1025", ["1024", "1025"], []),
    ("счет 1024, 18026,52 руб", ["1024"], []),
    ("invoice 1024", ["1024"], []),
    ("Invoice No. 1024", ["1024"], []),
    ("inv #A-17", ["A-17"], []),
    ("Invoice 2026-117", ["2026-117"], []),
    ("по договору 15/2024", [], ["15/2024"]),
    ("дог. № 15/2024", [], ["15/2024"]),
    ("по договору поставки № Д-15/24 от 01.01.2024", [], ["Д-15/24"]),
    ("по договору №15/2024 от 01.01.2024, счет №1024", ["1024"], ["15/2024"]),
    ("Payment for invoice 2050 under contract 15/2024", ["2050"], ["15/2024"]),
    ("по счету за март 2024 г.", [], []),  # a year is not an invoice number
    ("на расчетный счет 40702810900000000001", [], []),  # an account is not an invoice
    ("НДС не облагается", [], []),
    ("", [], []),
])
def test_extract_document_numbers(purpose, invoices, contracts):
    assert extract_document_numbers(purpose) == {"invoice_numbers": invoices,
                                                 "contract_numbers": contracts}


def test_canonical_forms():
    assert canonical_number(" № 00001024 ") == canonical_number("1024") == "1024"
    assert canonical_number("д-15/ё") == "Д-15/Е"
    assert canonical_inn("0000000000") == canonical_inn("0") == canonical_inn("") == ""
    assert canonical_inn(" 7705000001 ") == "7705000001"


@pytest.mark.parametrize("inn", ["7705000001", "770500000112", "0", "000000000000", "",
                                 " 7705000001", "77-05-000001", "ИНН 7705000001", "٧٧٠٥",
                                 "77²05", "７７０５", "0000000001"])
def test_canonical_inn_is_the_digits_of_the_inn(inn):
    # a string of digits is taken whole: the same as keeping its digits one by one
    digits = "".join(c for c in inn if c.isdigit())
    assert canonical_inn(inn) == ("" if not digits.strip("0") else digits)


# --- what the service should fetch ---------------------------------------------------

def test_candidate_query_has_the_indexed_lookup_keys():
    query = candidate_query(payment(purpose="Оплата по сч. № 001024 по договору 15/2024"))
    assert query is not None
    assert (query.payer_inn, query.amount, query.currency) == (CLIENT, D("1000.00"), "RUB")
    assert (query.invoice_numbers, query.contract_numbers) == (("1024",), ("15/2024",))
    assert (query.due_from, query.due_to) == (date(2024, 1, 31), date(2024, 3, 31))


def test_candidate_query_without_inn_or_for_outgoing_money():
    assert candidate_query(payment(inn="000000000000")).payer_inn is None
    assert candidate_query(payment(direction="debit")) is None
    assert candidate_query(payment(reversal=True)) is None


@settings(max_examples=200, deadline=None)
@given(purpose=st.lists(st.sampled_from([*"сч.ёт №N 1024/-,иoдговр", "счет", "договор",
                                          " от 01.01.2024 ", "invoice", "18026,52"]),
                       max_size=30).map("".join))
def test_extracted_numbers_are_taken_from_the_purpose(purpose):
    found = extract_document_numbers(purpose)
    for number in found["invoice_numbers"] + found["contract_numbers"]:
        assert number in purpose and any(c.isdigit() for c in number)
