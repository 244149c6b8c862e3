"""Russian company requisites: INN, KPP, OGRN/OGRNIP, BIK and bank accounts.

Every ``check_*`` function takes raw user or file input, normalises it (whitespace removed,
KPP upper-cased) and returns the cleaned value, or raises ``ValidationError`` naming the
field.  Account checks return warnings instead of failing where real, valid accounts are
known to break the rule (treasury accounts).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from itertools import cycle
from typing import Any

from services.clients.domain.phones import normalize_email, normalize_phone
from services.clients.domain.text import clean_text, is_blank, require_text, shown
from services.kit.errors import ValidationError

INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
ACCOUNT_WEIGHTS = (7, 1, 3)

_WHITESPACE = re.compile(r"\s+")
_ASCII_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() would let "²" and "٣" through
_KPP = re.compile(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}")

CLIENT_KINDS = ("legal", "entrepreneur", "person")
TEXT_LIMITS = {"name": 255, "full_name": 255, "legal_address": 500, "postal_address": 500,
               "address": 500}
BANK_FIELDS = ("bik", "settlement_account", "correspondent_account")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "legal": ("name", "inn", "kpp", "ogrn", "legal_address", "postal_address", *BANK_FIELDS),
    "entrepreneur": ("name", "inn", "ogrnip", "legal_address", "postal_address",
                     *BANK_FIELDS),
    "person": ("full_name", "phone", "email", "address"),
}
# A client is created from whatever is known (a phone, or nothing) and its requisites are
# filled in later: no requisite is required to save a client.  A document or an invoice
# does need some of them; ``missing_for_documents`` says which.
DOCUMENT_FIELDS = {"legal": ("inn",), "entrepreneur": ("inn",), "person": ()}
INN_LENGTH = {"legal": 10, "entrepreneur": 12}


def compact(value: object, field: str) -> str:
    """Drop all whitespace (people paste "7707 083 893" and non-breaking spaces)."""
    return _WHITESPACE.sub("", require_text(value, field))


def digits(value: object, field: str, *lengths: int) -> str:
    """A string of ASCII digits of one of ``lengths``, whitespace removed."""
    text = compact(value, field)
    if not text:
        raise ValidationError("Поле пустое.", field=field, key="required")
    if not _ASCII_DIGITS.fullmatch(text):
        raise ValidationError(f"Только цифры, а не «{shown(value)}».", field=field,
                              key="digits.only", params={"value": shown(value)})
    if len(text) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise ValidationError(f"Нужно {expected} цифр, а введено {len(text)}.", field=field,
                              key="digits.length", params={"expected": expected,
                                                           "got": len(text)})
    return text


def weighted_mod11(number: str, weights: Iterable[int]) -> int:
    """INN control digit: weighted sum mod 11, and a remainder of 10 becomes 0."""
    return sum(w * int(d) for w, d in zip(weights, number, strict=False)) % 11 % 10


def _check_tax_office(number: str, field: str) -> None:
    # INN and KPP open with a region code, 01 and up; all-zero placeholders
    # ("000000000000") otherwise pass the INN checksum.
    if number.startswith("00"):
        raise ValidationError(f"Номер {number} не может начинаться с 00: такого региона нет.",
                              field=field, key="tax.region", params={"value": number})


def check_inn(value: object, field: str = "inn", length: int | None = None) -> str:
    """INN of a company (10 digits) or of a person/entrepreneur (12 digits)."""
    inn = digits(value, field, *((length,) if length else (10, 12)))
    _check_tax_office(inn, field)
    if len(inn) == 10:
        ok = weighted_mod11(inn, INN10_WEIGHTS) == int(inn[9])
    else:
        ok = (weighted_mod11(inn, INN12_WEIGHTS_11) == int(inn[10])
              and weighted_mod11(inn, INN12_WEIGHTS_12) == int(inn[11]))
    if not ok:
        raise ValidationError(f"В ИНН {inn} неверная контрольная цифра.", field=field,
                              key="inn.checksum", params={"value": inn})
    return inn


def check_kpp(value: object, field: str = "kpp") -> str:
    """KPP: 4 digits (tax office), 2 digits or Latin capitals (reason), 3 digits."""
    kpp = compact(value, field).upper()
    if len(kpp) != 9:
        raise ValidationError(f"КПП — 9 знаков, а введено {len(kpp)}.", field=field,
                              key="kpp.length", params={"got": len(kpp)})
    if not _KPP.fullmatch(kpp):
        raise ValidationError(
            f"КПП «{shown(value)}»: 4 цифры, затем 2 цифры или латинские заглавные, затем "
            f"3 цифры.", field=field, key="kpp.format", params={"value": shown(value)})
    _check_tax_office(kpp, field)
    return kpp


def check_ogrn(value: object, field: str = "ogrn") -> str:
    """OGRN of a legal entity: 13 digits, the first 12 as a number mod 11 mod 10."""
    ogrn = digits(value, field, 13)
    # The first digit says what the register record is: 1 and 5 are an OGRN; 2, 6-9 are
    # other records' numbers (GRN) that people paste by mistake; 3, 4 are OGRNIP.
    if ogrn[0] not in "15":
        raise ValidationError(f"ОГРН начинается с 1 или 5, а не «{ogrn}».", field=field,
                              key="ogrn.prefix", params={"value": ogrn})
    if int(ogrn[:12]) % 11 % 10 != int(ogrn[12]):
        raise ValidationError(f"В ОГРН {ogrn} неверная контрольная цифра.", field=field,
                              key="ogrn.checksum", params={"value": ogrn})
    return ogrn


def check_ogrnip(value: object, field: str = "ogrnip") -> str:
    """OGRNIP: 15 digits, the first 14 as a number mod 13 mod 10.

    The "mod 10" matters: remainders 10, 11 and 12 give check digits 0, 1 and 2
    (python-stdnum compares against the two-digit remainder and rejects such numbers).
    """
    ogrnip = digits(value, field, 15)
    if ogrnip[0] not in "34":
        raise ValidationError(f"ОГРНИП начинается с 3 или 4, а не «{ogrnip}».", field=field,
                              key="ogrnip.prefix", params={"value": ogrnip})
    if int(ogrnip[:14]) % 13 % 10 != int(ogrnip[14]):
        raise ValidationError(f"В ОГРНИП {ogrnip} неверная контрольная цифра.", field=field,
                              key="ogrnip.checksum", params={"value": ogrnip})
    return ogrnip


def check_bik(value: object, field: str = "bik") -> str:
    """BIK: 9 digits; "0x" are Bank of Russia and treasury codes, "1x"/"2x" the new ones."""
    bik = digits(value, field, 9)
    if bik[0] not in "012":
        raise ValidationError(f"БИК начинается с 0, 1 или 2, а не «{bik}».", field=field,
                              key="bik.prefix", params={"value": bik})
    return bik


def account_key_ok(prefix: str, account: str) -> bool:
    """The Bank of Russia control key over the 3-digit prefix and the 20-digit account."""
    weighted = (w * int(d) % 10 for w, d in zip(cycle(ACCOUNT_WEIGHTS), prefix + account))
    return sum(weighted) % 10 == 0


def is_rkc(bik: str) -> bool:
    """Cash settlement centres of the Bank of Russia have "00" in BIK digits 7-8."""
    return bik[6:8] == "00"


def check_settlement_account(value: object, bik: str,
                             field: str = "settlement_account") -> tuple[str, list[str]]:
    """A client's account at the bank ``bik`` (already checked); returns (account, warnings).

    Treasury accounts ("03...") are valid in real payments yet do not satisfy the key
    against the treasury's BIK, so they only earn a warning.
    """
    account = digits(value, field, 20)
    prefix = "0" + bik[4:6] if is_rkc(bik) else bik[6:9]
    if account_key_ok(prefix, account):
        return account, []
    if account.startswith("03"):
        warning = (f"{field}: treasury account {account} cannot be checked against "
                   f"BIK {bik}; please verify it by hand")
        return account, [warning]
    raise ValidationError(f"Счёт {account} не сходится с БИК {bik} (неверный ключ).",
                          field=field, key="account.key", params={"value": account,
                                                                   "bik": bik})


def check_correspondent_account(value: object, bik: str,
                                field: str = "correspondent_account") -> str:
    """The bank's own account at the Bank of Russia: keyed with "0" + BIK digits 5-6.

    It is a bank's account (30101...) ending in the BIK's last three digits, or a
    treasury's single account (40102...).  The key alone binds it only to the region,
    so these two rules catch another bank's account pasted next to this BIK.
    """
    account = digits(value, field, 20)
    if not account.startswith(("30101", "40102")):
        raise ValidationError(f"Корреспондентский счёт начинается с 30101 (казначейский — "
                              f"с 40102), а не «{account}».", field=field,
                              key="corr_account.prefix", params={"value": account})
    if account.startswith("30101") and account[-3:] != bik[-3:]:
        raise ValidationError(f"Счёт {account} другого банка: он должен кончаться на "
                              f"{bik[-3:]}, как БИК {bik}.", field=field,
                              key="corr_account.bank",
                              params={"value": account, "end": bik[-3:], "bik": bik})
    if not account_key_ok("0" + bik[4:6], account):
        raise ValidationError(f"Счёт {account} не сходится с БИК {bik} (неверный ключ).",
                              field=field, key="account.key",
                              params={"value": account, "bik": bik})
    return account


def _check_bank(data: Mapping[str, Any]) -> tuple[dict[str, str | None], list[str]]:
    present = {f: data.get(f) for f in BANK_FIELDS if not is_blank(data.get(f))}
    if not present:
        return dict.fromkeys(BANK_FIELDS), []
    if "bik" not in present:
        # An account number means nothing without its bank, and can't be checked either.
        raise ValidationError("Укажите БИК банка: без него счёт не проверить.",
                              field="bik", key="bik.required_for_account")
    bik = check_bik(present["bik"])
    cleaned: dict[str, str | None] = {"bik": bik, "settlement_account": None,
                                      "correspondent_account": None}
    warnings: list[str] = []
    if "settlement_account" in present:
        cleaned["settlement_account"], warnings = check_settlement_account(
            present["settlement_account"], bik)
    if "correspondent_account" in present:
        cleaned["correspondent_account"] = check_correspondent_account(
            present["correspondent_account"], bik)
    return cleaned, warnings


def _field_checkers(kind: str) -> dict[str, Callable[[Any], str | None]]:
    checkers: dict[str, Callable[[Any], str | None]] = {
        "inn": lambda v: check_inn(v, length=INN_LENGTH[kind]),
        "kpp": check_kpp,
        "ogrn": check_ogrn,
        "ogrnip": check_ogrnip,
        "phone": normalize_phone,
        "email": normalize_email,
    }
    for key, limit in TEXT_LIMITS.items():
        checkers[key] = partial(clean_text, field=key, limit=limit)
    return checkers


def _shape_problems(kind: str, data: Mapping[str, Any]) -> list[ValidationError]:
    """Fields that ``kind`` does not have."""
    allowed = KIND_FIELDS[kind]
    return [ValidationError(f"У клиента вида «{kind}» нет реквизита «{key}».",
                            field=str(key), key="requisites.unknown",
                            params={"kind": kind, "field": str(key)})
            for key in data if key not in allowed]


def missing_for_documents(kind: str, requisites: Mapping[str, Any]) -> list[ValidationError]:
    """What a document or an invoice for this client still needs (a legal entity's INN)."""
    return [ValidationError(f"{key}: is required for a document of a client of kind '{kind}'",
                            field=key, key=f"{key}.required_for_document", params={"kind": kind})
            for key in DOCUMENT_FIELDS.get(kind, ()) if is_blank(requisites.get(key))]


def collect_requisites(kind: str, data: Mapping[str, Any]
                       ) -> tuple[dict[str, str | None], list[str], list[ValidationError]]:
    """(cleaned, warnings, problems): every problem at once, for a file import's report.

    Each field is checked on its own, so one bad value does not hide the next; the
    bank block counts as one field (an account cannot be checked without its BIK).
    """
    if not isinstance(kind, str) or kind not in KIND_FIELDS:
        problem = ValidationError(f"«{shown(kind)}» — такого вида нет; можно: "
                                  f"{', '.join(CLIENT_KINDS)}.", field="kind",
                                  key="choice.invalid",
                                  params={"value": shown(kind),
                                          "options": ", ".join(CLIENT_KINDS)})
        return {}, [], [problem]
    problems = _shape_problems(kind, data)
    checkers = _field_checkers(kind)
    cleaned: dict[str, str | None] = {}
    for key in KIND_FIELDS[kind]:
        if key in BANK_FIELDS:
            continue
        try:
            cleaned[key] = None if is_blank(data.get(key)) else checkers[key](data[key])
        except ValidationError as exc:
            problems.append(exc)
    if "bik" not in KIND_FIELDS[kind]:
        return cleaned, [], problems
    try:
        bank, warnings = _check_bank(data)
    except ValidationError as exc:
        return cleaned, [], [*problems, exc]
    return cleaned | bank, warnings, problems


def validate_requisites(kind: str, data: Mapping[str, Any]
                        ) -> tuple[dict[str, str | None], list[str]]:
    """Check the requisites of a client of ``kind``; return (cleaned, warnings).

    ``cleaned`` has every field of the kind (see ``KIND_FIELDS``), None where the input
    was absent or blank, so the requisites tab is saved as a whole.  Unknown fields are
    refused rather than dropped, so a typo in a form or file never loses data silently.
    Warnings are messages that start with the field name ("settlement_account: ...").
    Raises every problem at once (``errors``; the first is the error itself).
    """
    cleaned, warnings, problems = collect_requisites(kind, data)
    if problems:
        raise ValidationError.many(problems)
    return cleaned, warnings
