"""Queries of the product catalogue (the rules are in ``catalogue.py``)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.deals.catalogue import Product as ProductRow
from services.deals.models import Product
from services.kit.errors import Conflict, NotFound, ValidationError

SEARCH_LIMIT = 200


def product_dict(p: Product) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "article": p.article or "", "unit": p.unit,
            "price": p.price, "vat_rate": p.vat_rate, "product_line": p.product_line,
            "kind": p.kind, "active": p.active, "updated_by": p.updated_by,
            "updated_at": p.updated_at, "version": p.version}


def search(session: Session, q: str, include_inactive: bool, limit: int) -> list[Product]:
    query = select(Product)
    if not include_inactive:
        query = query.where(Product.active.is_(True))
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = "%" + escaped + "%"
        # spelled as the index ix_products_search is, so that the index serves it
        haystack: ColumnElement[str] = literal_column(
            "(lower(products.name) || ' ' || lower(coalesce(products.article, '')))")
        query = query.where(haystack.like(pattern))
        # names that start with what was typed first, then the rest by name
        query = query.order_by(func.lower(Product.name).like(pattern[1:]).desc())
    return list(session.scalars(query.order_by(Product.name, Product.id)
                                .limit(max(1, min(limit, SEARCH_LIMIT)))))


def _article_taken(session: Session, article: str | None, own_id: int | None) -> None:
    if not article:
        return
    other = session.scalar(select(Product.id).where(Product.article == article))
    if other is not None and other != own_id:
        raise ValidationError("Такой артикул уже есть в каталоге.", "article",
                              key="catalogue.article_taken", params={"value": article})


def save(session: Session, product_id: int | None, product: ProductRow,
         version: int | None, user_id: int | None) -> Product:
    _article_taken(session, product.article or None, product_id)
    row: Product | None
    if product_id is None:
        row = Product(**product.columns(), created_by=user_id, updated_by=user_id, version=1)
        session.add(row)
    else:
        row = session.get(Product, product_id, with_for_update=True)
        if row is None:
            raise NotFound("product not found", entity="product", id=product_id)
        if version is not None and version != row.version:
            raise Conflict("the product was changed meanwhile", entity="product",
                           id=product_id)
        for name, value in product.columns().items():
            setattr(row, name, value)
        row.updated_by = user_id
        row.version += 1
    session.flush()
    return row


def import_rows(session: Session, products: list[ProductRow], user_id: int | None
                ) -> dict[str, int]:
    """Upsert a checked price list in this transaction: by article when the row has one,
    else by the exact name of an article-less product; all or nothing with the caller's
    commit."""
    created = updated = 0
    by_name = {name: pid for pid, name in session.execute(
        select(Product.id, Product.name).where(Product.article.is_(None)))}
    for product in products:
        values = product.columns()
        if product.article:
            result = session.execute(
                insert(Product).values(**values, created_by=user_id, updated_by=user_id,
                                       version=1)
                .on_conflict_do_update(index_elements=[Product.article],
                                       index_where=Product.article.isnot(None),
                                       set_={**values, "updated_by": user_id,
                                             "updated_at": func.now(),
                                             "version": Product.version + 1})
                .returning(Product.version))
            if result.scalar_one() == 1:
                created += 1
            else:
                updated += 1
        elif product.name in by_name:
            row = session.get(Product, by_name[product.name])
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_by, row.version = user_id, row.version + 1
            updated += 1
        else:
            row = Product(**values, created_by=user_id, updated_by=user_id, version=1)
            session.add(row)
            session.flush()
            by_name[product.name] = row.id
            created += 1
    session.flush()
    return {"created": created, "updated": updated, "total": created + updated}


def attach(session: Session, lines: list[dict[str, Any]], field: str = "lines") -> None:
    """Give each picked line its product line from the catalogue (an unknown id is the
    line's error); free-text lines stay as typed."""
    ids = {line["catalogue_id"] for line in lines if line.get("catalogue_id")}
    if not ids:
        return
    found = dict(session.execute(select(Product.id, Product.product_line)
                                 .where(Product.id.in_(ids))).all())
    for i, line in enumerate(lines):
        cid = line.get("catalogue_id")
        if cid is None:
            continue
        if cid not in found:
            raise ValidationError("Нет такого товара в каталоге.", f"{field}.{i}.catalogue_id",
                                  key="catalogue.unknown_product", params={"id": cid})
        line["product_line"] = found[cid] or None


def product_lines(session: Session) -> list[str]:
    return [r for r in session.scalars(
        select(Product.product_line).where(Product.product_line != "")
        .distinct().order_by(Product.product_line))]

