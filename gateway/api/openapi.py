"""The OpenAPI 3.1 document of /api/v1, built from the routes themselves so it cannot
drift from them.

Endpoints declared with ``gateway.api.schema.endpoint`` are documented from the same
pydantic models that validate them (bodies, queries, responses, statuses).  Endpoints not
yet declared that way fall back to the older description (``BODIES``, statuses read from
the view's source); each one converted leaves that fallback."""
from __future__ import annotations

import ast
import inspect
import re
import textwrap
from typing import Any

from flask import current_app
from pydantic import BaseModel, TypeAdapter

from gateway.api.schema import SPECS, Spec
from services.kit.parse import id_limit

_ITEM = {"type": "object", "required": ["field", "key", "message"], "properties": {
    "field": {"type": ["string", "null"], "description": "the input that is wrong (dotted)"},
    "key": {"type": ["string", "null"], "description": "stable message key"},
    "params": {"type": "object", "description": "the values the message names"},
    "message": {"type": "string", "description": "in the language asked for"}}}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                   "field": {"type": ["string", "null"],
                             "description": "the input field that is wrong"},
                   "key": {"type": ["string", "null"]},
                   "params": {"type": "object"},
                   "errors": {"type": "array", "items": _ITEM,
                              "description": "422: every wrong field"},
                   "limit": {"type": "integer", "description": "413/414: the limit, bytes"},
                   "error_id": {"type": "string"}}}}}
ERROR_STATUSES = (("401", "not signed in"), ("403", "role missing"), ("404", "not found"),
                  ("409", "conflict"), ("422", "invalid input; `errors` names each field"),
                  ("503", "service unavailable"), ("504", "service did not answer in time"))

OBJECT = {"type": "object", "additionalProperties": True}
MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$", "description": "decimal string"}

# Request bodies of the write endpoints: what a caller must send.
BODIES: dict[str, dict[str, Any]] = {
    "api.token": {"type": "object", "required": ["username", "password"],
                  "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
    "api.clients_create": {"type": "object", "properties": {
        "name": {"type": "string"}, "inn": {"type": "string"},
        "kind": {"enum": ["legal", "entrepreneur", "person"]}}},
    "api.clients_add_contact": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "position": {"type": "string"},
        "phones": {"type": "array", "items": {"type": "string"}},
        "emails": {"type": "array", "items": {"type": "string"}}}},
    "api.deals_create": {"type": "object", "required": ["name", "client_id"], "properties": {
        "name": {"type": "string"}, "client_id": {"type": "integer"},
        "status": {"type": "string"}, "manager_id": {"type": "integer"}}},
    "api.deals_status": {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string"}, "version": {"type": "integer"}}},
    "api.payments_add": {"type": "object", "required": ["amount", "due_date"], "properties": {
        "amount": MONEY, "due_date": {"type": "string", "format": "date"},
        "currency": {"type": "string"}, "comment": {"type": "string"}}},
    "api.payments_receive": {"type": "object", "properties": {
        "amount": MONEY, "received_on": {"type": "string", "format": "date"}}},
    "api.calls_record": {"type": "object",
                         "required": ["direction", "from", "to", "started_at", "ended_at"],
                         "properties": {
                             "direction": {"enum": ["inbound", "outbound", "internal"]},
                             "from": {"type": "string"}, "to": {"type": "string"},
                             "started_at": {"type": "string", "format": "date-time"},
                             "answered_at": {"type": "string", "format": "date-time"},
                             "ended_at": {"type": "string", "format": "date-time"},
                             "call_id": {"type": "string"}}},
}

PUBLIC = {"api.token", "api.openapi"}


def describe_body(endpoint: str, schema: dict[str, Any]) -> None:
    """A section's API module names the request body of one of its endpoints."""
    BODIES[endpoint] = schema


def public(endpoint: str) -> None:
    """Mark an endpoint as reachable without a token (webhooks, client links)."""
    PUBLIC.add(endpoint)


def success_codes(view: Any) -> list[str]:
    """The 2xx statuses a view returns, read from its ``return body, status`` statements
    (so the document follows the code); 200 when it names none."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(view)))
    except (OSError, TypeError, SyntaxError):
        return ["200"]
    codes = {str(node.value.elts[1].value) for node in ast.walk(tree)
             if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple)
             and len(node.value.elts) == 2 and isinstance(node.value.elts[1], ast.Constant)
             and isinstance(node.value.elts[1].value, int)
             and 200 <= node.value.elts[1].value < 300}
    return sorted(codes) or ["200"]


PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _path_schema(converter: str, name: str) -> dict[str, Any]:
    if converter == "int":  # ids: BIGINT (the small tables' INTEGER), checked at the edge
        return {"type": "integer", "minimum": 1, "maximum": id_limit(name)}
    return {"type": "string"}


def _errors(extra: dict[str, str] | None = None) -> dict[str, Any]:
    texts = {**dict(ERROR_STATUSES), **(extra or {})}
    out = {code: {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for code, text in texts.items()}
    # a URL over our limit is our JSON 414; a request line over 8190 bytes never reaches
    # the app: the HTTP server answers it with its own page
    out["414"] = {"description": "the URL is longer than the limit", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
        "text/html": {"schema": {"type": "string"}}}}
    return out


def _model_schema(model: Any, components: dict[str, Any], mode: str) -> dict[str, Any]:
    """The schema of a model (or ``Items[Model]``), its named parts put in components."""
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}",
                                            mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    if isinstance(model, type) and issubclass(model, BaseModel) and \
            schema.get("type") == "object":
        name = model.__name__
        if components.get(name, schema) != schema:  # two models of one name: keep both
            name = f"{model.__module__.rsplit('.', 1)[-1].capitalize()}{name}"
        components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}
    return schema


def _declared(spec: Spec, op: dict[str, Any], components: dict[str, Any]) -> None:
    if spec.query is not None:
        schema = spec.query.model_json_schema(mode="validation")
        components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", ()))
        op["parameters"] += [{"name": name, "in": "query", "required": name in required,
                              "schema": prop}
                             for name, prop in schema.get("properties", {}).items()]
    if spec.body is not None:
        op["requestBody"] = {"required": spec.body_required, "content": {"application/json": {
            "schema": _model_schema(spec.body, components, "validation")}}}
    if spec.upload:
        op["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    if spec.form is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/x-www-form-urlencoded": {
                "schema": _model_schema(spec.form, components, "validation")}}}
    if spec.status == 204:
        ok: dict[str, Any] = {"description": "No content"}
    else:
        ok = {"description": "OK", "content": {
            kind: {"schema": (_model_schema(spec.response, components, "serialization")
                              if spec.response is not None else OBJECT)
                   if kind == "application/json" else
                   {"type": "string"} if kind.startswith("text/") else
                   {"type": "string", "format": "binary"}}
            for kind in spec.content_types or (spec.content_type,)}}
    if spec.headers:
        ok["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                         for name, text in spec.headers.items()}
    extra = {str(code): text for code, text in spec.statuses.items()}
    if spec.body is not None or spec.upload or spec.form is not None:
        extra["413"] = "the body is larger than the limit"
    successes = {code: {**ok, "description": extra.pop(code)}
                 for code in list(extra) if code.startswith("2")}  # other success answers
    op["responses"] = {str(spec.status): ok, **successes, **_errors(extra)}


def _operation(endpoint: str, method: str, path_params: dict[str, str],
               components: dict[str, Any]) -> dict[str, Any]:
    view = current_app.view_functions[endpoint]
    doc = (view.__doc__ or "").strip()
    op: dict[str, Any] = {
        "operationId": endpoint.split(".", 1)[1] + ("" if method == "get" else f"_{method}"),
        "summary": doc.splitlines()[0] if doc else endpoint.split(".", 1)[1].replace("_", " "),
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": _path_schema(converter, name)}
                       for name, converter in path_params.items()],
    }
    if endpoint in PUBLIC:
        op["security"] = []
    spec = SPECS.get(view)
    if spec is not None:
        _declared(spec, op, components)
        return op
    op.update({
        "responses": {
            **{code: {"description": "No content"} if code == "204" else
               {"description": "OK", "content": {"application/json": {"schema": OBJECT}}}
               for code in success_codes(view)},
            **{code: {"description": text, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}
               for code, text in (("401", "not signed in"), ("403", "role missing"),
                                  ("404", "not found"), ("409", "conflict"),
                                  ("422", "invalid input; `field` names it"),
                                  ("503", "service unavailable"),
                                  ("504", "service did not answer in time"))}},
    })
    if endpoint in BODIES:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": BODIES[endpoint]}}}
    return op


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Error": ERROR}
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule.endpoint, method.lower(),
                {name: converter for converter, name in PARAM.findall(rule.rule)}, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRM API", "version": "1.0.0",
                 "description": "Clients, deals, payments, calls and notifications."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
