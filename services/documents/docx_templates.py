"""DOCX templates uploaded by the administrator (docxtpl): the upload checked before it
is trusted, the template checked before it is saved, rendered in Jinja's sandbox to DOCX
and, where LibreOffice is installed, to PDF.

Word stores a paragraph as runs of differently formatted text and may split a typed
``{{ client.inn }}`` anywhere.  docxtpl joins a tag whose *inside* is split across runs
of one paragraph, but not one whose opening ``{{`` itself is split, nor one that spans
paragraphs: those are reported with the paragraph's number before the template is saved.
The placeholders are those of the HTML templates (``templating.PLACEHOLDERS``): the text
of the document, one line per paragraph, goes through the same checker.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from services.documents import templating
from services.documents.domain import money_ru
from services.kit.contract.documents import DOCX_MAX_BYTES
from services.kit.errors import ValidationError

MAX_BYTES = DOCX_MAX_BYTES            # the uploaded file (the contract's limit)
MAX_UNPACKED = 50 * 1024 * 1024      # all its parts unpacked (no zip bombs)
ZIP_MAGIC = b"PK\x03\x04"
PDF_TIMEOUT = 60                     # seconds LibreOffice may take for one document
_OPEN = re.compile(r"\{[{%#]")
_CLOSE = {"{{": "}}", "{%": "%}", "{#": "#}"}
# docxtpl's own tags ({%p if %}, {%tr for %}, {{r rich }}...) are plain Jinja once the
# marker is dropped
_DOCXTPL_MARK = re.compile(r"\{([{%])(?:p|tr|tc|r)(?=\s)")


def _file_error(message: str, key: str, **params: Any) -> ValidationError:
    return ValidationError(message, field="file", key=key, params=params)


def check_file(blob: Any) -> None:
    """The upload is a real, reasonably small DOCX: zip magic bytes, a size limit, a zip
    that opens, unpacks to a bounded size and holds ``word/document.xml``."""
    if not isinstance(blob, (bytes, bytearray)) or not blob:
        raise _file_error("Файл шаблона не загружен.", "docx.required")
    if len(blob) > MAX_BYTES:
        raise _file_error(f"Файл больше {MAX_BYTES // (1024 * 1024)} МБ.", "docx.too_large",
                          limit_mb=MAX_BYTES // (1024 * 1024))
    if not bytes(blob[:4]) == ZIP_MAGIC:
        raise _file_error("Это не файл DOCX.", "docx.not_docx")
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(blob))) as archive:
            names = set(archive.namelist())
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        raise _file_error("Файл DOCX повреждён.", "docx.broken") from None
    if "word/document.xml" not in names or "[Content_Types].xml" not in names:
        raise _file_error("Это не файл DOCX.", "docx.not_docx")
    if unpacked > MAX_UNPACKED:
        raise _file_error("Файл DOCX распаковывается в слишком большой объём.",
                          "docx.too_large", limit_mb=MAX_BYTES // (1024 * 1024))


def _paragraphs(document: Any) -> Iterator[Any]:
    """The body's paragraphs in reading order, table cells included (a merged cell once)."""
    from docx.table import Table

    seen: set[int] = set()

    def walk(container: Any) -> Iterator[Any]:
        for item in container.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    for cell in row.cells:
                        if id(cell._tc) in seen:
                            continue
                        seen.add(id(cell._tc))
                        yield from walk(cell)
            else:
                yield item

    yield from walk(document)


def _tag_problems(n: int, paragraph: Any) -> list[dict[str, Any]]:
    runs = [run.text for run in paragraph.runs]
    text = "".join(runs)
    # the run each character belongs to: an opening split between two runs is broken
    owner = [i for i, run in enumerate(runs) for _ in run]
    problems: list[dict[str, Any]] = []
    closes = set()
    for match in _OPEN.finditer(text):
        start, opening = match.start(), match.group()
        end = text.find(_CLOSE[opening], start + 2)
        shown = text[start:end + 2] if end >= 0 else text[start:start + 40].rstrip()
        if start < len(owner) - 1 and owner[start] != owner[start + 1]:
            problems.append({
                "line": n, "placeholder": shown, "key": "template.docx_split_tag",
                "message": f"абзац {n}: Word разбил начало тега «{shown}» на части — "
                           "наберите тег заново одним куском"})
        elif end < 0:
            problems.append({
                "line": n, "placeholder": shown, "key": "template.docx_unclosed_tag",
                "message": f"абзац {n}: тег «{shown}» не закрыт"})
        if end >= 0:
            closes.add(end)
    for closing in ("}}", "%}"):
        for match in re.finditer(re.escape(closing), text):
            if match.start() not in closes:
                shown = text[max(0, match.start() - 40):match.end()].lstrip()
                problems.append({
                    "line": n, "placeholder": shown, "key": "template.docx_unopened_tag",
                    "message": f"абзац {n}: у тега «{shown}» нет начала"})
    return problems


def check(blob: bytes) -> list[dict[str, Any]]:
    """Problems of an uploaded DOCX template, each with its paragraph (``line``),
    ``placeholder``, ``key`` and ``message``.  Raises ``ValidationError`` (``file``) when
    the upload is no DOCX at all."""
    check_file(blob)
    from docx import Document as Docx

    try:
        document = Docx(io.BytesIO(bytes(blob)))
    except Exception:  # python-docx: a zip that is no Word document
        raise _file_error("Файл DOCX повреждён.", "docx.broken") from None
    paragraphs = list(_paragraphs(document))
    problems = [p for n, par in enumerate(paragraphs, 1) for p in _tag_problems(n, par)]
    if problems:
        return problems
    source = "\n".join(_DOCXTPL_MARK.sub(r"{\1", par.text) for par in paragraphs)
    # own keys: the catalogs' texts say "paragraph", not "line"
    return [{**p, "key": p["key"].replace("template.", "template.docx_", 1)}
            for p in templating.check(source, unit="абзац")]


def ensure_valid(blob: bytes) -> None:
    templating.raise_problems(check(blob), field="file")


def environment() -> SandboxedEnvironment:
    """The sandbox docxtpl renders in: values escaped for XML, nothing but the data."""
    env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    env.globals.clear()
    env.filters["money"] = money_ru
    env.filters.pop("nl2br", None)
    return env


def _render_error(message: str, key: str, name: str | None = None) -> ValidationError:
    return ValidationError(message, field="body", key=key,
                           params={"line": None, "placeholder": name})


def render_docx(blob: bytes, data: Mapping[str, Any]) -> bytes:
    from docxtpl import DocxTemplate

    template = DocxTemplate(io.BytesIO(bytes(blob)))
    try:
        template.render(templating.plain(data), jinja_env=environment(), autoescape=True)
    except UndefinedError as exc:
        quoted = re.findall(r"'([^']*)'", str(exc.message or ""))
        name = quoted[-1] if quoted else None
        raise _render_error(f"нет данных для «{name or exc.message}»", "template.docx_undefined",
                            name) from None
    except SecurityError as exc:
        raise _render_error(f"запрещённое действие в шаблоне: {exc}",
                            "template.docx_forbidden") from None
    except Exception as exc:  # a syntax error in a header, a filter given a wrong value...
        raise _render_error(f"шаблон не удалось заполнить: {exc}", "template.docx_render") from None
    out = io.BytesIO()
    template.save(out)
    return out.getvalue()


def soffice() -> str | None:
    """LibreOffice's command, if it is installed (``SOFFICE`` may name it)."""
    return shutil.which(os.environ.get("SOFFICE") or "soffice")


def to_pdf(docx: bytes, timeout: float = PDF_TIMEOUT) -> bytes | None:
    """The DOCX as PDF through LibreOffice, or None where it is not installed.  A
    conversion that fails or takes longer than ``timeout`` is an error, not a DOCX-only
    document: the administrator must know the PDF is missing."""
    command = soffice()
    if command is None:
        return None
    with tempfile.TemporaryDirectory(prefix="crm-docx-") as work:
        source = os.path.join(work, "document.docx")
        with open(source, "wb") as fh:
            fh.write(docx)
        # its own profile: parallel conversions don't fight over one user directory
        profile = f"-env:UserInstallation=file://{work}/profile"
        try:
            subprocess.run([command, profile, "--headless", "--convert-to", "pdf",
                            "--outdir", work, source], check=True, timeout=timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(os.path.join(work, "document.pdf"), "rb") as fh:
                return fh.read()
        except subprocess.TimeoutExpired:
            raise ValidationError("LibreOffice не успел сделать PDF.", field="template_id",
                                  key="docx.pdf_timeout",
                                  params={"seconds": int(timeout)}) from None
        except (subprocess.CalledProcessError, OSError):
            raise ValidationError("LibreOffice не смог сделать PDF.", field="template_id",
                                  key="docx.pdf_failed") from None


def text_preview(docx: bytes) -> str:
    """The document's text as escaped HTML paragraphs: the page shows it in place of the
    PDF view (the DOCX itself is the document)."""
    from docx import Document as Docx
    from markupsafe import escape

    document = Docx(io.BytesIO(docx))
    return "\n".join(f"<p>{escape(par.text)}</p>" for par in _paragraphs(document)
                     if par.text.strip())


def text(blob: bytes) -> str:
    """A DOCX template's text, one line per paragraph: what its checker's lines count."""
    from docx import Document as Docx

    return "\n".join(par.text for par in _paragraphs(Docx(io.BytesIO(bytes(blob)))))


def decode(value: Any) -> bytes:
    """The upload as it comes over RPC (base64)."""
    import base64
    import binascii

    if not isinstance(value, str) or not value:
        raise _file_error("Файл шаблона не загружен.", "docx.required")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _file_error("Это не файл DOCX.", "docx.not_docx") from None
