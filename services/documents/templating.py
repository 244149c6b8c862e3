"""HTML templates: checked before they are saved, rendered in Jinja's sandbox to HTML and
then to PDF by WeasyPrint.

A template reads only the data it is given (``SandboxedEnvironment``: no attribute of
Python objects beyond plain values, no imports, no globals but ours), everything it prints
is escaped, and an unknown placeholder is reported with its line before the template is
saved.  A render that fails names the line and the placeholder (``ValidationError``).
"""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from services.documents.domain import money_ru
from services.kit.contract.documents import BASE_CSS, PLACEHOLDERS
from services.kit.errors import ValidationError

FILTERS = ("money", "default", "upper", "lower", "capitalize", "title", "trim", "round",
           "length", "join", "first", "last", "replace", "truncate", "int", "format", "e",
           "striptags", "wordcount", "sum", "abs", "nl2br")


def _nl2br(value: Any) -> Any:
    from markupsafe import Markup, escape

    return Markup("<br>".join(escape(str(value)).split("\n")))


def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True)
    env.globals.clear()  # no range/lipsum/dict/cycler: only the data given
    env.filters["money"] = money_ru
    env.filters["nl2br"] = _nl2br
    return env


ENV = environment()


def _problem(message: str, line: int | None, name: str | None, key: str) -> ValidationError:
    where = f"строка {line}: " if line else ""
    return ValidationError(f"{where}{message}", field="body", key=key,
                           params={"line": line, "placeholder": name})


def check(body: str, unit: str = "строка") -> list[dict[str, Any]]:
    """Problems of a template before it is saved: syntax errors and unknown placeholders,
    fields or filters, each with its line (``unit`` names what a line is: a DOCX template
    is checked with one line per paragraph).  An empty list means it may be saved."""
    try:
        tree = ENV.parse(body)
    except TemplateSyntaxError as exc:
        return [{"line": exc.lineno, "placeholder": None, "key": "template.syntax",
                 "message": f"{unit} {exc.lineno}: ошибка в шаблоне: {exc.message}"}]
    problems: list[dict[str, Any]] = []
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}

    def report(line: int, name: str, key: str, message: str) -> None:
        problems.append({"line": line, "placeholder": name, "key": key,
                         "message": f"{unit} {line}: {message}"})

    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in PLACEHOLDERS and node.name not in local:
            report(node.lineno, node.name, "template.unknown_placeholder",
                   f"неизвестный плейсхолдер «{node.name}»")
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        # Getattr and Getitem both have .node (find_all is typed as giving any Expr)
        base, attr = access.node, getattr(access, "attr", None)  # type: ignore[attr-defined]
        if attr is None and isinstance(access, nodes.Getitem) \
                and isinstance(access.arg, nodes.Const):
            attr = access.arg.value
        if not isinstance(base, nodes.Name) or base.name not in PLACEHOLDERS or attr is None:
            continue
        fields = PLACEHOLDERS[base.name]
        if isinstance(fields, tuple) and attr not in fields:
            report(access.lineno, f"{base.name}.{attr}", "template.unknown_field",
                   f"у «{base.name}» нет поля «{attr}»")
    for node in tree.find_all(nodes.Filter):  # type: ignore[assignment]  # a Filter now
        if node.name not in FILTERS:
            report(node.lineno, node.name, "template.unknown_filter",
                   f"неизвестный фильтр «{node.name}»")
    return sorted(problems, key=lambda p: (p["line"], p["placeholder"] or ""))


def ensure_valid(body: str) -> None:
    raise_problems(check(body))


def raise_problems(problems: list[dict[str, Any]], field: str = "body") -> None:
    if problems:
        first = problems[0]
        raise ValidationError("; ".join(p["message"] for p in problems[:5]), field=field,
                              key=first["key"], params={"line": first["line"],
                                                        "placeholder": first["placeholder"],
                                                        "problems": problems})


def _template_line() -> int | None:
    """The template line of the exception being handled (Jinja rewrites its traceback so
    template frames carry the template's own line numbers)."""
    tb, line = sys.exc_info()[2], None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def plain(value: Any) -> Any:
    """Data for a template: dicts, lists, strings, numbers — nothing with methods to call."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, Decimal, bool)):
        return value
    return str(value)


def render_html(body: str, data: Mapping[str, Any]) -> str:
    try:
        template = ENV.from_string(body)
    except TemplateSyntaxError as exc:
        raise _problem(f"ошибка в шаблоне: {exc.message}", exc.lineno, None,
                       "template.syntax") from None
    try:
        return template.render(plain(data))
    except UndefinedError as exc:
        quoted = re.findall(r"'([^']*)'", str(exc.message or ""))
        name = quoted[-1] if quoted else None  # "'x' is undefined", "... has no attribute 'y'"
        raise _problem(f"нет данных для «{name or exc.message}»", _template_line(), name,
                       "template.undefined") from None
    except SecurityError as exc:
        raise _problem(f"запрещённое действие в шаблоне: {exc}", _template_line(), None,
                       "template.forbidden") from None
    except Exception as exc:  # a filter given the wrong value, a division by zero...
        raise _problem(f"шаблон не удалось заполнить: {exc}", _template_line(), None,
                       "template.render") from None


def _fetcher() -> Any:
    """WeasyPrint may read only data: URIs (the QR code): a template can make the server
    fetch nothing, local or remote."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, timeout=1)




def render_pdf(html: str) -> bytes:
    from weasyprint import CSS, HTML

    return HTML(string=html, url_fetcher=_fetcher()).write_pdf(
        stylesheets=[CSS(string=BASE_CSS)])
