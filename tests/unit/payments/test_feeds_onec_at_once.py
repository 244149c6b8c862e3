"""Documents read at once (one compiled pattern per order of keys) give exactly what
reading them a line at a time gives: the same records with the same locations, the same
totals and warnings, the same error after the same records."""
from __future__ import annotations

import dataclasses
import inspect
import io
from datetime import date
from decimal import Decimal

import pytest

from services.payments.feeds import Transaction, onec, parse_statement, textio
from services.payments.feeds.model import new_transaction
from tests.unit.payments.conftest import SHARED_FEEDS
from tests.unit.payments.onec_corpus import outcome, statements

CORPUS = dict(statements())


def failed(got: list) -> bool:
    return bool(got) and isinstance(got[-1], tuple) and got[-1][0] == "error"


def transactions(got: list) -> int:
    return sum(isinstance(r, tuple) and isinstance(r[0], Transaction) for r in got)


def read(data: bytes, monkeypatch: pytest.MonkeyPatch, *, at_once: bool) -> tuple[list, int]:
    """The outcome of parsing ``data`` and how many documents were read at once."""
    counted = [0]
    document = onec._OneC._document

    def counting(self, kind, start, v, doc):
        tx = document(self, kind, start, v, doc)
        counted[0] += doc is None
        return tx

    with monkeypatch.context() as patch:
        patch.setattr(onec._OneC, "_document", counting)
        if not at_once:  # no pattern is ever learned: every line is read on its own
            patch.setattr(onec._OneC, "_learned", lambda self, text, pos, number: (None, None, 0))
        return outcome(parse_statement(io.BytesIO(data), "t")), counted[0]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_reading_at_once_gives_what_reading_line_by_line_gives(name, monkeypatch):
    fast, at_once = read(CORPUS[name], monkeypatch, at_once=True)
    slow, none = read(CORPUS[name], monkeypatch, at_once=False)
    assert none == 0
    assert fast == slow


def test_the_corpus_is_mostly_read_at_once_and_sometimes_not(monkeypatch):
    """Else the comparison above would compare the line-at-a-time reading with itself."""
    documents = at_once = errors = 0
    for data in CORPUS.values():
        got, fast = read(data, monkeypatch, at_once=True)
        documents += transactions(got)
        at_once += fast
        errors += failed(got)
    assert documents > 4000 and 0.7 * documents < at_once < documents
    assert errors > 30


@pytest.mark.parametrize("name", ["written-cp1251", "written-utf-8"])
def test_a_clean_big_file_is_read_at_once_but_where_a_block_cuts_a_document(name, monkeypatch):
    got, at_once = read(CORPUS[name], monkeypatch, at_once=True)
    assert not failed(got) and transactions(got) == 3000
    assert 3000 - at_once <= len(CORPUS[name]) // textio.BUFFER + 1


def test_past_max_layouts_documents_are_read_at_once_from_their_pairs(monkeypatch):
    got, at_once = read(CORPUS["many-orders"], monkeypatch, at_once=True)
    assert not failed(got) and transactions(got) == 2000 and at_once > 1900


@pytest.mark.skipif(not SHARED_FEEDS.is_dir(), reason="../shared/data/feeds is absent: real "
                    "bank statements are only in CI/dev checkouts")
@pytest.mark.parametrize("name", ["1c-kilylabs-one_day-cp1251.txt",
                                  "1c-kilylabs-one_day-utf8.txt", "1c-odoo-ru-1c_to_kl-min.txt",
                                  "1c-odoo-ru-kl_to_1c.txt", "1c-unact-test.txt"])
def test_real_statements_read_at_once_as_line_by_line(name, monkeypatch):
    data = (SHARED_FEEDS / name).read_bytes()
    fast, _ = read(data, monkeypatch, at_once=True)
    slow, _ = read(data, monkeypatch, at_once=False)
    assert fast == slow and not failed(fast)


# --- the pieces: text blocks, the Transaction constructor -----------------------------

@pytest.mark.parametrize("name", sorted(CORPUS)[::7] + ["big-1002"])
@pytest.mark.parametrize("size", [7, 1000, textio.BUFFER])
def test_text_blocks_hold_the_lines_line_blocks_give(name, size):
    def lines_of(blocks):
        got = []
        try:
            for first, block in blocks:
                assert first == len(got) + 1
                got += [line.rstrip("\r") for line in block]
        except Exception as error:  # noqa: BLE001 - compared, not hidden
            got.append(str(error))
        return got

    encoding = textio.detect_encoding(CORPUS[name][:textio.HEAD_SIZE])
    by_line = lines_of(textio.line_blocks(io.BufferedReader(io.BytesIO(CORPUS[name])),
                                          encoding, size))
    by_text = lines_of((first, text.split("\n")[:text.count("\n") + (not text.endswith("\n"))])
                       for first, text in textio.text_blocks(
                           io.BufferedReader(io.BytesIO(CORPUS[name])), encoding, size))
    assert by_text == by_line


@pytest.mark.parametrize("lengths", [
    [textio.MAX_LINE - 1, 5], [textio.MAX_LINE, 5], [3, textio.MAX_LINE - 1],
    [3, textio.MAX_LINE], [3, textio.MAX_LINE + 1], [10, 20, 30], [textio.MAX_LINE * 2]])
@pytest.mark.parametrize("terminated", [True, False])
def test_line_limit_is_the_one_of_reading_a_line_at_a_time(lengths, terminated):
    data = b"\n".join(b"x" * n for n in lengths) + (b"\n" if terminated else b"")
    exact = textio._line_by_line(data[:-1] if terminated else data, 1, "cp1251", terminated)
    for decode in (textio._decoded, textio._decoded_text):
        block, count, error = decode(data, 1, "cp1251", terminated)
        assert (count, str(error)) == (exact[1], str(exact[2]))


def test_new_transaction_is_the_transaction_of_the_same_fields():
    names = [f.name for f in dataclasses.fields(Transaction)]
    assert list(inspect.signature(new_transaction).parameters) == names
    values = {"own_account": "40702810000000001234", "date": date(2024, 3, 1), "number": "7",
              "amount": Decimal("12.30"), "direction": "debit", "currency": "EUR",
              "payer_name": "a", "payer_inn": "b", "payer_account": "c", "payee_name": "d",
              "payee_inn": "e", "payee_account": "f", "purpose": "g", "entry_ref": "h",
              "reversal": True, "document_date": date(2024, 2, 29), "document_type": "i",
              "occurrence": 3, "location": "line 9"}
    made, built = new_transaction(*values.values()), Transaction(**values)
    assert type(made) is Transaction
    assert [getattr(made, n) for n in names] == [getattr(built, n) for n in names]
    assert made == built and hash(made) == hash(built) and made.identity == built.identity
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.amount = Decimal("1")  # type: ignore[misc]
    assert dataclasses.replace(made, occurrence=1) == dataclasses.replace(built, occurrence=1)
