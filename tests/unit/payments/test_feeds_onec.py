"""1CClientBankExchange: the project's own fixtures (tests/fixtures/feeds) and broken input."""
from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from services.payments.feeds import StatementError

OURS = "40702810000000001234"


def test_cp1251_crlf_incoming_outgoing_and_bank_order(own_feeds, parse_file):
    transactions, (info,) = parse_file(own_feeds / "1c-cp1251-crlf.txt")
    assert [(t.number, t.direction, t.amount, t.payer_inn) for t in transactions] == [
        ("512", "credit", D("120000.00"), "7705000001"),
        ("77", "credit", D("5000.50"), "500100732259"),
        ("301", "debit", D("30000.00"), "7701234567"),
        ("9001", "debit", D("350.00"), "7701234567")]
    assert {t.own_account for t in transactions} == {OURS}
    assert info.encoding == "cp1251" and info.warnings == ()


def test_incoming_date_is_the_day_money_arrived(own_feeds, parse_file):
    first = parse_file(own_feeds / "1c-cp1251-crlf.txt")[0][0]
    assert (first.date, first.document_date) == (date(2024, 2, 16), date(2024, 2, 15))
    assert first.payer_name == 'ООО "Ромашка"'  # Плательщик1, not "ИНН ... ООО ..."
    assert first.payer_account == "40702810100000000011"
    assert first.purpose.startswith("Оплата по счету N 1024 от 01.02.2024")


def test_receiver_given_only_as_raschschet_is_still_incoming(own_feeds, parse_file):
    second = parse_file(own_feeds / "1c-cp1251-crlf.txt")[0][1]
    assert second.direction == "credit" and second.own_account == OURS
    assert second.amount == D("5000.50")  # written "5000,50"


def test_cp866_file(own_feeds, parse_file):
    transactions, (info,) = parse_file(own_feeds / "1c-cp866.txt")
    assert info.encoding == "cp866" and info.warnings == ()
    assert [(t.direction, t.amount, t.payer_inn) for t in transactions] == [
        ("credit", D("48500.00"), "7812345678"), ("debit", D("1200.00"), "7701234567")]
    assert transactions[0].purpose == ("Предоплата по дог. № 7-А за оборудование (счёт №2048), "
                                       "НДС 8083.33")
    assert transactions[1].payee_name == 'ООО "Ёлка"'


def test_utf8_lf_with_stray_spaces_split_purpose_and_two_accounts(own_feeds, parse_file):
    transactions, (info,) = parse_file(own_feeds / "1c-utf8-lf.txt")
    assert [(t.own_account, t.direction, t.amount) for t in transactions] == [
        (OURS, "credit", D("2500.00")), (OURS, "debit", D("1000.00")),
        ("40702978000000004321", "credit", D("7300.25"))]
    assert transactions[0].payer_inn == "7705000001"  # "=  7705000001"
    # only НазначениеПлатежа1..3: joined
    assert transactions[0].purpose == "Оплата по сч. №2049 от 05.03.2024 за консультации, без НДС"
    # the whole text and its printed split: not doubled
    assert transactions[2].purpose == ("Payment for invoice 2050 under contract 15/2024, "
                                       "services March")


def test_multi_day_balance_blocks_add_up(own_feeds, parse_file):
    _, (info,) = parse_file(own_feeds / "1c-utf8-lf.txt")
    first, second = info.balances
    assert (first.opening, first.closing, first.stated_credit, first.stated_debit) == (
        D("0.00"), D("1500.00"), D("2500.00"), D("1000.00"))
    assert (second.account, second.credit_total) == ("40702978000000004321", D("7300.25"))
    assert info.warnings == ("Кодировка=Windows but the bytes are utf-8",)
    assert (info.period_start, info.period_end) == (date(2024, 3, 5), date(2024, 3, 6))


# --- broken input: the error names the line and the reason --------------------------

HEAD = ["1CClientBankExchange", "ВерсияФормата=1.03", "Кодировка=Windows",
        f"РасчСчет={OURS}"]
DOC = ["СекцияДокумент=Платежное поручение", "Номер=1", "Дата=01.03.2024", "Сумма=100.00",
       "ПлательщикИНН=7705000001", f"ПолучательСчет={OURS}", "ДатаПоступило=01.03.2024",
       "НазначениеПлатежа=Оплата", "КонецДокумента"]


def one_c(lines: list[str], encoding: str = "cp1251") -> bytes:
    return "\r\n".join(lines).encode(encoding) + b"\r\n"


def refused(parse_bytes, data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse_bytes(data)
    return caught.value


def test_valid_minimal_document(parse_bytes):
    (tx,), (info,) = parse_bytes(one_c([*HEAD, *DOC, "КонецФайла"]))
    assert (tx.direction, tx.amount, tx.own_account) == ("credit", D("100.00"), OURS)


def test_bad_amount_names_line_and_value(parse_bytes):
    doc = [*DOC]
    doc[3] = "Сумма=abc"
    error = refused(parse_bytes, one_c([*HEAD, *doc, "КонецФайла"]))
    assert str(error) == "line 8: Сумма 'abc' is not an amount"
    assert error.field == "line 8" and error.details["file"] == "test"


@pytest.mark.parametrize("text", ["1.2.3", "-5.00", "1e5", "12.345", "NaN", "١٠٠"])
def test_amount_shapes_that_are_refused(parse_bytes, text):
    doc = [*DOC]
    doc[3] = f"Сумма={text}"
    error = refused(parse_bytes, one_c([*HEAD, *doc, "КонецФайла"], "utf-8"))
    assert "is not an amount" in str(error)


def test_missing_amount(parse_bytes):
    doc = [line for line in DOC if not line.startswith("Сумма")]
    error = refused(parse_bytes, one_c([*HEAD, *doc, "КонецФайла"]))
    assert "Сумма is missing in the section started at line 5" in str(error)


def test_bad_date(parse_bytes):
    doc = [*DOC]
    doc[2] = "Дата=31.02.2024"
    error = refused(parse_bytes, one_c([*HEAD, *doc, "КонецФайла"]))
    assert str(error) == "line 7: Дата '31.02.2024' is not a date (DD.MM.YYYY)"


def test_document_without_its_end_line(parse_bytes):
    error = refused(parse_bytes, one_c([*HEAD, *DOC[:-1], *DOC, "КонецФайла"]))
    assert str(error) == ("line 13: СекцияДокумент inside the section started at line 5: "
                          "its end line is missing")


def test_truncated_file(parse_bytes):
    error = refused(parse_bytes, one_c([*HEAD, *DOC]))
    assert str(error) == "line 13: the file ends without КонецФайла (truncated?)"
    error = refused(parse_bytes, one_c([*HEAD, *DOC[:4]]))
    assert "the file ends inside the section started at line 5" in str(error)


def test_line_that_is_not_key_value(parse_bytes):
    error = refused(parse_bytes, one_c([*HEAD, "просто текст", *DOC, "КонецФайла"]))
    assert str(error) == "line 5: expected Key=Value, got 'просто текст'"


def test_end_of_document_without_a_document(parse_bytes):
    error = refused(parse_bytes, one_c([*HEAD, "КонецДокумента", "КонецФайла"]))
    assert str(error) == "line 5: КонецДокумента without a section to close"


def test_mixed_encodings_are_refused(parse_bytes):
    # the encoding is decided on the first 64 KB; a cp1251 line far below is an error
    body = DOC * 400
    data = one_c([*HEAD, *body, *DOC[:-2]], "utf-8") + "НазначениеПлатежа=Оплата\r\n".encode(
        "cp1251") + one_c([DOC[-1], "КонецФайла"])
    error = refused(parse_bytes, data)
    line = len(HEAD) + len(body) + len(DOC) - 1
    assert str(error) == (f"line {line}: byte 0xcd is not valid utf-8; the file mixes "
                          "encodings")


def test_endless_line_is_refused_without_reading_it_all(parse_bytes):
    error = refused(parse_bytes, one_c(HEAD) + b"x" * 200_000)
    assert str(error) == "line 5: longer than 65536 bytes"


def test_anything_after_the_end_of_file_is_ignored(parse_bytes):
    transactions, _ = parse_bytes(one_c([*HEAD, *DOC, "КонецФайла", "мусор"]))
    assert len(transactions) == 1


def test_totals_that_do_not_add_up_are_a_warning(parse_bytes):
    balance = ["СекцияРасчСчет", f"РасчСчет={OURS}", "НачальныйОстаток=0.00",
               "ВсегоПоступило=150.00", "ВсегоСписано=0.00", "КонечныйОстаток=150.00",
               "КонецРасчСчет"]
    _, (info,) = parse_bytes(one_c([*HEAD, *balance, *DOC, "КонецФайла"]))
    assert info.warnings == (
        f"account {OURS}: credits add up to 100.00, the statement says 150.00",
        f"account {OURS}: opening 0.00 + credits 100.00 - debits 0.00 = 100.00, "
        "but the closing balance is 150.00")


def test_without_own_accounts_the_receipt_date_decides(parse_bytes):
    (tx,), _ = parse_bytes(one_c([HEAD[0], *DOC, "КонецФайла"]))
    assert tx.direction == "credit" and tx.own_account == OURS


def test_runaway_section_is_refused(parse_bytes):
    keys = [f"Ключ{i}=значение" for i in range(600)]
    error = refused(parse_bytes, one_c([*HEAD, DOC[0], *keys]))
    assert str(error) == "line 506: more than 500 keys in the section started at line 5"


def test_utf8_byte_order_mark_is_ignored(parse_bytes):
    (tx,), (info,) = parse_bytes(b"\xef\xbb\xbf" + one_c([*HEAD, *DOC, "КонецФайла"], "utf-8"))
    assert info.encoding == "utf-8" and tx.amount == D("100.00")


@pytest.mark.parametrize("encoding", ["cp1251", "cp866"])
def test_encoding_without_a_kodirovka_line_is_told_by_letters(parse_bytes, encoding):
    head = [line for line in HEAD if not line.startswith("Кодировка")]
    (tx,), (info,) = parse_bytes(one_c([*head, *DOC, "КонецФайла"], encoding))
    assert info.encoding == encoding and tx.purpose == "Оплата"


def test_line_ends_and_stray_spaces_read_alike(parse_bytes):
    """CRLF, LF, a mix of both, and lines that need stripping all give the same records
    and the same line numbers in errors: the fast reading of clean CRLF documents and the
    general one agree."""
    docs = [[*DOC[:1], f"Номер={n}", *DOC[2:]] for n in range(1, 40)]
    lines = [*HEAD, *(line for doc in docs for line in doc), "КонецФайла"]
    crlf = one_c(lines)
    lf = "\n".join(lines).encode("cp1251") + b"\n"
    mixed = crlf.replace(b"\r\n", b"\n", 50)
    spaced = one_c([f" {line.replace('=', ' = ', 1)}\t" if line.startswith("Номер") else line
                    for line in lines])
    expected = parse_bytes(crlf)
    assert [tx.number for tx in expected[0]] == [str(n) for n in range(1, 40)]
    for data in (lf, mixed, spaced):
        assert parse_bytes(data) == expected
    bad = [*lines]
    bad[len(HEAD) + 3 + 9 * 20] = "Сумма=1,2,3"
    for data in (one_c(bad), "\n".join(bad).encode("cp1251") + b"\n"):
        assert str(refused(parse_bytes, data)) == (f"line {len(HEAD) + 4 + 9 * 20}: "
                                                   "Сумма '1,2,3' is not an amount")
