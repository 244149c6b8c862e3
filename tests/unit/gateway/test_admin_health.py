"""The admin health page's queues: counts by status, the largest first; a service that
does not answer shows no rows (the page marks it down)."""
from __future__ import annotations

from pathlib import Path

from gateway.sections.admin import HEALTH_QUEUES, queue_rows


def test_queue_rows_put_the_largest_first_and_ties_by_name() -> None:
    assert queue_rows({"sent": 40, "failed": 2, "pending": 2}) == [
        ("sent", 40), ("failed", 2), ("pending", 2)]


def test_a_silent_service_has_no_rows() -> None:
    assert queue_rows(None) == []


def test_the_page_asks_the_rpcs_the_services_document() -> None:
    readmes = {service: Path(f"services/{service}/README.md").read_text(encoding="utf-8")
               for service, _ in HEALTH_QUEUES.values()}
    for service, method in HEALTH_QUEUES.values():
        assert f"`{method}`" in readmes[service]
