"""What callers of the documents service need beside its RPC methods
(services/documents/README.md): the placeholders a template may use, the size limit of a
DOCX template, the style every document is shown and printed with, and the admin
editor's one-line-per-question form of a questionnaire."""
from __future__ import annotations

from typing import Any

DOCX_MAX_BYTES = 5 * 1024 * 1024  # an uploaded DOCX template
FIELD_KINDS = ("text", "long_text", "number", "choice", "multi_choice", "date", "file")

_REQUISITES = ("name", "inn", "kpp", "ogrn", "ogrnip", "legal_address", "postal_address",
               "bank_name", "bik", "settlement_account", "correspondent_account",
               "full_name", "phone", "email", "address")
# Every placeholder a template may use; a dict's keys are its fields, a list's the row's.
PLACEHOLDERS: dict[str, Any] = {
    "company": ("name", "short_name", "inn", "kpp", "ogrn", "address", "bank_name", "bik",
                "settlement_account", "correspondent_account", "director", "accountant",
                "phone", "email", "vat_rate"),
    "client": ("kind", "short_name", *_REQUISITES),
    "deal": ("id", "name", "amount", "currency", "manager_name"),
    "contact": ("name", "position", "phone", "email"),
    "lines": ["n", "kind", "name", "quantity", "unit", "unit_price", "discount", "amount"],
    "totals": ("subtotal", "vat_rate", "vat", "vat_text", "total", "total_in_words"),
    "document": ("number", "date", "title", "kind"),
    "answers": None,    # questionnaire answers by question key: any key
    "qr": None,         # the invoice's payment QR code (an image source)
    "today": None,
}

BASE_CSS = """
@page { size: A4; margin: 18mm 15mm 18mm 20mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; line-height: 1.35; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #444; padding: 3px 5px; vertical-align: top; }
th { background: #eee; }
.num { text-align: right; white-space: nowrap; }
.plain td { border: none; padding: 1px 4px; }
h1 { font-size: 14pt; margin: 10px 0; }
"""


def parse_lines(text: str) -> list[dict[str, Any]]:
    """The admin page's editor: one question per line,
    ``kind | key | label | required (да/yes/*) | options; separated | help``."""
    fields = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")] + [""] * 6
        fields.append({"kind": parts[0], "key": parts[1], "label": parts[2],
                       "required": parts[3].lower() in ("да", "yes", "*", "1", "true"),
                       "options": [o for o in parts[4].split(";") if o.strip()],
                       "help": parts[5]})
    return fields


def as_lines(fields: list[dict[str, Any]]) -> str:
    return "\n".join(" | ".join([f["kind"], f["key"], f["label"],
                                 "да" if f.get("required") else "",
                                 "; ".join(f.get("options") or []), f.get("help") or ""])
                     .rstrip(" |") for f in fields)
