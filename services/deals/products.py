"""Entrypoints of the product catalogue (rules in catalogue.py, queries in
catalogue_store.py; the gateway lets only administrators call the writes)."""
from __future__ import annotations

import base64
from typing import Any

from services.deals import catalogue, catalogue_store, domain, models
from services.deals.base import DealsBase
from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ValidationError
from services.kit.parse import version as parse_version


class ProductsEntrypoints(DealsBase):
    """The product catalogue the calculator and orders pick from."""

    # ----------------------------------------------------- product catalogue
    @rpc
    def list_products(self, q: str | None = None, include_inactive: bool = False,
                      limit: int = 50) -> list[dict[str, Any]]:
        terms = catalogue.search_terms(q)
        return [catalogue_store.product_dict(p) for p in catalogue_store.search(
            self.db.session, terms, bool(include_inactive), int(limit))]

    @rpc
    def get_product(self, product_id: int) -> dict[str, Any]:
        row = self.db.get(models.Product, domain.identifier(product_id, "product_id"))
        if row is None:
            raise NotFound("product not found", entity="product", id=product_id)
        return catalogue_store.product_dict(row)

    @rpc
    def save_product(self, data: dict[str, Any], user_id: int | None = None
                     ) -> dict[str, Any]:
        """Create (no ``id``) or change a catalogue item; retire it with ``active`` false."""
        product = catalogue.validate_product(data)
        product_id = domain.identifier(data.get("id"), "id", required=False)
        version = parse_version(data.get("version"))
        row = catalogue_store.save(self.db.session, product_id, product, version, user_id)
        return catalogue_store.product_dict(row)

    @rpc
    def import_products(self, content_b64: str, filename: str, user_id: int | None = None
                        ) -> dict[str, Any]:
        """A CSV/XLSX price list, checked whole before anything is written."""
        try:
            content = base64.b64decode(content_b64, validate=True)
        except (ValueError, TypeError):
            raise ValidationError("Файл не прочитан.", "file",
                                  key="catalogue.import.broken") from None
        products = catalogue.parse_import(content, str(filename or ""))
        return catalogue_store.import_rows(self.db.session, products, user_id)

    @rpc
    def list_product_lines(self) -> list[str]:
        return catalogue_store.product_lines(self.db.session)
