"""The message keys the code raises, for ``pybabel extract`` and the catalog test.

A key is the ``key=`` of a ``ValidationError(...)`` call (any module), so extracting needs
no marker function around it.  Registered in ``babel.cfg`` as an extraction method."""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


def keys_in_source(source: str) -> Iterator[tuple[int, str]]:
    """``(line, key)`` of every literal ``key=`` given to a ``ValidationError`` (and the
    key of a ``StatementError.at``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "at" and isinstance(func, ast.Attribute) and \
                getattr(func.value, "id", "") == "StatementError":
            # a statement parser's error: StatementError.at(location, reason, key, ...)
            if len(node.args) > 2 and isinstance(node.args[2], ast.Constant) and \
                    isinstance(node.args[2].value, str):
                yield node.lineno, node.args[2].value
            continue
        if not name.endswith("ValidationError"):
            continue
        for keyword in node.keywords:
            if keyword.arg == "key" and isinstance(keyword.value, ast.Constant) and \
                    isinstance(keyword.value.value, str):
                yield node.lineno, keyword.value.value


def extract_keys(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                 options: Any) -> Iterator[tuple[int, None, str, list[str]]]:
    """Babel extraction method (``[gateway.catalog_keys:extract_keys: **.py]``)."""
    for line, key in keys_in_source(fileobj.read().decode("utf-8")):
        yield line, None, key, []


def keys_in_tree(root: Path = ROOT) -> dict[str, str]:
    """Every key raised in ``services/`` and ``gateway/`` → where it is first raised."""
    found: dict[str, str] = {}
    for folder in ("services", "gateway"):
        for path in sorted((root / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for line, key in keys_in_source(path.read_text(encoding="utf-8")):
                found.setdefault(key, f"{path.relative_to(root)}:{line}")
    return found
