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
        raise ValidationError(f"{field}: is empty", field=field)
    if not _ASCII_DIGITS.fullmatch(text):
        raise ValidationError(f"{field}: only digits are allowed, got {shown(value)}",
                              field=field)
    if len(text) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise ValidationError(f"{field}: must be {expected} digits, got {len(text)}",
                              field=field)
    return text


def weighted_mod11(number: str, weights: Iterable[int]) -> int:
    """INN control digit: weighted sum mod 11, and a remainder of 10 becomes 0."""
    return sum(w * int(d) for w, d in zip(weights, number, strict=False)) % 11 % 10


def _check_tax_office(number: str, field: str) -> None:
    # INN and KPP open with a region code, 01 and up; all-zero placeholders
    # ("000000000000") otherwise pass the INN checksum.
    if number.startswith("00"):
        raise ValidationError(f"{field}: cannot start with 00 (no such region), got {number}",
                              field=field)


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
        raise ValidationError(f"{field}: wrong check digit in INN {inn}", field=field)
    return inn


def check_kpp(value: object, field: str = "kpp") -> str:
    """KPP: 4 digits (tax office), 2 digits or Latin capitals (reason), 3 digits."""
    kpp = compact(value, field).upper()
    if len(kpp) != 9:
        raise ValidationError(f"{field}: must be 9 characters, got {len(kpp)}", field=field)
    if not _KPP.fullmatch(kpp):
        raise ValidationError(
            f"{field}: expected 4 digits, 2 digits or Latin capitals, 3 digits; "
            f"got {shown(value)}", field=field)
    _check_tax_office(kpp, field)
    return kpp


def check_ogrn(value: object, field: str = "ogrn") -> str:
    """OGRN of a legal entity: 13 digits, the first 12 as a number mod 11 mod 10."""
    ogrn = digits(value, field, 13)
    # The first digit says what the register record is: 1 and 5 are an OGRN; 2, 6-9 are
    # other records' numbers (GRN) that people paste by mistake; 3, 4 are OGRNIP.
    if ogrn[0] not in "15":
        raise ValidationError(f"{field}: an OGRN starts with 1 or 5, got {ogrn}", field=field)
    if int(ogrn[:12]) % 11 % 10 != int(ogrn[12]):
        raise ValidationError(f"{field}: wrong check digit in OGRN {ogrn}", field=field)
    return ogrn


def check_ogrnip(value: object, field: str = "ogrnip") -> str:
    """OGRNIP: 15 digits, the first 14 as a number mod 13 mod 10.

    The "mod 10" matters: remainders 10, 11 and 12 give check digits 0, 1 and 2
    (python-stdnum compares against the two-digit remainder and rejects such numbers).
    """
    ogrnip = digits(value, field, 15)
    if ogrnip[0] not in "34":
        raise ValidationError(f"{field}: an OGRNIP starts with 3 or 4, got {ogrnip}",
                              field=field)
    if int(ogrnip[:14]) % 13 % 10 != int(ogrnip[14]):
        raise ValidationError(f"{field}: wrong check digit in OGRNIP {ogrnip}", field=field)
    return ogrnip


def check_bik(value: object, field: str = "bik") -> str:
    """BIK: 9 digits; "0x" are Bank of Russia and treasury codes, "1x"/"2x" the new ones."""
    bik = digits(value, field, 9)
    if bik[0] not in "012":
        raise ValidationError(f"{field}: a BIK starts with 0, 1 or 2, got {bik}", field=field)
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
    raise ValidationError(f"{field}: account {account} does not match BIK {bik} "
                          f"(wrong control key)", field=field)


def check_correspondent_account(value: object, bik: str,
                                field: str = "correspondent_account") -> str:
    """The bank's own account at the Bank of Russia: keyed with "0" + BIK digits 5-6.

    It is a bank's account (30101...) ending in the BIK's last three digits, or a
    treasury's single account (40102...).  The key alone binds it only to the region,
    so these two rules catch another bank's account pasted next to this BIK.
    """
    account = digits(value, field, 20)
    if not account.startswith(("30101", "40102")):
        raise ValidationError(f"{field}: a correspondent account starts with 30101 "
                              f"(or 40102 for the treasury), got {account}", field=field)
    if account.startswith("30101") and account[-3:] != bik[-3:]:
        raise ValidationError(f"{field}: account {account} belongs to another bank: it "
                              f"must end with {bik[-3:]} like BIK {bik}", field=field)
    if not account_key_ok("0" + bik[4:6], account):
        raise ValidationError(f"{field}: account {account} does not match BIK {bik} "
                              f"(wrong control key)", field=field)
    return account


def _check_bank(data: Mapping[str, Any]) -> tuple[dict[str, str | None], list[str]]:
    present = {f: data.get(f) for f in BANK_FIELDS if not is_blank(data.get(f))}
    if not present:
        return dict.fromkeys(BANK_FIELDS), []
    if "bik" not in present:
        # An account number means nothing without its bank, and can't be checked either.
        raise ValidationError("bik: the bank's BIK is required when an account is given",
                              field="bik")
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
    return [ValidationError(f"{key}: not a requisite of a client of kind '{kind}'",
                            field=str(key)) for key in data if key not in allowed]


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
        problem = ValidationError(f"kind: must be one of {', '.join(CLIENT_KINDS)}, "
                                  f"got {shown(kind)}", field="kind")
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
    Raises the first problem; ``collect_requisites`` gives them all.
    """
    cleaned, warnings, problems = collect_requisites(kind, data)
    if problems:
        raise problems[0]
    return cleaned, warnings
