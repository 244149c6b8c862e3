"""1C statements, valid and broken in the ways files are, for tests that compare two ways
of reading them: the project's fixtures, the real files next to the repository (when
there), and generated ones (seeded, so a failure can be replayed by its name)."""
from __future__ import annotations

import io
import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

OURS, OTHER_OURS = "40702810000000001234", "40702978000000004321"
CLIENT = "40702810100000000011"
REPO_ROOT = Path(__file__).resolve().parents[3]
FIXTURE_DIRS = (REPO_ROOT / "tests" / "fixtures" / "feeds",
                REPO_ROOT.parent / "shared" / "data" / "feeds")

# One line each: what a program or a person does to a line of a statement.
DAMAGES = [
    lambda line, r: line + " ",  # a trailing space
    lambda line, r: "  " + line,  # an indent
    lambda line, r: line.replace("=", " = ", 1),  # spaces around "="
    lambda line, r: line.replace("=", "=\t", 1),
    lambda line, r: line + "\u00a0",  # a no-break space: strip() takes it too
    lambda line, r: "",  # a blank line
    lambda line, r: line.split("=", 1)[0],  # the value and "=" lost
    lambda line, r: "=" + line.split("=", 1)[-1],  # the key lost
    lambda line, r: line + "=x",  # an "=" in the value
    lambda line, r: line + "\r",  # a stray "\r"
    lambda line, r: line.replace("=", "=a\rb", 1),  # a lone "\r" inside the value
    lambda line, r: r.choice(["СекцияДокумент=Платежное поручение", "КонецФайла",
                              "СекцияРасчСчет", "КонецРасчСчет", "КонецДокумента"]),
    lambda line, r: r.choice(["Сумма=1 234,56", "Сумма=12,3x", "Сумма=", "Сумма=0",
                              "Сумма=007.5", "Сумма=1.234", "Сумма=١٢", "Сумма=99999999999999999"]),
    lambda line, r: r.choice(["Дата=31.02.2024", "Дата=", "Дата=1.3.24", "ДатаПоступило=",
                              "ДатаСписано=05.03.2024", "ДатаПоступило=x", "Дата=01.03.2024 "]),
    lambda line, r: r.choice([f"ПолучательСчет={OTHER_OURS}", f"ПлательщикСчет={OURS}",
                              f"ПлательщикРасчСчет={OTHER_OURS}", "ПолучательСчет=",
                              "ПолучательРасчСчет=40702810999999999999"]),
    lambda line, r: r.choice(["НазначениеПлатежа1=Оплата по счету", "НазначениеПлатежа2=№ 12",
                              "НазначениеПлатежа=", "НазначениеПлатежа=Оплата по счету № 12",
                              "НазначениеПлатежа3=дополнение"]),
    lambda line, r: line,  # the same line twice: the last one counts
    lambda line, r: r.choice(["Номер=", "ПлательщикИНН=", "Плательщик1=", "Получатель1="]),
]


def document(r: random.Random, k: int) -> list[str]:
    credit = r.random() < 0.7
    day = f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.2024"
    lines = [f"СекцияДокумент={r.choice(['Платежное поручение', 'Банковский ордер', ''])}",
             f"Номер={k}", f"Дата={day}", f"Сумма={r.randint(1, 10**6)}.{r.randint(0, 99):02d}",
             f"ПлательщикСчет={CLIENT if credit else OURS}",
             f"{'ДатаПоступило' if credit else 'ДатаСписано'}={day}",
             f"Плательщик=ИНН 7705000001 ООО \"Ромашка {k % 7}\"", "ПлательщикИНН=7705000001",
             f"Плательщик1=ООО \"Ромашка {k % 7}\"",
             f"ПлательщикРасчСчет={CLIENT if credit else OURS}",
             f"ПолучательСчет={OURS if credit else CLIENT}", "Получатель=ООО Мы",
             "ПолучательИНН=7700000000", f"ПолучательРасчСчет={OURS if credit else CLIENT}",
             "ВидОплаты=01", "Очередность=5",
             f"НазначениеПлатежа=Оплата по счету № {k % 50} от {day}", "КонецДокумента"]
    if r.random() < 0.3:  # another program's order of keys
        body = lines[1:-1]
        r.shuffle(body)
        lines = [lines[0], *body, lines[-1]]
    return lines


def statement(seed: int, documents: int, damages: int) -> list[str]:
    r = random.Random(seed)
    lines = ["1CClientBankExchange", "ВерсияФормата=1.03", "Кодировка=Windows",
             "ДатаНачала=01.01.2024", "ДатаКонца=31.12.2024", f"РасчСчет={OURS}"]
    if r.random() < 0.5:
        lines.append(f"РасчСчет={OTHER_OURS}")
    lines += ["СекцияРасчСчет", "ДатаНачала=01.01.2024", f"РасчСчет={OURS}",
              "НачальныйОстаток=100.00", "ВсегоПоступило=0.00", "КонечныйОстаток=100.00",
              "КонецРасчСчет"]
    start = len(lines)
    for k in range(documents):
        lines += document(r, k)
        if r.random() < 0.1:  # the same payment twice: its occurrence tells them apart
            lines += lines[-18:]
    for _ in range(damages):
        at = r.randrange(start, len(lines))
        lines[at] = r.choice(DAMAGES)(lines[at], r)
    if r.random() < 0.9:
        lines.append("КонецФайла")
    return lines


def encoded(lines: list[str], encoding: str, newline: str) -> bytes:
    return (newline.join(lines) + newline).encode(encoding, errors="replace")


def statements() -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every statement of the corpus."""
    for folder in FIXTURE_DIRS:
        if folder.is_dir():
            for path in sorted(folder.glob("1c-*")):
                yield path.name, path.read_bytes()
    for seed in range(160):
        damages = [0, 1, 2, 5][seed % 4]
        encoding = ("cp1251", "utf-8", "cp866")[seed % 3]
        newline = ("\r\n", "\n")[seed // 3 % 2]
        lines = statement(seed, 1 + seed % 9, damages)
        data = encoded(lines, encoding, newline)
        if seed % 10 == 7:  # one line with the other line end
            data = data.replace(newline.encode(), ("\n" if newline == "\r\n" else "\r\n")
                                .encode(), 1)
        if seed % 20 == 11:
            data = b"\xef\xbb\xbf" + data if encoding == "utf-8" else data[:-1]
        yield f"generated-{seed}-{encoding}-{len(newline)}", data
    # big ones, so documents cross the reader's blocks (256 KB): clean, then damaged
    for seed, damages in ((1000, 0), (1001, 40), (1002, 400)):
        yield f"big-{seed}", encoded(statement(seed, 3000, damages), "cp1251", "\r\n")
    yield "many-orders", encoded(many_orders(2000), "utf-8", "\r\n")
    for encoding, newline in (("cp1251", "\r\n"), ("utf-8", "\n")):  # as the bench writes
        yield f"written-{encoding}", written(3000, encoding, newline)


def many_orders(count: int) -> list[str]:
    """Valid documents each with its keys in an order of its own, some keys twice with
    different values (the last counts), stray spaces around values."""
    r = random.Random(77)
    lines = statement(77, 0, 0)[:-1]
    for k in range(count):
        doc = document(r, k)
        body = doc[1:-1]
        r.shuffle(body)
        if r.random() < 0.3:
            at = r.randrange(len(body))
            body.insert(r.randrange(at + 1), body[at].split("=")[0] + "=раньше")
        if r.random() < 0.3:
            at = r.randrange(len(body))
            body[at] = body[at].replace("=", "= ", 1) + " \t"
        lines += [doc[0], *body, doc[-1]]
    return [*lines, "КонецФайла"]


def written(count: int, encoding: str, newline: str) -> bytes:
    from services.payments.feeds import Transaction, write_1c_statement
    out = io.BytesIO()
    write_1c_statement(out, [Transaction(
        own_account=OURS, date=date(2024, 1, 1) + timedelta(days=k % 300), number=str(k % 900),
        amount=Decimal(k % 5000) + Decimal(k % 100) / 100, direction="credit" if k % 4 else "debit",
        payer_name=f"ООО Плательщик {k % 30}", payer_inn=f"77{k % 40:08d}", payer_account=CLIENT,
        payee_name="ООО Мы", payee_inn="7700000000", payee_account=CLIENT,
        purpose=f"Оплата по счету № {k}") for k in range(count)],
        encoding=encoding, newline=newline)
    return out.getvalue()


def outcome(records: Any) -> Any:
    """What a reading gave, to compare: every record with its location, or the error
    with its message, location and details, after the records before it."""
    from services.payments.feeds import StatementError, Transaction
    got: list[Any] = []
    try:
        for record in records:
            got.append((record, record.location) if isinstance(record, Transaction)
                       else record)
    except StatementError as error:
        got.append(("error", str(error), error.field, error.details))
    return got
