"""The purpose scan that finds invoice/contract keywords only where one can begin finds
exactly what trying the keyword pattern at every position finds, whatever the text:
words glued to other words, Latin and Cyrillic look-alikes, letters whose case folds
unusually (İ, ı, K, ſ), punctuation and digits around them."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.payments.domain import matching
from services.payments.domain.matching import extract_document_numbers

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIECES = ["счет", "счёт", "СЧЕТУ", "сч.", "сч/ф", "с/ф", "счет-фактуре", "счету на оплату",
          "инвойсу", "invoice", "INV", "inv.", "Bill", "договору", "дог.", "д-ра", "Д-Р",
          "контракту", "contract", "Agreement", "расчетный", "корр.", "р/", "лицевой",
          "№", "No.", "Nr", "N", "#", "от", "01.02.2024", "г.", "15/2024", "Д-15", "1024",
          "18026,52", "40702810900000000001", "и", "and", ",", ";", ".", ":", "-", "_", "/",
          " ", "  ", "\t", "\n", "0", "7", "а", "к", "c", "a", "b", "i", "д", "и", "x", "Ж",
          "İ", "ı", "\u212a", "ſ", "ﬀ", "ß", "ё", "Ё", "é", "٣", "_счет", "1счет", "ПОсчету"]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)


def _reference(purpose: str) -> dict[str, list[str]]:
    """extract_document_numbers as it read the purpose before: the keyword pattern tried
    at every position."""
    found: dict[str, list[str]] = {"invoice_numbers": [], "contract_numbers": []}
    purpose = purpose[:matching.MAX_PURPOSE]
    for keyword in matching._KEYWORD.finditer(purpose):
        if matching._ACCOUNT_BEFORE.search(purpose, max(0, keyword.start() - 20),
                                           keyword.start()):
            continue
        kind = "invoice_numbers" if keyword["invoice"] else "contract_numbers"
        for number in matching._numbers_after(purpose, keyword.end()):
            if number not in found[kind]:
                found[kind].append(number)
    return found


@FAST
@given(TEXTS)
def test_keywords_found_where_they_can_begin_are_all_the_keywords(text):
    assert ([m.span() for m in matching._keywords(text)]
            == [m.span() for m in matching._KEYWORD.finditer(text)])


@FAST
@given(TEXTS)
def test_document_numbers_are_what_the_full_scan_finds(text):
    assert extract_document_numbers(text) == _reference(text)


@FAST
@given(st.text(max_size=60))
def test_any_text_scans_as_the_full_scan(text):
    assert ([m.span() for m in matching._keywords(text)]
            == [m.span() for m in matching._KEYWORD.finditer(text)])


def test_a_keyword_at_the_start_after_a_word_and_inside_a_word():
    text = "счет 1, подсчет 2, сч.3 INV-4"
    assert [m.group() for m in matching._keywords(text)] == ["счет", "сч", "INV"]
    assert extract_document_numbers(text)["invoice_numbers"] == ["1", "3"]


def test_the_number_and_inn_caches_stay_small_whatever_the_statement():
    # a statement's numbers and INNs are mostly distinct: a large cache only grew the
    # service's memory with the size of the file it imported
    for n in range(2 * matching.CACHED):
        matching.canonical_number(f"INV-{n}")
        matching.canonical_inn(f"77{n:08d}")
    for cached in (matching.canonical_number, matching.canonical_inn):
        assert cached.cache_info().currsize <= matching.CACHED <= 512
