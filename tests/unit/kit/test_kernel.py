"""The shared kernel's pure parts: configuration, envelope, money, error transport."""
from __future__ import annotations

import collections
import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest
from nameko.exceptions import serialize

from services.kit.config import ConfigError, expand, load_component_config, load_config
from services.kit.entrypoints import public_error
from services.kit.envelope import Envelope, json_safe
from services.kit.errors import Conflict, NotFound, RemoteFailure, ValidationError, error_from_reply
from services.kit.money import parse_money


def test_placeholders_take_the_environment_then_the_default():
    assert expand("${A:x}-${B:y}", {"A": "1"}) == "1-y"
    assert expand("${URL:postgresql://h:5432/db}", {}) == "postgresql://h:5432/db"


def test_a_placeholder_without_default_must_be_set():
    with pytest.raises(ConfigError, match="SECRET"):
        expand("${SECRET}", {})


def test_whole_value_placeholders_keep_yaml_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("PORT: ${PORT:8000}\nDEBUG: ${DEBUG:false}\nNAME: ${NAME:crm}\n")
    assert load_config(path, {"PORT": "9001"}) == {"PORT": 9001, "DEBUG": False, "NAME": "crm"}


def test_service_config_overlays_common_settings():
    config = load_component_config("deals", {"DB_PREFIX": "x", "AMQP_URI": "amqp://h/v"})
    assert config["DB_URL"].endswith("/x_deals")
    assert config["AMQP_URI"] == "amqp://h/v" and config["RPC_TIMEOUT"] == 5


def test_envelope_round_trips_and_makes_values_json_safe():
    envelope = Envelope.new("payment_received", {"amount": Decimal("10.50"),
                                                 "on": date(2026, 1, 2)})
    parsed = Envelope.parse(envelope.to_dict())
    assert parsed == envelope
    assert parsed.data == {"amount": "10.50", "on": "2026-01-02"}
    assert uuid.UUID(parsed.event_id).version == 4
    assert datetime.fromisoformat(parsed.occurred_at).tzinfo is not None


def test_consumers_ignore_unknown_envelope_fields_but_refuse_missing_ones():
    body = {**Envelope.new("x", {}).to_dict(), "extra": 1}
    assert Envelope.parse(body).type == "x"
    del body["event_id"]
    with pytest.raises(ValidationError, match="event_id"):
        Envelope.parse(body)


def test_json_safe_copies_a_list_of_plain_values_and_walks_any_other():
    plain = ["a", 1, 1.5, True, None]
    assert json_safe(plain) == plain and json_safe(plain) is not plain
    assert json_safe(("a", 1)) == ["a", 1]
    assert json_safe(["a", Decimal("2.50")]) == ["a", "2.50"]


def test_json_safe_turns_domain_values_into_text():
    assert json_safe({"a": [Decimal("1.00"), uuid.UUID(int=1)]}) == {
        "a": ["1.00", "00000000-0000-0000-0000-000000000001"]}


def test_json_safe_gives_subclasses_and_odd_keys_what_the_general_walk_gives():
    # the exact-type shortcuts must not change an answer: keys become str() of themselves
    # ("True", "None", "2026-01-01"; a str subclass's a plain str), a dict or list
    # subclass a plain dict or list, sets and tuples lists, enums their value
    class Label(str):
        pass

    class Colour(enum.Enum):
        RED = "r"

    value = collections.OrderedDict([
        (True, [1, Decimal("1.50")]), (None, (date(2026, 1, 1), {Colour.RED: "x"})),
        (Label("k"), frozenset(["only"])), (2, [Label("v"), Colour.RED, None]),
        (date(2026, 1, 1), {"nested": collections.defaultdict(int, a=1)})])
    got = json_safe(value)
    assert got == {"True": [1, "1.50"], "None": ["2026-01-01", {"Colour.RED": "x"}],
                   "k": ["only"], "2": ["v", "r", None], "2026-01-01": {"nested": {"a": 1}}}
    assert type(got) is dict and type(got["2026-01-01"]["nested"]) is dict
    assert all(type(k) is str for k in got)


@pytest.mark.parametrize("raw, expected", [("1 234,50", "1234.50"), ("10", "10.00"),
                                           (Decimal("3.1"), "3.10"), (7, "7.00")])
def test_money_accepts_what_people_type(raw, expected):
    assert parse_money(raw) == Decimal(expected)


@pytest.mark.parametrize("raw, key", [(1.5, "money.float"), ("abc", "money.invalid"),
                                      ("1.005", "money.places"),
                                      ("-3", "money.negative"), ("NaN", "money.invalid"),
                                      (None, "required")])
def test_money_refuses_what_would_lose_cents(raw, key):
    with pytest.raises(ValidationError) as error:
        parse_money(raw, "budget")
    assert (error.value.field, error.value.key) == ("budget", key)


def test_typed_errors_survive_nameko_serialisation():
    wire = serialize(ValidationError("inn: wrong check digit", field="inn"))
    rebuilt = error_from_reply(wire)
    assert isinstance(rebuilt, ValidationError) and rebuilt.field == "inn"
    assert rebuilt.to_dict() == {"code": "validation_error", "message": "inn: wrong check digit",
                                 "field": "inn"}
    assert isinstance(error_from_reply(serialize(Conflict("stale"))), Conflict)


def test_unknown_remote_errors_stay_opaque():
    rebuilt = error_from_reply(serialize(KeyError("secret internals")))
    assert isinstance(rebuilt, RemoteFailure) and rebuilt.exc_type == "KeyError"


def test_a_services_own_error_type_travels_as_its_kit_base():
    class StatementRefused(ValidationError):
        pass

    public = public_error(StatementRefused("line 3: bad", field="file"))
    assert type(public) is ValidationError and public.field == "file"
    original = NotFound("x")
    assert public_error(original) is original
