"""The whole /api/v1 against its own OpenAPI document: schemathesis generates valid and
invalid requests for every operation and runs every check (server errors, statuses,
content types, response schemas and headers, negative data refused, ...) on its own stack.

Bounded (examples per operation, one seed) so it stays within a few minutes on two cores;
``SCHEMATHESIS_EXAMPLES`` raises the bound for a deeper run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))


def failures(junit: Path) -> list[str]:
    """One line per failed or errored operation, from the run's JUnit report."""
    root = ElementTree.parse(junit).getroot()
    return [f"{case.get('name')}: {(problem.get('message') or problem.text or '')[:300]}"
            for case in root.iter("testcase")
            for problem in (*case.findall("failure"), *case.findall("error"))]


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
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
    output = run.stdout + run.stderr
    print(output[-6000:])  # the summary: operations, checks passed/failed, time
    assert run.returncode == 0, output[-20000:]
    assert "server error" not in output.lower()
    junit = next(report.glob("junit*.xml"), None)
    assert junit is not None
    assert not failures(junit), "\n".join(failures(junit))
    tested = sum(1 for _ in ElementTree.parse(junit).getroot().iter("testcase"))
    assert tested >= 90  # every operation of the document, not a handful
