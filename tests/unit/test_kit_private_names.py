"""The kit's private names (a leading underscore) are its own: a service or the gateway
that imports one depends on a detail the kit may change without notice; what they need
belongs in the kit's public surface (services/kit/README.md)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / "services" / "kit"


def private_kit_uses(path: Path) -> list[str]:
    """``from services.kit.x import _y``, ``services.kit._x`` modules, and ``x._y`` where
    ``x`` is a kit module imported by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found, kit_aliases = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("services.kit"):
            module = node.module or ""
            if any(part.startswith("_") and part != "__init__" for part in module.split(".")):
                found.append(f"{node.lineno}: {module}")
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{node.lineno}: {module}.{alias.name}")
                elif module == "services.kit":
                    kit_aliases.add(alias.asname or alias.name)  # a kit module by name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("services.kit"):
                    if any(p.startswith("_") for p in alias.name.split(".")):
                        found.append(f"{node.lineno}: {alias.name}")
                    if alias.asname:
                        kit_aliases.add(alias.asname)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in kit_aliases):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_outside_the_kit_uses_a_private_kit_name():
    offenders = {}
    for top in ("services", "gateway"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if KIT in path.parents:
                continue
            found = private_kit_uses(path)
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_check_sees_each_form_of_a_private_use(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from services.kit.entrypoints import _apply_once, rpc\n"
        "from services.kit import clock, entrypoints\n"
        "import services.kit.batch as batch\n"
        "clock.now()\n"
        "entrypoints._work(None)\n"
        "batch._parsed([])\n", encoding="utf-8")
    assert private_kit_uses(sample) == [
        "1: services.kit.entrypoints._apply_once", "5: entrypoints._work", "6: batch._parsed"]
