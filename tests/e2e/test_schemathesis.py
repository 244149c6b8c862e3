"""The whole /api/v1 against its own OpenAPI document: schemathesis generates valid and
invalid requests for every operation and runs every check (server errors, statuses,
content types, response schemas and headers, negative data refused, ...) on its own stack.

Bounded (examples per operation, one seed) so it stays within a few minutes on two cores;
``SCHEMATHESIS_EXAMPLES`` raises the bound for a deeper run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))


def failures(ndjson: Path) -> list[str]:
    """One line per failed check (operation, check, status) from the run's event log."""
    found: list[str] = []
    for line in ndjson.read_text(encoding="utf-8").splitlines():
        text = line.lower()
        if '"failure' in text or "servererror" in text:
            found.append(line[:600])
    return found


def test_every_operation_conforms_to_the_document_with_every_check(stack: Stack,
                                                                   tmp_path: Path):
    token = stack.token("admin")
    report = tmp_path / "report"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
        "run", f"{stack.url}/api/v1/openapi.json",
        "--url", stack.url,
        "--checks", "all",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(EXAMPLES), "--seed", "2026", "--workers", "2",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "20", "--no-shrink",
        "--suppress-health-check", "all",
        "--report", "junit,ndjson", "--report-dir", str(report),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
    output = run.stdout + run.stderr
    print(output[-6000:])  # the summary: operations, checks passed/failed, time
    assert run.returncode == 0, output[-20000:]
    assert "server error" not in output.lower()
    events = next(report.glob("*.ndjson"), None)
    assert events is not None
    assert not failures(events), "\n".join(failures(events))
    summary = [json.loads(line) for line in events.read_text().splitlines()[-1:]]
    assert summary
