"""API of the product catalogue (goods and services): anyone who works with deals reads
and searches it; administrators add, change, retire and import price lists."""
from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from flask import g
from pydantic import Field

from gateway.api import bp
from gateway.api.admin import need_admin
from gateway.api.clients import uploaded_file
from gateway.api.schema import Bool, Input, Items, Limit, Money, Output, Query, Version, endpoint
from gateway.remote import remote
from gateway.sections.catalogue import IMPORT_TIMEOUT

VatRate = Literal["none", "0", "5", "7", "10", "20", "22"]  # as VAT_RATES


class ProductsQuery(Query):
    q: Annotated[str, Limit(100, required=False)] | None = Field(
        None, description="part of the name or the article")
    include_inactive: Bool = False
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class ProductChange(Input):
    name: Annotated[str, Limit(300)] | None = None
    article: Annotated[str, Limit(100, required=False)] | None = None
    unit: Annotated[str, Limit(20, required=False)] | None = None
    price: Money | None = None
    vat_rate: VatRate | None = None
    product_line: Annotated[str, Limit(200, required=False)] | None = None
    kind: Literal["goods", "service"] | None = None
    active: Bool | None = None
    version: Version | None = None


class ProductCreate(ProductChange):
    name: Annotated[str, Limit(300)]
    price: Money


class Product(Output):
    id: int
    name: str
    article: str
    unit: str
    price: str
    vat_rate: str
    product_line: str
    kind: str
    active: bool
    version: int


class ImportResult(Output):
    created: int
    updated: int
    total: int


@bp.route("/products", methods=["GET"])
@endpoint(section="deals", query=ProductsQuery, response=Items[Product])
def products_list(query: ProductsQuery) -> Any:
    """Search the catalogue (active items unless ``include_inactive``)."""
    return remote("deals", "list_products", query.q or "", query.include_inactive, query.limit)


@bp.route("/products/<int:product_id>", methods=["GET"])
@endpoint(section="deals", response=Product)
def products_get(product_id: int) -> Any:
    """One catalogue item"""
    return remote("deals", "get_product", product_id)


@bp.route("/products", methods=["POST"])
@endpoint(section="", body=ProductCreate, response=Product, status=201)
def products_create(body: ProductCreate) -> Any:
    """Add goods or a service (administrators)"""
    need_admin()
    return remote("deals", "save_product", body.sent(), user_id=g.user.id), 201


@bp.route("/products/<int:product_id>", methods=["PATCH"])
@endpoint(section="", body=ProductChange, response=Product,
          statuses={409: "the item was changed meanwhile (stale version)"})
def products_update(product_id: int, body: ProductChange) -> Any:
    """Change or retire (``active: false``) a catalogue item (administrators)"""
    need_admin()
    current = remote("deals", "get_product", product_id)
    merged = {k: current[k] for k in ("name", "article", "unit", "price", "vat_rate",
                                      "product_line", "kind", "active")}
    return remote("deals", "save_product", {**merged, **body.sent(), "id": product_id},
                  user_id=g.user.id)


@bp.route("/products/imports", methods=["POST"])
@endpoint(section="", response=ImportResult, status=201, upload=True)
def products_import() -> Any:
    """Upload a CSV/XLSX price list (multipart ``file``, or the body): all rows or none;
    rows with a known article update it (administrators)."""
    need_admin()
    data, filename = uploaded_file()
    return remote("deals", "import_products", base64.b64encode(data).decode("ascii"),
                  filename or ("upload.xlsx" if data[:2] == b"PK" else "upload.csv"),
                  user_id=g.user.id, timeout=IMPORT_TIMEOUT), 201
