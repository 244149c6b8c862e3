"""Test vectors for requisites: real ones (verified by hand) and generators of valid ones."""
from __future__ import annotations

from itertools import cycle

# Public registry data of large companies: (INN, KPP, OGRN).
REAL_COMPANIES = [
    ("7707083893", "773601001", "1027700132195"),  # ПАО Сбербанк
    ("7736207543", None, "1027700229193"),  # ООО «Яндекс»
    ("7736050003", None, "1027700070518"),  # ПАО «Газпром»
    ("7708004767", None, "1027700035769"),  # ПАО «ЛУКОЙЛ»
    ("7702070139", None, "1027739609391"),  # Банк ВТБ (ПАО)
    ("7728168971", None, "1027700067328"),  # АО «Альфа-Банк»
]
# Banks and accounts found in the real bank-client export in ../shared/data/feeds
# (1c-kilylabs-one_day-*.txt): (BIK, correspondent account) and (account, BIK).
REAL_BANKS = [
    ("044525716", "30101810100000000716"),
    ("044525176", "30101810300000000176"),
    ("044525225", "30101810400000000225"),
    ("044525700", "30101810200000000700"),
    ("044525232", "30101810600000000232"),
    ("044525187", "30101810700000000187"),
    ("044030861", "30101810800000000861"),
]
REAL_ACCOUNTS = [
    ("40702810299993174021", "044525187"),
    ("40702810300000000640", "044525232"),
    ("40702810500001455357", "044525700"),
    ("40702810700000005670", "044030861"),
    ("61304810100000000002", "044525716"),
    ("70601810500002710257", "044525716"),
    ("70601810600002720257", "044525716"),
    ("70601810800002740257", "044525716"),
]
# The federal treasury's published details for tax payments in Moscow: a treasury
# account ("03...") that fails the key against its BIK, and the single treasury
# account (ЕКС) in place of a correspondent account.
TREASURY_BIK = "004525988"
TREASURY_ACCOUNT = "03100643000000017300"
TREASURY_EKS = "40102810545370000003"


def key_digit(prefix: str, account: str) -> str:
    """``account`` with its control digit (the 9th) set so that the key holds."""
    for digit in "0123456789":
        candidate = account[:8] + digit + account[9:]
        total = sum(w * int(d) % 10 for w, d in zip(cycle((7, 1, 3)), prefix + candidate))
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one digit always fits")


def inn_digit(number: str, weights: tuple[int, ...]) -> str:
    return str(sum(w * int(d) for w, d in zip(weights, number, strict=False)) % 11 % 10)


def make_inn10(first9: str) -> str:
    return first9 + inn_digit(first9, (2, 4, 10, 3, 5, 9, 4, 6, 8))


def make_inn12(first10: str) -> str:
    eleven = first10 + inn_digit(first10, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
    return eleven + inn_digit(eleven, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8))


def ogrnip_with_remainder(remainder: int) -> str:
    """A valid OGRNIP whose first 14 digits leave ``remainder`` modulo 13."""
    base = 30450000000000
    base += (remainder - base % 13) % 13
    assert base % 13 == remainder
    return f"{base}{remainder % 10}"
