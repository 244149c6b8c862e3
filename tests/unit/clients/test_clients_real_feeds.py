"""Requisites taken from real bank-client files (../shared/data/feeds/*.txt).

The files are 1CClientBankExchange exports; some are anonymised or synthetic, so each
value the validator refuses was inspected by hand and is listed in PLACEHOLDERS.  A
refused value that is not listed means either a validator bug or a new feed file that
needs the same inspection.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from services.clients.domain.requisites import (
    check_bik,
    check_correspondent_account,
    check_inn,
    check_kpp,
    check_settlement_account,
)
from services.kit.errors import ValidationError

from .vectors import REAL_ACCOUNTS, REAL_BANKS

REPO_ROOT = Path(__file__).resolve().parents[3]
FEEDS = REPO_ROOT.parent / "shared" / "data" / "feeds"

# Refused values, each checked by hand: none is a real requisite.
PLACEHOLDERS = {
    "123123123123",  # INN "123123..." (kilylabs)
    "12312312312312312",  # 17-digit payer account (kilylabs)
    "40702810200000000001",  # the statement's own account, anonymised (kilylabs)
    "0000000001", "0000000002",  # INNs (odoo-ru, anonymised)
    "000000001", "000000002",  # KPPs (odoo-ru)
    "00000000000000000001", "00000000000000000002",  # accounts (odoo-ru)
    "00000000000000000003", "00000000000000000004",  # correspondent accounts (odoo-ru)
    "000000000000",  # INN (unact, synthetic)
    "Payer bank BIC", "Receiver bank BIC",  # BIK fields (unact, synthetic)
}
SIDES = ("Плательщик", "Получатель")


def decode(raw: bytes) -> str:
    # "Кодировка=Windows" files are cp1251; UTF-8 ones exist in the wild.
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1251")


def documents(path: Path) -> list[dict[str, str]]:
    """The key=value pairs of each СекцияДокумент ... КонецДокумента block."""
    docs: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in decode(path.read_bytes()).splitlines():
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key == "СекцияДокумент":
            current = {}
            docs.append(current)
        elif key == "КонецДокумента":
            current = None
        elif current is not None:
            current[key] = value
    return docs


def requisites_in(paths: list[Path]) -> list[tuple[str, str, str]]:
    """(what, value, bik) for every party of every document; bik is "" for INN/KPP."""
    found = []
    for path in paths:
        for doc in documents(path):
            for side in SIDES:
                bik = doc.get(side + "БИК", "")
                found += [("inn", doc.get(side + "ИНН", ""), ""),
                          ("kpp", doc.get(side + "КПП", ""), ""),
                          ("bik", bik, ""),
                          ("account", doc.get(side + "РасчСчет", ""), bik),
                          ("correspondent", doc.get(side + "Корсчет", ""), bik)]
    return [item for item in found if item[1]]


def validates(what: str, value: str, bik: str) -> bool:
    checks = {"inn": lambda: check_inn(value), "kpp": lambda: check_kpp(value),
              "bik": lambda: check_bik(value),
              "account": lambda: check_settlement_account(value, check_bik(bik)),
              "correspondent": lambda: check_correspondent_account(value, check_bik(bik))}
    try:
        checks[what]()
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def feed_requisites() -> list[tuple[str, str, str]]:
    if not FEEDS.is_dir():
        pytest.skip("../shared/data/feeds is absent")
    return requisites_in(sorted(FEEDS.glob("*.txt")))


def test_hard_coded_real_vectors_come_from_the_feeds_and_validate(
        feed_requisites: list[tuple[str, str, str]]) -> None:
    found = set(feed_requisites)
    for bik, correspondent in REAL_BANKS:
        assert ("correspondent", correspondent, bik) in found
        assert validates("correspondent", correspondent, bik)
    for account, bik in REAL_ACCOUNTS:
        assert ("account", account, bik) in found
        assert validates("account", account, bik)


def test_every_refused_feed_value_is_a_known_placeholder(
        feed_requisites: list[tuple[str, str, str]]) -> None:
    refused = {value for what, value, bik in feed_requisites
               if value not in PLACEHOLDERS and not validates(what, value, bik)
               and (what not in ("account", "correspondent") or bik not in PLACEHOLDERS)}
    assert refused == set(), "inspect these by hand: real requisites or placeholders?"


def test_cp1251_and_utf8_exports_of_one_file_give_the_same_requisites() -> None:
    cp1251 = FEEDS / "1c-kilylabs-one_day-cp1251.txt"
    utf8 = FEEDS / "1c-kilylabs-one_day-utf8.txt"
    if not (cp1251.is_file() and utf8.is_file()):
        pytest.skip("../shared/data/feeds is absent")
    assert requisites_in([cp1251]) == requisites_in([utf8])
