"""The gateway depends on the services only through their RPC methods and the kit
(services.kit, with services.kit.contract for the names and limits both sides share):
never on a service's own modules, so a service can change inside without breaking it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def service_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``services.*`` module other than the kit."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] if node.module != "services" else [
                f"services.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "services" and (len(parts) < 2 or parts[1] != "kit"):
                found.append((node.lineno, name))
    return found


def test_the_check_sees_every_form_of_import() -> None:
    sample = ("from services.clients.domain.listing import X\nimport services.deals.domain\n"
              "from services import payments\nfrom services.kit.contract.clients import Y\n"
              "def f():\n    from services.documents import templating\n")
    assert [line for line, _ in service_imports(sample)] == [1, 2, 3, 6]


def test_the_gateway_imports_no_service_module_but_the_kit() -> None:
    offenders = {str(p.relative_to(ROOT)): found
                 for p in sorted((ROOT / "gateway").rglob("*.py"))
                 if (found := service_imports(p.read_text(encoding="utf-8")))}
    assert not offenders
