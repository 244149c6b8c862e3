"""Nothing outside the kit reads the machine's clock or date directly: every "now" and
"today" goes through services.kit.clock (now(), business_today(config)), so a date means
the business's day in every service and page."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (object, method) pairs that read the machine's clock or local date
BARE = {("date", "today"), ("datetime", "now"), ("datetime", "utcnow"),
        ("datetime", "today"), ("time", "localtime")}


def bare_clock_calls(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else (
                owner.attr if isinstance(owner, ast.Attribute) else None)
            if (name, node.func.attr) in BARE:
                found.append((node.lineno, f"{name}.{node.func.attr}()"))
    return found


def test_the_check_sees_each_bare_call() -> None:
    sample = ("from datetime import date, datetime\nimport datetime as dt\n"
              "a = date.today()\nb = datetime.now(UTC)\nc = dt.datetime.now()\n"
              "d = clock.now()\n")
    assert [line for line, _ in bare_clock_calls(sample)] == [3, 4, 5]


def test_no_bare_clock_outside_the_kit() -> None:
    offenders = {}
    for folder in ("services", "gateway"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts or rel.parts[:2] == ("services", "kit"):
                continue
            calls = bare_clock_calls(path.read_text(encoding="utf-8"))
            if calls:
                offenders[str(rel)] = calls
    assert not offenders, f"use services.kit.clock instead: {offenders}"


def test_the_business_zone_comes_from_the_config() -> None:
    from services.kit import clock

    assert clock.business_zone({}).key == "Europe/Moscow"
    assert clock.business_zone({"TIMEZONE": ""}).key == "Europe/Moscow"
    assert clock.business_zone({"TIMEZONE": "Asia/Yekaterinburg"}).key == "Asia/Yekaterinburg"
    assert clock.now().tzinfo is not None
