"""A refused statement says what is wrong and where in the reader's language: every
parser error carries a message key with the line (a number) and the field, and both
catalogs have its text.  The Russian text must never fall back to the parser's English
("отклонён line 47")."""
from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from gateway.catalog_keys import keys_in_tree
from services.payments.feeds import StatementError
from services.payments.feeds.errors import GENERIC, GENERIC_LINE
from tests.unit.payments.test_feeds_onec import DOC, HEAD, one_c

TRANSLATIONS = Path(__file__).resolve().parents[3] / "gateway" / "translations"


def catalog(lang: str) -> dict[str, str]:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return {str(m.id): str(m.string) for m in read_po(source) if m.id and m.string}


RU, EN = catalog("ru"), catalog("en")


def refused(parse_bytes, data: bytes) -> StatementError:
    with pytest.raises(StatementError) as caught:
        parse_bytes(data)
    return caught.value


def russian(error: StatementError) -> str:
    return RU[str(error.key)] % error.params


def with_line(index: int, text: str) -> list[str]:
    doc = [*DOC]
    doc[index] = text
    return doc


# (lines of the file, key, the params that matter, words the Russian text must hold)
CASES = [
    ([*HEAD, *with_line(3, "Сумма=12,3x"), "КонецФайла"], "statement.line.amount",
     {"line": 8, "field": "Сумма", "value": "12,3x"}, ["Строка 8", "«Сумма»", "12,3x"]),
    ([*HEAD, *with_line(2, "Дата=31.02.2024"), "КонецФайла"], "statement.line.date",
     {"line": 7, "field": "Дата", "value": "31.02.2024"}, ["Строка 7", "«Дата»", "не дата"]),
    ([*HEAD, *[x for x in DOC if not x.startswith("Сумма")], "КонецФайла"],
     "statement.line.missing", {"line": 5, "field": "Сумма", "start": 5},
     ["Строка 5", "нет поля «Сумма»"]),
    ([*HEAD, "просто текст", *DOC, "КонецФайла"], "statement.line.key_value",
     {"line": 5, "value": "просто текст"}, ["Строка 5", "Ключ=Значение"]),
    ([*HEAD, "КонецДокумента", "КонецФайла"], "statement.line.orphan_end",
     {"line": 5, "name": "КонецДокумента"}, ["Строка 5", "без открытой секции"]),
    ([*HEAD, *DOC[:-1], *DOC, "КонецФайла"], "statement.line.unclosed",
     {"line": 13, "name": "СекцияДокумент", "start": 5}, ["Строка 13", "строке 5"]),
    ([*HEAD, *DOC], "statement.line.truncated", {"line": 13}, ["Строка 13", "КонецФайла"]),
    ([*HEAD, *DOC[:4]], "statement.line.truncated_section", {"start": 5},
     ["начатой в строке 5", "обрезан"]),
    ([*HEAD, *DOC[:-1], "КонецРасчСчет", "КонецФайла"], "statement.line.wrong_end",
     {"line": 13, "name": "КонецРасчСчет", "expected": "КонецДокумента"},
     ["Строка 13", "КонецДокумента"]),
    (["1CClientBankExchange v2", *HEAD[1:], *DOC, "КонецФайла"], "statement.line.magic",
     {"line": 1, "value": "1CClientBankExchange v2"},
     ["Строка 1", "1CClientBankExchange"]),
]


@pytest.mark.parametrize("lines, key, params, words", CASES,
                         ids=[c[1] for c in CASES])
def test_a_broken_1c_file_names_line_and_field_in_russian(parse_bytes, lines, key, params,
                                                           words):
    error = refused(parse_bytes, one_c(lines))
    assert error.key == key
    assert {name: error.params.get(name) for name in params} == params
    text = russian(error)
    assert all(word in text for word in words), text
    assert "line" not in text and "%(" not in text
    # the English catalog renders the same error with every placeholder filled
    assert "%(" not in EN[key] % error.params


def test_the_error_travels_whole(parse_bytes):
    """nameko rebuilds an error as cls(*args): key and params survive the trip."""
    error = refused(parse_bytes, one_c([*HEAD, *with_line(3, "Сумма=abc"), "КонецФайла"]))
    again = StatementError(*error.args)
    assert (again.key, again.params, again.field, again.message) == (
        error.key, error.params, error.field, error.message)


def test_mixed_encodings_name_the_byte_and_the_line(parse_bytes):
    body = DOC * 400
    data = one_c([*HEAD, *body, *DOC[:-2]], "utf-8") + "НазначениеПлатежа=Оплата\r\n".encode(
        "cp1251") + one_c([DOC[-1], "КонецФайла"])
    error = refused(parse_bytes, data)
    line = len(HEAD) + len(body) + len(DOC) - 1
    assert (error.key, error.params["line"], error.params["byte"]) == (
        "statement.line.encoding", line, "0xcd")
    assert russian(error).startswith(f"Строка {line}: байт 0xcd")


def test_an_endless_line_is_named(parse_bytes):
    error = refused(parse_bytes, one_c(HEAD) + b"x" * 200_000)
    assert (error.key, error.params["line"]) == ("statement.line.too_long", 5)
    assert "Строка 5 длиннее 65536 байт" in russian(error)


def test_not_a_statement_at_all(parse_bytes):
    error = refused(parse_bytes, b"hello, world\n")
    assert error.key == "statement.not_statement"
    assert "не банковская выписка" in russian(error)


def test_errors_without_a_key_of_their_own_still_say_where():
    at_line = StatementError.at("line 3", "something odd")
    elsewhere = StatementError.at("Stmt[1]/Ntry[2]/Amt", "'1..2' is not an amount")
    assert (at_line.key, at_line.params["line"]) == (GENERIC_LINE, 3)
    assert RU[GENERIC_LINE] % at_line.params == "Строка 3: something odd"
    assert elsewhere.key == GENERIC and "line" not in elsewhere.params
    assert "Stmt[1]/Ntry[2]/Amt" in RU[GENERIC] % elsewhere.params


def test_every_statement_key_has_both_texts():
    keys = {k for k, where in keys_in_tree().items() if k.startswith("statement.")}
    keys |= {GENERIC, GENERIC_LINE}
    assert len(keys) >= 15  # the keys raised through StatementError.at are found too
    assert sorted(keys - set(RU)) == [] and sorted(keys - set(EN)) == []


def test_a_real_statement_with_a_broken_amount_names_its_line(shared_feeds, parse_bytes):
    """A real cp1251 statement, one amount spoiled in memory (the file is not copied): the
    error names the very line of that amount."""
    data = (shared_feeds / "1c-kilylabs-one_day-cp1251.txt").read_bytes()
    lines = data.split(b"\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("Сумма=".encode("cp1251")))
    lines[index] = "Сумма=12,3x\r".encode("cp1251")
    error = refused(parse_bytes, b"\n".join(lines))
    assert (error.key, error.params["line"], error.params["value"]) == (
        "statement.line.amount", index + 1, "12,3x")
    assert russian(error) == f"Строка {index + 1}: в поле «Сумма» не сумма: «12,3x»."


def test_the_import_page_text_is_russian_and_falls_back_to_the_service_words():
    from flask import Flask, g

    from gateway.messages import init_app
    from gateway.sections.payments import import_error

    app = Flask(__name__)
    init_app(app)
    keyed = {"error": "line 8: Сумма 'abc' is not an amount", "error_location": "line 8",
             "error_key": "statement.line.amount",
             "error_params": {"line": 8, "field": "Сумма", "value": "abc"}}
    old = {"error": "the import failed 3 times: OperationalError", "error_location": None}
    with app.test_request_context("/payments/imports/1"):
        g.lang = "ru"
        assert import_error(keyed) == "Строка 8: в поле «Сумма» не сумма: «abc»."
        assert import_error(old) == "the import failed 3 times: OperationalError"
        assert import_error({"error": None}) == ""
    with app.test_request_context("/payments/imports/1"):
        g.lang = "en"
        assert import_error(keyed) == 'Line 8: field "Сумма" is not an amount: "abc".'


def test_the_real_garbled_camt_file_names_its_element_and_value(shared_feeds, parse_file):
    with pytest.raises(StatementError) as caught:
        parse_file(shared_feeds / "camt053-bsp-garbled_amount.xml")
    error = caught.value
    assert (error.key, error.params["location"], error.params["value"]) == (
        "statement.element.amount", "Stmt[1]/Ntry[1]/Amt", "12..34")
    assert russian(error) == "Элемент Stmt[1]/Ntry[1]/Amt: не сумма: «12..34»."
