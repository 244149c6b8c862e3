"""Entrypoints of document templates (HTML or DOCX, checked before they are saved) and of
our company's requisites, which every document reads."""
from __future__ import annotations

import base64
from typing import Any

from services.documents import docx_templates, domain, store, templating
from services.documents.models import Template
from services.documents.schemas import template_dict
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ValidationError

DIGITS = (("inn", (10, 12)), ("kpp", (9,)), ("bik", (9,)), ("settlement_account", (20,)),
          ("correspondent_account", (20,)))


class TemplatesEntrypoints:
    db: Any

    @rpc
    def list_templates(self, kind: str | None = None, deal_type_id: int | None = None,
                       include_inactive: bool = False) -> list[dict[str, Any]]:
        return [template_dict(t, with_body=False)
                for t in store.templates(self.db, kind, deal_type_id, include_inactive)]

    @rpc
    def get_template(self, template_id: int) -> dict[str, Any]:
        return template_dict(store.template(self.db, template_id))

    @rpc
    def check_template(self, body: str) -> list[dict[str, Any]]:
        """Problems of a template body (each with `line`, `placeholder`, `key`, `message`)."""
        if not isinstance(body, str):
            raise ValidationError("Ожидается текст шаблона.", field="body", key="text.invalid")
        return templating.check(body)

    @rpc
    def check_docx_template(self, docx_b64: str) -> list[dict[str, Any]]:
        """Problems of an uploaded DOCX template (each with `line` = its paragraph,
        `placeholder`, `key`, `message`); ValidationError(`file`) when it is no DOCX."""
        return docx_templates.check(docx_templates.decode(docx_b64))

    @rpc
    def template_docx(self, template_id: int) -> dict[str, Any]:
        template = store.template_or_none(self.db, template_id)
        if template is None or template.docx is None:
            raise NotFound(f"template {template_id}", entity="template", id=template_id)
        return {"filename": f"template-{template.id}.docx",
                "content_b64": base64.b64encode(template.docx).decode()}

    @rpc
    def save_template(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        """Create (no `id`) or change a template; refused with the first problem's line
        while the body has unknown placeholders or a syntax error."""
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", field="data", key="object.invalid")
        if data.get("id"):
            template = store.template(self.db, data["id"], field="id", lock=True)
        else:
            template = Template(version=0)
            self.db.add(template)
        template.kind = domain.kind_of(data.get("kind", template.kind))
        template.name = domain.text(data, "name", 200, required=True) or ""
        fmt = data.get("format", template.format or "html")
        if fmt not in ("html", "docx"):
            raise ValidationError("Формат шаблона: html или docx.", field="format",
                                  key="template.format", params={"value": str(fmt)})
        if fmt != (template.format or fmt) and not (fmt == "docx" and data.get("docx_b64")):
            raise ValidationError("Формат шаблона не меняется.", field="format",
                                  key="template.format", params={"value": str(fmt)})
        template.format = fmt
        if fmt == "docx":
            # a new upload replaces the file; without one the checked file stays
            if data.get("docx_b64") or template.docx is None:
                blob = docx_templates.decode(data.get("docx_b64"))
                docx_templates.ensure_valid(blob)
                template.docx = blob
                template.body = docx_templates.text(blob)
        else:
            body = data.get("body", template.body)
            if not isinstance(body, str) or not body.strip():
                raise ValidationError("Шаблон пуст.", field="body", key="required")
            templating.ensure_valid(body)
            template.body = body
        deal_type = data.get("deal_type_id")
        template.deal_type_id = domain.ident(deal_type, "deal_type_id") if deal_type else None
        template.active = bool(data.get("active", True))
        template.version = (template.version or 0) + 1
        template.updated_by = user_id
        template.updated_at = clock.now()
        self.db.flush()
        return template_dict(template)

    # -- our company ----------------------------------------------------------------------
    @rpc
    def get_company(self) -> dict[str, Any]:
        return store.company(self.db)

    @rpc
    def save_company(self, data: dict[str, Any], user_id: int | None = None) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", field="data", key="object.invalid")
        fields = store.COMPANY_FIELDS
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValidationError("Неизвестное поле.", field=unknown[0], key="field.unknown")
        cleaned = {key: domain.text(data, key, 500) for key in fields if key != "vat_rate"}
        rate = domain.vat_rate(data.get("vat_rate"))
        cleaned["vat_rate"] = None if rate is None else str(rate.normalize())
        for key, digits in DIGITS:
            value = cleaned.get(key)
            if value and not (value.isdigit() and len(value) in digits):
                raise ValidationError(f"Должно быть {' или '.join(map(str, digits))} цифр.",
                                      field=key, key=f"{key}.digits",
                                      params={"digits": list(digits)})
        row = store.company_row(self.db)
        row.data, row.updated_by, row.updated_at = cleaned, user_id, clock.now()
        self.db.add(row)
        return store.company(self.db)
