"""Every ValidationError the code raises carries a stable ``key`` (and its ``params``), so
the gateway can show it in the reader's language beside the field; a plain sentence would
reach the user untranslated.  Found by reading the source (AST), not by running it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("services", "gateway")
RAISED = {"ValidationError", "MoveRefused"}


def keyless_errors(source: str) -> list[int]:
    """Lines of ``ValidationError(...)`` calls without ``key=``; a call that passes
    ``**details`` or a dict as its field (an error rebuilt from the wire) is exempt."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else None
        if name not in RAISED:
            continue
        keywords = {k.arg for k in node.keywords}
        rebuilt = None in keywords or any(isinstance(a, ast.Dict) for a in node.args[1:2])
        if "key" not in keywords and not rebuilt:
            lines.append(node.lineno)
    return lines


def sources() -> list[Path]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/node_modules/" not in relative and "/migrations/" not in relative:
                found.append(path)
    return found


def test_the_scan_reads_the_code() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in sources()}
    assert "services/payments/domain/__init__.py" in names and "gateway/sections/admin.py" in names
    assert "services/deals/domain.py" in names and "services/payments/feeds/onec.py" in names


def test_every_validation_error_outside_tests_has_a_key() -> None:
    missing = [f"{p.relative_to(ROOT)}:{line}" for p in sources()
               for line in keyless_errors(p.read_text(encoding="utf-8"))]
    assert missing == [], "ValidationError without key= (add key, params and both .po texts)"


@pytest.mark.parametrize("source, found", [
    ('raise ValidationError("x", field="a")', [1]),
    ('raise ValidationError("x", field="a", key="a.b")', []),
    ('raise errors.ValidationError("x")', [1]),
    ('raise ValidationError(message, {"field": "a"})', []),
    ('raise ValidationError(message, **details)', []),
    ('x = 1\nraise ValidationError(\n    "x",\n    field="a")', [2]),
])
def test_the_scan_tells_keyed_from_keyless(source: str, found: list[int]) -> None:
    assert keyless_errors(source) == found
