"""Checksums and formats of Russian requisites, on real and constructed vectors."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.clients.domain.requisites import (
    check_bik,
    check_correspondent_account,
    check_inn,
    check_kpp,
    check_ogrn,
    check_ogrnip,
    check_settlement_account,
    validate_requisites,
)
from services.kit.errors import ValidationError

from .vectors import (
    REAL_ACCOUNTS,
    REAL_BANKS,
    REAL_COMPANIES,
    TREASURY_ACCOUNT,
    TREASURY_BIK,
    TREASURY_EKS,
    key_digit,
    make_inn10,
    make_inn12,
    ogrnip_with_remainder,
)


@pytest.mark.parametrize(("inn", "kpp", "ogrn"), REAL_COMPANIES)
def test_real_company_requisites_validate(inn: str, kpp: str | None, ogrn: str) -> None:
    assert check_inn(inn) == inn
    assert check_ogrn(ogrn) == ogrn
    if kpp:
        assert check_kpp(kpp) == kpp


@pytest.mark.parametrize(("bik", "correspondent"), REAL_BANKS)
def test_real_bank_correspondent_accounts_match_their_bik(bik: str,
                                                          correspondent: str) -> None:
    assert check_correspondent_account(correspondent, check_bik(bik)) == correspondent


@pytest.mark.parametrize(("account", "bik"), REAL_ACCOUNTS)
def test_real_settlement_accounts_match_their_bik(account: str, bik: str) -> None:
    assert check_settlement_account(account, bik) == (account, [])


def test_changed_inn_check_digit_is_rejected() -> None:
    for inn in ("7707083893", make_inn12("7707083893")):
        wrong = inn[:-1] + str((int(inn[-1]) + 1) % 10)
        with pytest.raises(ValidationError, match="контрольная цифра") as exc:
            check_inn(wrong)
        assert exc.value.field == "inn"


def test_inn12_checks_both_control_digits() -> None:
    inn = make_inn12("5001234567")
    assert check_inn(inn) == inn
    eleventh_wrong = inn[:10] + str((int(inn[10]) + 1) % 10) + inn[11]
    with pytest.raises(ValidationError, match="контрольная цифра"):
        check_inn(eleventh_wrong)


def test_inn_spaces_are_removed_and_letters_refused_with_a_clear_message() -> None:
    assert check_inn(" 7707 083\u00a0893 ") == "7707083893"
    with pytest.raises(ValidationError, match="Только цифры") as exc:
        check_inn("77O7083893")  # a Latin O typed for a zero
    assert exc.value.field == "inn"


@pytest.mark.parametrize("bad", ["", "   ", "770708389", "77070838931", "000000000000",
                                 "123123123123", "0000000002"])
def test_bad_inns_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check_inn(bad)
    assert exc.value.field == "inn"


def test_inn_length_can_be_required() -> None:
    with pytest.raises(ValidationError, match="Нужно 10 цифр"):
        check_inn(make_inn12("7707083893"), length=10)


@given(st.from_regex(r"(0[1-9]|[1-9][0-9])[0-9]{7}", fullmatch=True))
def test_generated_inn10_always_validates(first9: str) -> None:
    inn = make_inn10(first9)
    assert check_inn(inn) == inn


@given(st.from_regex(r"(0[1-9]|[1-9][0-9])[0-9]{8}", fullmatch=True))
def test_generated_inn12_always_validates(first10: str) -> None:
    inn = make_inn12(first10)
    assert check_inn(inn) == inn


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("773601001", "773601001"), ("7736 01 001", "7736 01 001".replace(" ", "")),
    ("7736AB001", "7736AB001"), ("7736ab001", "7736AB001"),
])
def test_kpp_accepts_digits_or_capitals_in_the_reason_code(raw: str, cleaned: str) -> None:
    assert check_kpp(raw) == cleaned


@pytest.mark.parametrize("bad", ["77360100", "7736010011", "77360100A", "A73601001",
                                 "7736ЖЖ001", "000000001"])
def test_bad_kpps_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check_kpp(bad)
    assert exc.value.field == "kpp"


def test_ogrn_remainder_10_gives_check_digit_0() -> None:
    first12 = next(str(n) for n in range(102770000000, 102780000000) if n % 11 == 10)
    assert check_ogrn(first12 + "0") == first12 + "0"
    with pytest.raises(ValidationError, match="контрольная цифра"):
        check_ogrn(first12 + "1")  # what "remainder mod 10" would not give


@pytest.mark.parametrize("remainder", [10, 11, 12])
def test_ogrnip_remainders_10_to_12_use_their_last_digit(remainder: int) -> None:
    ogrnip = ogrnip_with_remainder(remainder)
    assert ogrnip.endswith(str(remainder % 10))
    assert check_ogrnip(ogrnip) == ogrnip


@pytest.mark.parametrize("remainder", [10, 11, 12])
def test_stdnum_wrongly_rejects_these_ogrnips_which_is_why_we_do_not_use_it(
        remainder: int) -> None:
    ogrn = pytest.importorskip("stdnum.ru.ogrn")
    assert not ogrn.is_valid(ogrnip_with_remainder(remainder))


def test_ogrnip_with_plain_remainder_validates_and_wrong_digit_is_refused() -> None:
    ogrnip = ogrnip_with_remainder(4)
    assert check_ogrnip(ogrnip) == ogrnip
    with pytest.raises(ValidationError, match="контрольная цифра") as exc:
        check_ogrnip(ogrnip[:-1] + "5")
    assert exc.value.field == "ogrnip"


@pytest.mark.parametrize(("check", "bad", "field"), [
    (check_ogrn, "2027700132195", "ogrn"),  # a GRN of a later record, not an OGRN
    (check_ogrn, "102770013219", "ogrn"),
    (check_ogrnip, "104500000000006", "ogrnip"),  # starts like an OGRN
    (check_bik, "344525225", "bik"),
    (check_bik, "04452522", "bik"),
])
def test_register_and_bank_codes_have_fixed_shapes(check: Callable[[str], object],
                                                   bad: str, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check(bad)
    assert exc.value.field == field


def test_settlement_account_of_another_bank_is_refused() -> None:
    with pytest.raises(ValidationError, match="не сходится с БИК") as exc:
        check_settlement_account("40702810299993174021", "044525225")
    assert exc.value.field == "settlement_account"


def test_account_at_a_cash_settlement_centre_is_keyed_with_the_bik_region() -> None:
    rkc_bik = "044583001"  # digits 7-8 are "00"; digits 5-6 are "83"
    account = key_digit("083", "40702810000000012345")
    assert check_settlement_account(account, rkc_bik) == (account, [])
    bank_bik = "044583225"  # a credit institution: keyed with its last three digits
    with pytest.raises(ValidationError):
        check_settlement_account(account, bank_bik)


def test_treasury_account_is_a_warning_not_an_error() -> None:
    account, warnings = check_settlement_account(TREASURY_ACCOUNT, TREASURY_BIK)
    assert account == TREASURY_ACCOUNT
    assert len(warnings) == 1 and warnings[0].startswith("settlement_account:")
    assert check_correspondent_account(TREASURY_EKS, TREASURY_BIK) == TREASURY_EKS


@pytest.mark.parametrize(("account", "bik", "reason"), [
    ("30101810400000000225", "044525716", "corr_account.bank"),  # Sberbank's, VTB's BIK
    ("40702810200000000225", "044525225", "corr_account.prefix"),
    ("30101810500000000225", "044525225", "account.key"),
])
def test_wrong_correspondent_accounts_are_refused(account: str, bik: str,
                                                  reason: str) -> None:
    with pytest.raises(ValidationError) as exc:
        check_correspondent_account(account, bik)
    assert (exc.value.field, exc.value.key) == ("correspondent_account", reason)
    assert exc.value.params["value"] == account


LEGAL = {"name": "ПАО Сбербанк", "inn": "7707083893", "kpp": "773601001",
         "ogrn": "1027700132195", "legal_address": "Москва, ул. Вавилова, 19",
         "bik": "044525225", "correspondent_account": "30101810400000000225"}


def test_legal_requisites_are_cleaned_and_every_field_is_present() -> None:
    cleaned, warnings = validate_requisites("legal", {**LEGAL, "inn": "7707 083 893"})
    assert warnings == []
    assert cleaned["inn"] == "7707083893"
    assert cleaned["postal_address"] is None and cleaned["settlement_account"] is None
    assert set(cleaned) == {"name", "inn", "kpp", "ogrn", "legal_address",
                            "postal_address", "bik", "settlement_account",
                            "correspondent_account"}


def test_entrepreneur_requisites_need_a_12_digit_inn() -> None:
    inn = make_inn12("7707083893")
    cleaned, _ = validate_requisites("entrepreneur", {"inn": inn,
                                                      "ogrnip": ogrnip_with_remainder(11)})
    assert cleaned["inn"] == inn
    with pytest.raises(ValidationError, match="Нужно 12 цифр") as exc:
        validate_requisites("entrepreneur", {"inn": "7707083893"})
    assert exc.value.field == "inn"


def test_person_requisites_normalise_phone_and_email() -> None:
    cleaned, _ = validate_requisites("person", {"full_name": " Иванов  Иван ",
                                                "phone": "8 916 123-45-67",
                                                "email": "Ivan@Example.RU"})
    assert cleaned == {"full_name": "Иванов Иван", "phone": "+79161234567",
                       "email": "ivan@example.ru", "address": None}


def test_treasury_warning_reaches_the_caller() -> None:
    _, warnings = validate_requisites("legal", {"inn": "7707083893", "bik": TREASURY_BIK,
                                                "settlement_account": TREASURY_ACCOUNT})
    assert warnings and "treasury" in warnings[0]


@pytest.mark.parametrize(("kind", "data", "field"), [
    ("legal", {"inn": "7707083893", "ogrnip": "1"}, "ogrnip"),  # not a legal's field
    ("legal", {"inn": "7707083893", "settlement_account": "40702810300000000640"}, "bik"),
    ("legal", {"inn": "7707083893", "correspondent_account": "30101810400000000225"},
     "bik"),
    ("legal", {**LEGAL, "kpp": "7736"}, "kpp"),
    ("legal", {**LEGAL, "ogrn": "1027700132196"}, "ogrn"),
    ("legal", {**LEGAL, "bik": "944525225"}, "bik"),
    ("legal", {**LEGAL, "settlement_account": "4070281030000000064"},
     "settlement_account"),
    ("legal", {**LEGAL, "correspondent_account": "30101810400000000226"},
     "correspondent_account"),
    ("legal", {**LEGAL, "name": "x" * 256}, "name"),
    ("entrepreneur", {"inn": make_inn12("7707083893"), "kpp": "773601001"}, "kpp"),
    ("person", {"phone": "12"}, "phone"),
    ("person", {"email": "no-at-sign"}, "email"),
    ("person", {"inn": "7707083893"}, "inn"),
    ("company", {}, "kind"),
])
def test_each_bad_requisite_names_its_field(kind: str, data: dict[str, str],
                                            field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_requisites(kind, data)
    assert exc.value.field == field


def test_bik_alone_is_accepted() -> None:
    cleaned, _ = validate_requisites("legal", {"inn": "7707083893", "bik": "044525225"})
    assert cleaned["bik"] == "044525225"


CHECKS: list[Callable[[object], object]] = [
    check_inn, check_kpp, check_ogrn, check_ogrnip, check_bik,
    lambda v: check_settlement_account(v, "044525225"),
    lambda v: check_correspondent_account(v, "044525225"),
]


@given(st.one_of(st.text(), st.from_regex(r"[0-9 ]{8,24}", fullmatch=True),
                 st.integers(), st.none()))
def test_random_input_never_crashes_a_check(value: object) -> None:
    for check in CHECKS:
        try:
            check(value)
        except ValidationError as exc:
            assert exc.field


FIELDS = ["name", "inn", "kpp", "ogrn", "ogrnip", "bik", "settlement_account",
          "correspondent_account", "full_name", "phone", "email", "address", "other"]


@given(st.sampled_from(["legal", "entrepreneur", "person", "?"]),
       st.dictionaries(st.sampled_from(FIELDS),
                       st.one_of(st.text(max_size=30), st.integers(), st.none())))
def test_random_requisites_only_ever_raise_validation_error(kind: str,
                                                           data: dict[str, object]) -> None:
    try:
        cleaned, warnings = validate_requisites(kind, data)
    except ValidationError as exc:
        assert exc.field
    else:
        assert isinstance(cleaned, dict) and isinstance(warnings, list)


@pytest.mark.parametrize("kind", ["legal", "entrepreneur", "person"])
def test_a_client_is_saved_without_any_requisite(kind: str) -> None:
    cleaned, _ = validate_requisites(kind, {})
    assert set(cleaned.values()) == {None}


def test_a_document_needs_the_inn_of_a_legal_entity_or_an_entrepreneur() -> None:
    from services.clients.domain.requisites import missing_for_documents

    assert [e.field for e in missing_for_documents("legal", {"inn": " "})] == ["inn"]
    assert [e.field for e in missing_for_documents("entrepreneur", {})] == ["inn"]
    assert missing_for_documents("legal", {"inn": "7707083893"}) == []
    assert missing_for_documents("person", {}) == []


def test_every_wrong_requisite_is_named_at_once_with_its_key() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_requisites("legal", {**LEGAL, "inn": "7707083894", "kpp": "77",
                                      "ogrn": "1027700132196"})
    assert [(e["field"], e["key"]) for e in exc.value.errors] == [
        ("inn", "inn.checksum"), ("kpp", "kpp.length"), ("ogrn", "ogrn.checksum")]
    assert exc.value.errors[0]["params"] == {"value": "7707083894"}
