"""The product catalogue (goods and services): the administrator's page (edit, retire,
import a CSV/XLSX price list) and the calculator's search-as-you-type source."""
from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for

from gateway import formatting
from gateway.auth import section
from gateway.forms import NO_FORM, Form, failed
from gateway.i18n import extend
from gateway.messages import error_items, render
from gateway.remote import remote
from gateway.sections.admin import admin_only
from services.kit.errors import CrmError, ValidationError

bp = Blueprint("catalogue", __name__)

IMPORT_TIMEOUT = 60.0  # seconds: a price list of 20 000 rows is checked and written at once
FIELDS = ("name", "article", "unit", "price", "vat_rate", "product_line", "kind")
VAT_RATES = ("none", "0", "5", "7", "10", "20", "22")

extend({
    "ru": {"catalogue": "Каталог товаров и услуг", "catalogue.article": "Артикул",
           "catalogue.unit": "Ед.", "catalogue.price": "Цена", "catalogue.vat": "НДС",
           "catalogue.vat.none": "без НДС", "catalogue.line": "Товарная линия",
           "catalogue.kind": "Вид", "catalogue.active": "Активен",
           "catalogue.add": "Добавить товар или услугу", "catalogue.import": "Загрузить прайс",
           "catalogue.import_hint": "CSV или XLSX; первая строка — заголовки: Название, "
                                    "Артикул, Ед., Цена, НДС, Товарная линия, Тип, Активен. "
                                    "Строки с тем же артикулом обновляются. Файл с ошибкой "
                                    "не загружается целиком.",
           "catalogue.imported": "Загружено: новых {created}, обновлено {updated}.",
           "catalogue.search": "Найти", "catalogue.show_retired": "со скрытыми",
           "catalogue.retire": "Скрыть", "catalogue.restore": "Вернуть",
           "catalogue.empty": "Каталог пуст.", "catalogue.pick": "Из каталога",
           "catalogue.pick_hint": "начните вводить название или артикул",
           "catalogue.nothing": "Ничего не найдено", "catalogue.goods": "товар",
           "catalogue.service": "услуга", "catalogue.import_errors": "Файл не загружен:"},
    "en": {"catalogue": "Goods and services", "catalogue.article": "Article",
           "catalogue.unit": "Unit", "catalogue.price": "Price", "catalogue.vat": "VAT",
           "catalogue.vat.none": "no VAT", "catalogue.line": "Product line",
           "catalogue.kind": "Kind", "catalogue.active": "Active",
           "catalogue.add": "Add goods or a service", "catalogue.import": "Upload a price list",
           "catalogue.import_hint": "CSV or XLSX; the first row holds the headers: Name, "
                                    "Article, Unit, Price, VAT, Product line, Kind, Active. "
                                    "Rows with a known article are updated. A file with an "
                                    "error is not loaded at all.",
           "catalogue.imported": "Loaded: {created} new, {updated} updated.",
           "catalogue.search": "Search", "catalogue.show_retired": "with hidden",
           "catalogue.retire": "Hide", "catalogue.restore": "Restore",
           "catalogue.empty": "The catalogue is empty.", "catalogue.pick": "From the catalogue",
           "catalogue.pick_hint": "type a name or an article",
           "catalogue.nothing": "Nothing found", "catalogue.goods": "goods",
           "catalogue.service": "service", "catalogue.import_errors": "The file was not loaded:"},
})


def product_from_form(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {k: form.get(k, "") for k in FIELDS}
    data["active"] = form.get("active", "1") == "1"
    if form.get("id"):
        data["id"] = form["id"]
    if form.get("version"):
        data["version"] = form["version"]
    return data


def import_messages(exc: ValidationError) -> list[str]:
    """Each bad line of a price list in the reader's language: the line, the column and
    the reason rendered from its own key."""
    out = []
    for item in error_items(exc):
        params = item.get("params") or {}
        if item.get("key") == "catalogue.import.line" and params.get("reason"):
            reason = render(params["reason"], params, "")
            out.append(f"{item['message']} {reason}".strip())
        else:
            out.append(item["message"])
    return out


@bp.route("/admin/catalogue")
@admin_only
def index(form: Form = NO_FORM, import_errors: list[str] | None = None) -> Any:
    q = (request.args.get("q") or "").strip()[:100]
    retired = request.args.get("retired") == "1"
    error = None
    try:
        products = remote("deals", "list_products", q, retired, 200)
    except CrmError as exc:
        products, error = None, exc.message
    return render_template("catalogue/index.html", products=products, q=q, retired=retired,
                           form=form, vat_rates=VAT_RATES, import_errors=import_errors or [],
                           imported=request.args.get("imported"),
                           updated=request.args.get("updated"), error=error)


@bp.route("/admin/catalogue", methods=["POST"])
@admin_only
def save() -> Any:
    try:
        remote("deals", "save_product", product_from_form(request.form), user_id=g.user.id)
    except CrmError as exc:
        form_id = f"product-{request.form.get('id') or 'new'}"
        return index(form=failed(form_id, exc, names=FIELDS)), 422
    return redirect(url_for("catalogue.index", q=request.args.get("q") or None))


@bp.route("/admin/catalogue/import", methods=["POST"])
@admin_only
def upload() -> Any:
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ValidationError("Выберите файл.", "file", key="file.required")
        result = remote("deals", "import_products",
                        base64.b64encode(upload.read()).decode("ascii"), upload.filename,
                        user_id=g.user.id, timeout=IMPORT_TIMEOUT)
    except ValidationError as exc:
        return index(import_errors=import_messages(exc)), 422
    except CrmError as exc:
        return index(import_errors=[exc.message]), 422
    return redirect(url_for("catalogue.index", imported=result["created"],
                            updated=result["updated"]))


@bp.route("/catalogue/pick")
@section("deals")
def pick() -> Any:
    """The calculator's picker: active products matching what was typed, with what a line
    needs (price, kind, unit, product line)."""
    q = (request.args.get("q") or "").strip()[:100]
    if not q:
        return jsonify([])
    return jsonify([{"value": p["id"], "text": " · ".join(x for x in (
        p["name"], p["article"], formatting.money(p["price"]), p["product_line"]) if x),
        "name": p["name"], "price": p["price"], "kind": p["kind"], "unit": p["unit"]}
        for p in remote("deals", "list_products", q, False, 20)])
