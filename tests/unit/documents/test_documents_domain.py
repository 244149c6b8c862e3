"""Amounts in words, Russian dates, totals with VAT, the payment QR payload."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.documents import domain
from services.kit.errors import ValidationError

COMPANY = {"name": "ООО «Ромашка»", "settlement_account": "40702810900000000001",
           "bank_name": "АО «Банк»", "bik": "044525225",
           "correspondent_account": "30101810400000000225", "inn": "7707083893",
           "kpp": "770701001"}


def test_amount_in_words_is_the_accounting_form():
    assert domain.amount_in_words(Decimal("120000.50")) == "Сто двадцать тысяч рублей 50 копеек"


@pytest.mark.parametrize("amount, words", [
    ("1", "Один рубль 00 копеек"),
    ("2", "Два рубля 00 копеек"),
    ("5", "Пять рублей 00 копеек"),
    ("11", "Одиннадцать рублей 00 копеек"),
    ("21", "Двадцать один рубль 00 копеек"),
    ("101", "Сто один рубль 00 копеек"),
    ("1000001", "Один миллион один рубль 00 копеек"),
    ("0.00", "Ноль рублей 00 копеек"),
    ("3.01", "Три рубля 01 копейка"),
    ("12.22", "Двенадцать рублей 22 копейки"),
    ("14.11", "Четырнадцать рублей 11 копеек"),
])
def test_amount_in_words_uses_the_right_forms(amount, words):
    assert domain.amount_in_words(Decimal(amount)) == words


def test_a_date_is_written_the_russian_way():
    assert domain.date_ru(date(2026, 12, 1)) == "1 декабря 2026 г."
    assert domain.date_ru(date(2027, 3, 15)) == "15 марта 2027 г."


def test_money_is_grouped_with_a_decimal_comma():
    assert domain.money_ru(Decimal("1234567.5")) == "1\u00a0234\u00a0567,50"


def test_vat_is_the_part_included_in_the_lines():
    totals = domain.totals([Decimal("100.00"), Decimal("20.00")], Decimal("20"))
    assert (totals.total, totals.vat) == (Decimal("120.00"), Decimal("20.00"))
    assert totals.as_dict()["vat_text"] == "В том числе НДС 20%"
    assert totals.as_dict()["total_in_words"] == "Сто двадцать рублей 00 копеек"


def test_without_vat_nothing_is_added():
    totals = domain.totals([Decimal("99.99")], None)
    assert (totals.total, totals.vat, totals.as_dict()["vat_text"]) == (
        Decimal("99.99"), Decimal("0.00"), "Без НДС")


def test_an_unknown_vat_rate_names_the_field():
    with pytest.raises(ValidationError) as caught:
        domain.vat_rate("18")
    assert caught.value.details["field"] == "vat_rate"


def test_qr_payload_follows_gost_r_56042():
    payload = domain.qr_payload(COMPANY, Decimal("120000.50"), "Оплата по счёту № 7")
    assert payload == ("ST00012|Name=ООО «Ромашка»|PersonalAcc=40702810900000000001|"
                       "BankName=АО «Банк»|BIC=044525225|CorrespAcc=30101810400000000225|"
                       "PayeeINN=7707083893|KPP=770701001|Sum=12000050|"
                       "Purpose=Оплата по счёту № 7")


def test_qr_payload_never_lets_a_value_add_a_field():
    payload = domain.qr_payload({**COMPANY, "name": "Рога|Sum=1"}, Decimal("1"), "x")
    assert "Name=Рога Sum=1|" in payload and payload.count("|Sum=") == 1


def test_qr_payload_needs_the_bank_requisites():
    with pytest.raises(ValidationError) as caught:
        domain.qr_payload({**COMPANY, "bik": ""}, Decimal("1"), "x")
    assert caught.value.details["params"]["missing"] == ["BIC"]


def test_qr_code_is_an_svg_image():
    uri = domain.qr_svg_data_uri(domain.qr_payload(COMPANY, Decimal("1"), "x"))
    assert uri.startswith("data:image/svg+xml")


def test_a_link_is_revoked_expired_or_active():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert domain.link_state(None, now + timedelta(seconds=1), now) == "active"
    assert domain.link_state(None, now, now) == "expired"
    assert domain.link_state(now, now + timedelta(days=1), now) == "revoked"
    assert domain.link_state(None, None, now) == "active"


def test_a_token_carries_at_least_128_random_bits():
    tokens = {domain.new_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) >= 32 for t in tokens)


def test_a_signature_code_is_checked_by_its_salted_hash():
    stored = domain.code_hash("123456", "salt")
    assert domain.code_matches(" 123456 ", "salt", stored)
    assert not domain.code_matches("123457", "salt", stored)
    assert not domain.code_matches("123456", "other", stored)
