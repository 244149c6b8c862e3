"""API: clients, contacts, comments, history, duplicates and merging, import and export,
and the user's list columns (C1–C9).

Every endpoint declares its input and output with the models below (``gateway.api.schema``):
they validate the request before any RPC and are the OpenAPI document."""
from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from flask import g, request
from pydantic import Field

from gateway.api import bp
from gateway.api.schema import (
    Day,
    Id,
    Input,
    Items,
    Limit,
    Output,
    Query,
    SmallId,
    Version,
    endpoint,
)
from gateway.remote import remote
from gateway.sections.clients import (
    FILE_TIMEOUT,
    file_response,
    list_request,
    load_columns,
    save_columns,
)
from services.kit.contract.clients import LIST_COLUMNS, MAX_NEGLECTED_DAYS, MAX_PER_PAGE
from services.kit.errors import NotFound, ValidationError

SOURCE = "api"
Name = Annotated[str, Limit(500)]
Short = Annotated[str, Limit(500, required=False)]  # blank clears the field
Phone = Annotated[str, Limit(40)]
Email = Annotated[str, Limit(254)]
Kind = Literal["legal", "entrepreneur", "person"]


# --- what the clients service answers -----------------------------------------------------

class Contact(Output):
    id: int
    client_id: int
    name: str
    phones: list[str]
    emails: list[str]


class Client(Output):
    id: int
    kind: str
    name: str
    requisites: dict[str, Any]
    version: int


class ClientFull(Client):
    contacts: list[Contact]


class ClientRow(Output):
    id: int
    name: str
    kind: str


class ClientPage(Output):
    total: int
    # false: a common fragment matched more than ``total`` clients (not counted further)
    total_exact: bool = True
    page: int
    per_page: int
    items: list[ClientRow]


class Duplicate(Output):
    id: int
    name: str
    reasons: list[dict[str, Any]]


class Saved(ClientFull):
    warnings: list[str]
    duplicates: list[Duplicate]


class ClientComment(Output):
    id: int
    client_id: int
    text: str
    created_at: str


class HistoryEntry(Output):
    id: int
    field: str
    changed_at: str


class ImportPreview(Output):
    import_id: int | None
    rows_ok: int
    rows_with_errors: int
    errors: list[dict[str, Any]]


class ImportRun(Output):
    created: int
    updated: int
    client_ids: list[int]


class Columns(Output):
    columns: list[str]


# --- what callers send --------------------------------------------------------------------

class ContactData(Input):
    name: Name
    position: Short = ""
    phones: Annotated[list[Phone], Field(max_length=20)] = []
    emails: Annotated[list[Email], Field(max_length=20)] = []


class ContactChange(Input):
    name: Name = ""
    position: Short = ""
    phones: Annotated[list[Phone], Field(max_length=20)] = []
    emails: Annotated[list[Email], Field(max_length=20)] = []


class Requisites(Input):
    """Requisites of the kind (the service checks digits and checksums); a person:
    full_name, phone, email, address."""

    name: Short = ""
    inn: Short = ""
    kpp: Short = ""
    ogrn: Short = ""
    ogrnip: Short = ""
    legal_address: Short = ""
    postal_address: Short = ""
    bik: Short = ""
    settlement_account: Short = ""
    correspondent_account: Short = ""
    full_name: Short = ""
    phone: Short = ""
    email: Short = ""
    address: Short = ""


class ClientData(Input):
    kind: Kind = "legal"
    name: Short = ""
    inn: Short = ""
    kpp: Short = ""
    ogrn: Short = ""
    ogrnip: Short = ""
    bik: Short = ""
    settlement_account: Short = ""
    correspondent_account: Short = ""
    legal_address: Short = ""
    postal_address: Short = ""
    full_name: Short = ""
    address: Short = ""
    website: Short = ""
    city: Short = ""
    manager_id: SmallId | None = None
    requisites: Requisites | None = None


class ClientCreate(ClientData):
    contacts: Annotated[list[ContactData], Field(max_length=50)] = []


class ClientUpdate(ClientData):
    version: Version | None = None


class CommentAdd(Input):
    text: Annotated[str, Limit(10_000)]


class Merge(Input):
    merged_id: Id


class ColumnsSave(Input):
    columns: Annotated[list[Literal[LIST_COLUMNS]], Field(min_length=1,  # type: ignore[valid-type]
                                                          max_length=len(LIST_COLUMNS))]


class ClientsQuery(Query):
    q: Annotated[str, Limit(200, required=False)] | None = Field(
        None, description="a name part, an INN start or a phone in any format")
    name: Annotated[str, Limit(200, required=False)] | None = None
    inn: Annotated[str, Limit(12, required=False)] | None = None
    phone: Annotated[str, Limit(40, required=False)] | None = None
    manager_id: SmallId | None = None
    kind: Kind | None = None
    city: Annotated[str, Limit(200, required=False)] | None = None
    created_from: Day | None = None
    created_to: Day | None = None
    neglected_days: Annotated[int, Field(ge=1, le=MAX_NEGLECTED_DAYS)] | None = None
    no_open_reminder: Literal["0", "1"] | None = None
    sort: Literal[tuple(c for col in LIST_COLUMNS  # type: ignore[valid-type]
                        for c in (col, f"-{col}"))] | None = None


class SearchQuery(ClientsQuery):
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=MAX_PER_PAGE)] = 50


class ExportQuery(ClientsQuery):
    format: Literal["csv", "xlsx"] = "csv"


class PhoneQuery(Query):
    phone: Annotated[str, Limit(40)]


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.route("/clients")
@endpoint(section="clients", query=SearchQuery, response=ClientPage)
def clients_search(query: SearchQuery) -> Any:
    """Search and filter the client list (``sort``: a column, "-" for descending)."""
    wanted = list_request(request.args)
    return remote("clients", "search_clients", wanted["query"], page=query.page,
                  per_page=query.per_page, filters=wanted["filters"], sort=wanted["sort"],
                  manager_order=wanted["manager_order"])


@bp.route("/clients", methods=["POST"])
@endpoint(section="clients", body=ClientCreate, response=Saved, status=201)
def clients_create(body: ClientCreate) -> Any:
    """Create a client; the answer lists possible ``duplicates`` (same INN or phone)."""
    return remote("clients", "create_client", body.sent(), user_id=g.user.id,
                  lang=g.lang, source=SOURCE), 201


@bp.route("/clients/<int:client_id>")
@endpoint(section="clients", response=ClientFull)
def clients_get(client_id: int) -> Any:
    """A client with its requisites and contacts"""
    return remote("clients", "get_client", client_id)


@bp.route("/clients/<int:client_id>", methods=["PATCH"])
@endpoint(section="clients", body=ClientUpdate, response=Saved,
          statuses={409: "stale version or a merged client"})
def clients_update(client_id: int, body: ClientUpdate) -> Any:
    """Change a client's fields and requisites; only the keys sent change (409 when
    ``version`` is stale)."""
    data = body.sent()
    version = data.pop("version", None)
    return remote("clients", "update_client", client_id, data, user_id=g.user.id,
                  version=version, source=SOURCE)


@bp.route("/clients/<int:client_id>/contacts")
@endpoint(section="clients", response=Items[Contact])
def clients_contacts(client_id: int) -> Any:
    """The client's contact persons"""
    return remote("clients", "list_contacts", client_id)


@bp.route("/clients/<int:client_id>/contacts", methods=["POST"])
@endpoint(section="clients", body=ContactData, response=Contact, status=201,
          statuses={409: "a merged client"})
def clients_add_contact(client_id: int, body: ContactData) -> Any:
    """Add a contact person: a name and a phone are enough."""
    return remote("clients", "add_contact", client_id, body.sent(), user_id=g.user.id,
                  source=SOURCE), 201


@bp.route("/contacts/<int:contact_id>", methods=["PATCH"])
@endpoint(section="clients", body=ContactChange, response=Contact)
def contacts_update(contact_id: int, body: ContactChange) -> Any:
    """Change a contact; lists (phones, emails) are replaced whole."""
    return remote("clients", "update_contact", contact_id, body.sent(), user_id=g.user.id,
                  source=SOURCE)


@bp.route("/contacts/by-phone")
@endpoint(section="clients", query=PhoneQuery, response=Contact)
def contacts_by_phone(query: PhoneQuery) -> Any:
    """The contact with this phone (any format), or 404."""
    contact = remote("clients", "find_contact_by_phone", query.phone)
    if contact is None:
        raise NotFound("no contact has this phone", entity="contact")
    return contact


@bp.route("/clients/<int:client_id>/history")
@endpoint(section="clients", response=Items[HistoryEntry])
def clients_history(client_id: int) -> Any:
    """Who changed which field, from what, to what, when; newest first."""
    return remote("clients", "client_history", client_id)


@bp.route("/clients/<int:client_id>/comments")
@endpoint(section="clients", response=Items[ClientComment])
def clients_comments(client_id: int) -> Any:
    """Comments on the client, newest first"""
    return remote("clients", "list_comments", client_id)


@bp.route("/clients/<int:client_id>/comments", methods=["POST"])
@endpoint(section="clients", body=CommentAdd, response=ClientComment, status=201,
          statuses={409: "a merged client"})
def clients_add_comment(client_id: int, body: CommentAdd) -> Any:
    """Comment on a client"""
    return remote("clients", "add_comment", client_id, body.text, user_id=g.user.id), 201


@bp.route("/clients/<int:client_id>/duplicates")
@endpoint(section="clients", response=Items[Duplicate])
def clients_duplicates(client_id: int) -> Any:
    """Other clients with the same INN or a shared phone."""
    return remote("clients", "find_duplicates", client_id)


@bp.route("/clients/<int:client_id>/merge", methods=["POST"])
@endpoint(section="clients", body=Merge, response=ClientFull, status=201,
          statuses={409: "either client is merged already"})
def clients_merge(client_id: int, body: Merge) -> Any:
    """Merge client ``merged_id`` into this one (which survives); answers the survivor."""
    return remote("clients", "merge_clients", client_id, body.merged_id,
                  user_id=g.user.id, source=SOURCE), 201


def uploaded_file() -> tuple[bytes, str | None]:
    """A multipart ``file`` field, or the raw request body (text/csv, xlsx)."""
    upload = request.files.get("file")
    if upload is not None:
        return upload.read(), upload.filename
    data = request.get_data(cache=False)
    if not data:
        raise ValidationError("Пришлите файл: поле «file» формы или тело запроса.",
                              field="file", key="file.required")
    return data, None


@bp.route("/clients/imports", methods=["POST"])
@endpoint(section="clients", response=ImportPreview, status=201, upload=True)
def clients_import_preview() -> Any:
    """Upload a CSV/XLSX file (multipart ``file``, or the body): a row-by-row preview and
    an ``import_id`` to run it."""
    data, filename = uploaded_file()
    return remote("clients", "preview_import", base64.b64encode(data).decode("ascii"),
                  user_id=g.user.id, filename=filename, timeout=FILE_TIMEOUT), 201


@bp.route("/clients/imports/<int:import_id>/run", methods=["POST"])
@endpoint(section="clients", response=ImportRun, status=201,
          statuses={409: "the import ran already"})
def clients_import_run(import_id: int) -> Any:
    """Import the rows without errors of a previewed file (once)."""
    return remote("clients", "run_import", import_id, user_id=g.user.id,
                  lang=g.lang, timeout=FILE_TIMEOUT), 201


@bp.route("/clients/export")
@endpoint(section="clients", query=ExportQuery, content_type="text/csv",
          content_types=("text/csv", XLSX), headers={"X-Clients-Truncated": "1 when cut "
                                                     "at 10 000 clients"})
def clients_export(query: ExportQuery) -> Any:
    """The filtered list (same query as GET /clients) as a file: ``format`` csv or xlsx."""
    wanted = list_request(request.args)
    return file_response(remote(
        "clients", "export_clients", wanted["query"], filters=wanted["filters"],
        sort=wanted["sort"], fmt=query.format, lang=g.lang,
        manager_order=wanted["manager_order"], timeout=FILE_TIMEOUT))


@bp.route("/clients/columns")
@endpoint(section="clients", response=Columns)
def clients_columns() -> Any:
    """The columns of the client list the user chose, in their order."""
    return {"columns": load_columns(g.user.id)}


@bp.route("/clients/columns", methods=["PUT"])
@endpoint(section="clients", body=ColumnsSave, response=Columns)
def clients_columns_save(body: ColumnsSave) -> Any:
    """Choose the list's columns and their order"""
    return {"columns": save_columns(g.user.id, body.columns)}
