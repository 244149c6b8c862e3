"""Every ValidationError raised in the services listed here names a catalog key, so the
gateway can say what is wrong in the user's language (docs/DEVELOPING.md, "How to raise an
error").  Services join the list once all their errors carry keys."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYED = ("deals",)
RAISED = {"ValidationError", "MoveRefused"}


def unkeyed(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else "")
            if name in RAISED and not any(k.arg == "key" for k in node.keywords) \
                    and not any(isinstance(a, ast.Dict) for a in node.args):
                lines.append(node.lineno)
    return lines


def test_the_check_sees_a_call_without_a_key(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text('raise ValidationError("name: bad", field="name")\n'
                      'raise ValidationError("ok", "name", key="name.bad")\n')
    assert unkeyed(sample) == [1]


@pytest.mark.parametrize("service", KEYED)
def test_every_validation_error_names_a_key(service: str) -> None:
    found = {str(p.relative_to(ROOT)): unkeyed(p)
             for p in sorted((ROOT / "services" / service).rglob("*.py"))
             if "migrations" not in p.parts}
    assert not {p: lines for p, lines in found.items() if lines}
