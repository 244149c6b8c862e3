"""Write Transactions as a 1CClientBankExchange file: for benchmarks, property tests and
demo data.  Not used to talk to banks."""
from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from services.kit import clock
from services.payments.feeds.model import CENT, CREDIT, Transaction

DECLARED = {"cp1251": "Windows", "cp866": "DOS", "utf-8": "UTF-8"}  # the standard has no UTF-8


def write_1c_statement(target: str | Path | BinaryIO, transactions: Iterable[Transaction], *,
                       encoding: str = "cp1251", newline: str = "\r\n",
                       opening_balances: dict[str, Decimal] | None = None) -> int:
    """Write a valid 1CClientBankExchange 1.03 file; returns the number of documents.

    One ``СекцияРасчСчет`` per own account with totals that add up (so the parser's
    checks pass), which needs the totals before the documents: the transactions are
    listed first.  Values must be encodable in ``encoding`` and hold no line breaks.
    """
    txs = list(transactions)
    encoder = codecs.getencoder(encoding)
    with _binary(target) as out:
        buffer: list[str] = []
        for line in _lines(txs, encoding, opening_balances or {}):
            if "\n" in line or "\r" in line:
                raise ValueError(f"a 1C value cannot hold a line break: {line[:60]!r}")
            buffer.append(line)
            if len(buffer) >= 4096:  # big files: write in slices, not line by line
                out.write(encoder(newline.join(buffer) + newline)[0])
                buffer.clear()
        out.write(encoder(newline.join(buffer) + newline)[0])
    return len(txs)


@contextmanager
def _binary(target: str | Path | BinaryIO) -> Iterator[BinaryIO]:
    if isinstance(target, (str, Path)):
        with open(target, "wb") as handle:
            yield handle
    else:
        yield target


def _lines(txs: list[Transaction], encoding: str,
           opening: dict[str, Decimal]) -> Iterator[str]:
    accounts = list(dict.fromkeys([*opening, *(t.own_account for t in txs)]))
    dates = [t.date for t in txs] or [clock.business_today()]
    start, end = min(dates), max(dates)
    yield "1CClientBankExchange"
    yield "ВерсияФормата=1.03"
    yield f"Кодировка={DECLARED.get(encoding, 'Windows')}"
    yield "Отправитель=CRM test bank"
    yield "Получатель=1С:Предприятие"
    yield f"ДатаНачала={_d(start)}"
    yield f"ДатаКонца={_d(end)}"
    yield from (f"РасчСчет={a}" for a in accounts)
    for account in accounts:
        yield from _balance(account, txs, opening.get(account, Decimal("0.00")), start, end)
    for tx in txs:
        yield from _document(tx)
    yield "КонецФайла"


def _balance(account: str, txs: list[Transaction], opening: Decimal, start: date,
             end: date) -> Iterator[str]:
    mine = [t for t in txs if t.own_account == account]
    credit = sum((t.amount for t in mine if t.direction == CREDIT), Decimal("0.00"))
    debit = sum((t.amount for t in mine if t.direction != CREDIT), Decimal("0.00"))
    yield "СекцияРасчСчет"
    yield f"ДатаНачала={_d(start)}"
    yield f"ДатаКонца={_d(end)}"
    yield f"РасчСчет={account}"
    yield f"НачальныйОстаток={_m(opening)}"
    yield f"ВсегоПоступило={_m(credit)}"
    yield f"ВсегоСписано={_m(debit)}"
    yield f"КонечныйОстаток={_m(opening + credit - debit)}"
    yield "КонецРасчСчет"


def _document(tx: Transaction) -> Iterator[str]:
    incoming = tx.direction == CREDIT
    payer_account = tx.payer_account if incoming else tx.own_account
    payee_account = tx.own_account if incoming else tx.payee_account
    yield f"СекцияДокумент={tx.document_type or 'Платежное поручение'}"
    yield f"Номер={tx.number}"
    yield f"Дата={_d(tx.document_date or tx.date)}"
    yield f"Сумма={_m(tx.amount)}"
    yield f"ПлательщикСчет={payer_account}"
    yield f"{'ДатаСписано' if not incoming else 'ДатаПоступило'}={_d(tx.date)}"
    yield f"Плательщик={tx.payer_name}"
    yield f"ПлательщикИНН={tx.payer_inn}"
    yield f"Плательщик1={tx.payer_name}"
    yield f"ПлательщикРасчСчет={payer_account}"
    yield f"ПолучательСчет={payee_account}"
    yield f"Получатель={tx.payee_name}"
    yield f"ПолучательИНН={tx.payee_inn}"
    yield f"Получатель1={tx.payee_name}"
    yield f"ПолучательРасчСчет={payee_account}"
    yield "ВидОплаты=01"
    yield "Очередность=5"
    yield f"НазначениеПлатежа={tx.purpose}"
    yield "КонецДокумента"


def _d(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def _m(amount: Decimal) -> str:
    if amount != amount.quantize(CENT):
        raise ValueError(f"1C amounts have two decimals at most: {amount}")
    return str(amount.quantize(CENT))
