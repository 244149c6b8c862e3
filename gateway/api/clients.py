"""API: clients, contacts, comments, history, duplicates and merging, import and export,
and the user's list columns (C1–C9)."""
from __future__ import annotations

import base64
from typing import Any

from flask import g, jsonify, request

from gateway.api import body, bp, need
from gateway.api.openapi import describe_body
from gateway.remote import remote
from gateway.sections.clients import (
    FILE_TIMEOUT,
    file_response,
    list_request,
    load_columns,
    save_columns,
)
from services.kit.errors import NotFound, ValidationError

SOURCE = "api"
STRING = {"type": "string"}
STRINGS = {"type": "array", "items": STRING}
CONTACT = {"type": "object", "required": ["name"], "properties": {
    "name": STRING, "position": STRING, "phones": STRINGS, "emails": STRINGS}}
REQUISITES = {"type": "object", "description": "requisites of the kind: name (full legal "
              "name), inn, kpp, ogrn, ogrnip, legal_address, postal_address, bik, "
              "settlement_account, correspondent_account; a person: full_name, phone, email, "
              "address", "additionalProperties": STRING}
CLIENT_FIELDS = {
    "kind": {"enum": ["legal", "entrepreneur", "person"]}, "name": STRING,
    "inn": STRING, "kpp": STRING, "ogrn": STRING, "ogrnip": STRING, "address": STRING,
    "website": STRING, "city": STRING, "manager_id": {"type": ["integer", "null"]},
    "requisites": REQUISITES}


@bp.route("/clients")
def clients_search() -> Any:
    """Search and filter the client list.

    Query: q (name part, INN start or phone in any format), name, inn, phone, manager_id,
    kind, city, created_from, created_to, neglected_days, no_open_reminder, sort (a column,
    "-" for descending), page, per_page (≤200)."""
    need("clients")
    wanted = list_request(request.args)
    return jsonify(remote("clients", "search_clients", wanted["query"],
                          page=request.args.get("page", 1, type=int) or 1,
                          per_page=request.args.get("per_page", 50, type=int) or 50,
                          filters=wanted["filters"], sort=wanted["sort"],
                          manager_order=wanted["manager_order"]))


@bp.route("/clients", methods=["POST"])
def clients_create() -> Any:
    """Create a client; the answer lists possible ``duplicates`` (same INN or phone)."""
    need("clients")
    return jsonify(remote("clients", "create_client", body(), user_id=g.user.id,
                          lang=g.lang, source=SOURCE)), 201


describe_body("api.clients_create", {"type": "object", "properties": {
    **CLIENT_FIELDS, "contacts": {"type": "array", "items": CONTACT}}})


@bp.route("/clients/<int:client_id>")
def clients_get(client_id: int) -> Any:
    need("clients")
    return jsonify(remote("clients", "get_client", client_id))


@bp.route("/clients/<int:client_id>", methods=["PATCH"])
def clients_update(client_id: int) -> Any:
    """Change a client's fields and requisites; only the keys sent change (409 when
    ``version`` is stale)."""
    need("clients")
    data = body()
    version = data.pop("version", None)
    return jsonify(remote("clients", "update_client", client_id, data, user_id=g.user.id,
                          version=version, source=SOURCE))


describe_body("api.clients_update", {"type": "object", "properties": {
    **CLIENT_FIELDS, "version": {"type": "integer"}}})


@bp.route("/clients/<int:client_id>/contacts")
def clients_contacts(client_id: int) -> Any:
    need("clients")
    return jsonify(remote("clients", "list_contacts", client_id))


@bp.route("/clients/<int:client_id>/contacts", methods=["POST"])
def clients_add_contact(client_id: int) -> Any:
    """Add a contact person: a name and a phone are enough."""
    need("clients")
    return jsonify(remote("clients", "add_contact", client_id, body(), user_id=g.user.id,
                          source=SOURCE)), 201


describe_body("api.clients_add_contact", CONTACT)


@bp.route("/contacts/<int:contact_id>", methods=["PATCH"])
def contacts_update(contact_id: int) -> Any:
    """Change a contact; lists (phones, emails) are replaced whole."""
    need("clients")
    return jsonify(remote("clients", "update_contact", contact_id, body(), user_id=g.user.id,
                          source=SOURCE))


describe_body("api.contacts_update", {**CONTACT, "required": []})


@bp.route("/contacts/by-phone")
def contacts_by_phone() -> Any:
    """The contact with this phone (query ``phone``, any format), or 404."""
    need("clients")
    contact = remote("clients", "find_contact_by_phone", request.args.get("phone", ""))
    if contact is None:
        raise NotFound("no contact has this phone", entity="contact")
    return jsonify(contact)


@bp.route("/clients/<int:client_id>/history")
def clients_history(client_id: int) -> Any:
    """Who changed which field, from what, to what, when; newest first."""
    need("clients")
    return jsonify(remote("clients", "client_history", client_id))


@bp.route("/clients/<int:client_id>/comments")
def clients_comments(client_id: int) -> Any:
    need("clients")
    return jsonify(remote("clients", "list_comments", client_id))


@bp.route("/clients/<int:client_id>/comments", methods=["POST"])
def clients_add_comment(client_id: int) -> Any:
    need("clients")
    return jsonify(remote("clients", "add_comment", client_id, body().get("text"),
                          user_id=g.user.id)), 201


describe_body("api.clients_add_comment", {"type": "object", "required": ["text"],
                                          "properties": {"text": STRING}})


@bp.route("/clients/<int:client_id>/duplicates")
def clients_duplicates(client_id: int) -> Any:
    """Other clients with the same INN or a shared phone."""
    need("clients")
    return jsonify(remote("clients", "find_duplicates", client_id))


@bp.route("/clients/<int:client_id>/merge", methods=["POST"])
def clients_merge(client_id: int) -> Any:
    """Merge client ``merged_id`` into this one (which survives); answers the survivor."""
    need("clients")
    return jsonify(remote("clients", "merge_clients", client_id, body().get("merged_id"),
                          user_id=g.user.id, source=SOURCE)), 201


describe_body("api.clients_merge", {"type": "object", "required": ["merged_id"],
                                    "properties": {"merged_id": {"type": "integer"}}})


def uploaded_file() -> tuple[bytes, str | None]:
    """A multipart ``file`` field, or the raw request body (text/csv, xlsx)."""
    upload = request.files.get("file")
    if upload is not None:
        return upload.read(), upload.filename
    data = request.get_data(cache=False)
    if not data:
        raise ValidationError("file: send the file as multipart field 'file' or as the body",
                              field="file")
    return data, None


@bp.route("/clients/imports", methods=["POST"])
def clients_import_preview() -> Any:
    """Upload a CSV/XLSX file: a row-by-row preview and an ``import_id`` to run it."""
    need("clients")
    data, filename = uploaded_file()
    return jsonify(remote("clients", "preview_import", base64.b64encode(data).decode("ascii"),
                          user_id=g.user.id, filename=filename, timeout=FILE_TIMEOUT)), 201


@bp.route("/clients/imports/<int:import_id>/run", methods=["POST"])
def clients_import_run(import_id: int) -> Any:
    """Import the rows without errors of a previewed file (once)."""
    need("clients")
    return jsonify(remote("clients", "run_import", import_id, user_id=g.user.id,
                          lang=g.lang, timeout=FILE_TIMEOUT)), 201


@bp.route("/clients/export")
def clients_export() -> Any:
    """The filtered list (same query as GET /clients) as a file: ``format`` csv or xlsx."""
    need("clients")
    wanted = list_request(request.args)
    return file_response(remote(
        "clients", "export_clients", wanted["query"], filters=wanted["filters"],
        sort=wanted["sort"], fmt=request.args.get("format", "csv"), lang=g.lang,
        manager_order=wanted["manager_order"], timeout=FILE_TIMEOUT))


@bp.route("/clients/columns")
def clients_columns() -> Any:
    """The columns of the client list the user chose, in their order."""
    need("clients")
    return jsonify({"columns": load_columns(g.user.id)})


@bp.route("/clients/columns", methods=["PUT"])
def clients_columns_save() -> Any:
    need("clients")
    return jsonify({"columns": save_columns(g.user.id, body().get("columns"))})


describe_body("api.clients_columns_save", {"type": "object", "required": ["columns"],
                                           "properties": {"columns": STRINGS}})
