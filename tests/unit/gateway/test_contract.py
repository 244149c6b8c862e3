"""The API's edge: every request is checked before a view runs, bodies are validated by the
models that document them, and errors come back with field, key, params and a message in
the language asked for.  No server: the Flask app with a database it never reaches."""
from __future__ import annotations

from typing import Annotated

import pytest
from babel.messages.pofile import read_po
from pydantic import Field

from gateway.api.schema import FALLBACK_KEY, PYDANTIC_KEYS, Day, Id, Input, Limit, Money, endpoint
from gateway.app import create_app
from gateway.catalog_keys import keys_in_source, keys_in_tree
from gateway.messages import HTTP_KEYS, LANGUAGES, TRANSLATIONS

CONFIG = {"DB_URL": "postgresql+psycopg://postgres@127.0.0.1:1/unused", "AMQP_URI": "amqp://x",
          "MAX_UPLOAD_BYTES": 1_000_000}


class Order(Input):
    name: Annotated[str, Limit(20)]
    client_id: Id
    amount: Money
    due: Day | None = None
    tags: Annotated[list[Annotated[str, Limit(10)]], Field(max_length=3)] = []


@pytest.fixture(scope="module")
def client():
    app = create_app(dict(CONFIG))

    def echo(body: Order) -> dict:
        return body.sent()

    app.add_url_rule("/api/v1/_echo", "api._echo", endpoint(body=Order, status=201)(echo),
                     methods=["POST"])
    return app.test_client()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    return response.get_json()["error"]


def test_a_valid_body_reaches_the_view_cleaned(client):
    sent = client.post("/api/v1/_echo", json={"name": " Заказ ", "client_id": "7",
                                             "amount": "1 234,50", "due": "2026-02-01"})
    assert sent.status_code == 201
    assert sent.get_json() == {"name": "Заказ", "client_id": 7, "amount": "1234.50",
                               "due": "2026-02-01"}


def test_every_wrong_field_is_named_at_once_in_the_language_asked(client):
    body = {"name": "x" * 21, "client_id": str(2**63), "amount": "1e28", "version": "abc",
            "tags": ["ok", " "]}
    error = error_of(client.post("/api/v1/_echo", json=body,
                                 headers={"Accept-Language": "en-US,en;q=0.9"}), 422)
    found = {(e["field"], e["key"]) for e in error["errors"]}
    assert found == {("name", "text.too_long"), ("client_id", "id.too_large"),
                     ("amount", "money.invalid"), ("version", "field.unknown"),
                     ("tags.1", "required")}
    assert error["code"] == "validation_error" and error["field"] == error["errors"][0]["field"]
    too_long = next(e for e in error["errors"] if e["field"] == "name")
    assert too_long["params"]["max"] == 20 and too_long["message"] == "At most 20 characters."
    russian = error_of(client.post("/api/v1/_echo", json={"name": "x" * 21, "client_id": 1,
                                                          "amount": "1"}), 422)
    assert russian["message"] == "Не больше 20 символов."


def test_missing_fields_and_floats_for_money(client):
    error = error_of(client.post("/api/v1/_echo", json={"amount": 10.5}), 422)
    assert {(e["field"], e["key"]) for e in error["errors"]} == {
        ("name", "required"), ("client_id", "required"), ("amount", "money.float")}


@pytest.mark.parametrize("raw, field, key", [
    ('{"client_id": 1e309}', "client_id", "number.not_finite"),
    ('{"a": [{"b": 123456789012345678901234567890}]}', "a.0.b", "number.too_large"),
    ('{"name": "x\\ud800y"}', "name", "text.surrogate"),
    ('{"name": "x\\u0000y"}', "name", "text.nul"),
    ("[" * 100_000 + "]" * 100_000, "body", "body.too_deep"),
    ('{"a":' * 40 + "1" + "}" * 40, "a." * 32 + "a", "body.too_deep"),
])
def test_any_json_body_is_checked_before_any_view(client, raw, field, key):
    # /api/v1/deals has its own checks too: this is the catch-all every endpoint gets
    error = error_of(client.post("/api/v1/deals", data=raw,
                                 content_type="application/json"), 422)
    assert (error["field"], error["key"]) == (field, key)


def test_path_ids_and_query_values_are_checked_for_every_route(client):
    huge = error_of(client.get("/api/v1/deals/9223372036854775808"), 422)
    assert (huge["field"], huge["key"]) == ("deal_id", "id.too_large")
    in_path = error_of(client.get("/api/v1/deals/board/new%00"), 422)
    assert (in_path["field"], in_path["key"]) == ("status", "text.nul")
    nul = error_of(client.get("/api/v1/deals?q=a%00b"), 422)
    assert (nul["field"], nul["key"]) == ("q", "text.nul")
    form = error_of(client.post("/deals", data={"name": "a\x00b"},
                                headers={"Accept": "application/json"}), 422)
    assert (form["field"], form["key"]) == ("name", "text.nul")


def test_limits_are_json_naming_the_limit(client):
    big = error_of(client.post("/api/v1/deals", data="x" * 1_000_001,
                               content_type="application/json"), 413)
    assert big["key"] == "body.too_large" and big["limit"] == 1_000_000
    assert "1000000" in big["message"]
    long_url = error_of(client.get("/api/v1/deals?q=" + "a" * 5000,
                                   headers={"Accept-Language": "en"}), 414)
    assert long_url["key"] == "url.too_long" and long_url["limit"] == 4096
    assert long_url["message"] == "The request URL is too long: at most 4096 bytes."


def test_a_stranger_is_asked_to_sign_in_before_the_body_is_judged(client):
    error_of(client.post("/api/v1/deals", json={"name": ""}), 401)


def test_the_document_comes_from_the_models_arrays_as_arrays(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def ok(path: str, method: str, status: str = "200") -> dict:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert ok("/api/v1/statuses", "get")["type"] == "array"
    assert ok("/api/v1/deals/{deal_id}/orders", "get")["type"] == "array"
    assert ok("/api/v1/payments/accounts", "get")["type"] == "array"
    assert ok("/api/v1/deals/board", "get") == {"$ref": "#/components/schemas/Board"}
    assert ok("/api/v1/deals/{deal_id}/payments", "post", "201") == {
        "$ref": "#/components/schemas/Payment"}
    create = paths["/api/v1/deals"]["post"]["requestBody"]["content"]["application/json"]
    assert schemas["DealCreate"]["required"] == ["name", "client_id"]
    assert create["schema"] == {"$ref": "#/components/schemas/DealCreate"}
    amount = schemas["PaymentAdd"]["properties"]["amount"]
    assert [branch["type"] for branch in amount["anyOf"]] == ["string", "integer"]
    assert "204" in paths["/api/v1/deals/{deal_id}/parties/{party_id}"]["delete"]["responses"]
    assert paths["/api/v1/deals/{deal_id}"]["get"]["parameters"][0]["schema"]["maximum"] == \
        2**63 - 1
    assert "413" in paths["/api/v1/deals"]["post"]["responses"]
    assert {p["name"] for p in paths["/api/v1/deals"]["get"]["parameters"]} >= {
        "after", "limit", "status", "client_id"}
    refs = _refs(document)
    assert refs and all(ref.split("/")[-1] in schemas for ref in refs)


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + \
            [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_keys_are_found_in_validation_error_calls_only():
    source = ('raise ValidationError("m", "f", key="inn.checksum", params={"x": 1})\n'
              'lease(key="telegram_offset")\n'
              'raise errors.ValidationError("m", key="period.end_before_start")\n')
    assert [key for _, key in keys_in_source(source)] == ["inn.checksum",
                                                          "period.end_before_start"]


def test_every_message_key_has_a_russian_and_an_english_text():
    keys = set(keys_in_tree()) | set(PYDANTIC_KEYS.values()) | {FALLBACK_KEY} | \
        set(HTTP_KEYS.values())
    assert {"required", "id.invalid", "money.too_large", "text.nul"} <= keys
    for lang in LANGUAGES:
        with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalog = read_po(po, locale=lang)
        translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
        missing = sorted(keys - translated)
        assert not missing, f"{lang}: no translation for {missing}: add them to " \
            f"gateway/translations/{lang}/LC_MESSAGES/messages.po"


def test_ids_of_the_small_tables_and_record_zero_are_refused_before_any_query(client):
    # users, statuses, stages, types and reasons have INTEGER keys: 2^31 names nothing
    small = error_of(client.patch("/api/v1/admin/users/2147483648", json={}), 422)
    assert (small["field"], small["key"], small["params"]["max"]) == \
        ("user_id", "id.too_large", 2**31 - 1)
    zero = error_of(client.get("/api/v1/deals/0"), 422)
    assert (zero["field"], zero["key"]) == ("deal_id", "id.invalid")
    document = client.get("/api/v1/openapi.json").get_json()
    user = document["paths"]["/api/v1/admin/users/{user_id}"]["patch"]["parameters"][0]
    assert user["schema"]["maximum"] == 2**31 - 1
    deal = document["components"]["schemas"]["DealCreate"]["properties"]["manager_id"]
    assert 2**31 - 1 in [part.get("maximum") for part in deal.get("anyOf", [deal])]


def test_a_wrong_method_is_a_405_saying_what_is_allowed(client):
    response = client.delete("/api/v1/statuses")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}


def test_every_api_operation_is_declared_by_its_models(client):
    from flask import current_app

    from gateway.api.schema import SPECS

    with client.application.app_context():
        undeclared = sorted(rule.endpoint for rule in current_app.url_map.iter_rules()
                            if rule.rule.startswith("/api/v1")
                            and current_app.view_functions[rule.endpoint] not in SPECS)
    assert undeclared == []


def test_an_exported_csv_has_one_charset(client):
    import base64

    from gateway.sections.clients import file_response

    with client.application.test_request_context():
        response = file_response({"filename": "clients.csv", "truncated": False,
                                  "content_b64": base64.b64encode(b"a;b\n").decode()})
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
