"""What the imports page is told about a job's progress."""
from __future__ import annotations

from datetime import UTC, datetime

from services.payments.models import ImportJob, ImportProgress
from services.payments.schemas import job_dict


def _job(status: str) -> ImportJob:
    return ImportJob(id=1, kind="statement", filename="big.txt", size=100, status=status,
                     attempts=0)


def test_a_finished_job_is_complete_even_before_its_progress_row_says_done():
    stale = ImportProgress(job_id=1, phase="matching", done=0, total=0,
                           updated_at=datetime.now(UTC))
    progress = job_dict(_job("done"), stale)["progress"]
    assert progress["phase"] == "done" and progress["percent"] == 100


def test_a_running_job_reports_the_share_done():
    midway = ImportProgress(job_id=1, phase="matching", done=25, total=100,
                            updated_at=datetime.now(UTC))
    job = job_dict(_job("queued"), midway)
    assert job["status"] == "running" and job["progress"]["percent"] == 25
