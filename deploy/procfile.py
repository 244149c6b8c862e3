"""The Procfile is the one list of processes: `make run`, the tests and docker-compose's
check all read it."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def processes(path: Path = ROOT / "Procfile") -> dict[str, str]:
    result: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            result[name.strip()] = command.strip()
    return result
