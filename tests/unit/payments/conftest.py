"""Where the statement files are, and a one-call reader for tests."""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from services.payments.feeds import StatementInfo, Transaction, parse_statement

REPO_ROOT = Path(__file__).resolve().parents[3]
# Real bank statements live next to the repository (../shared), not inside it: they are
# third-party files kept byte for byte.  The CI clone is a sibling folder as well.
SHARED_FEEDS = REPO_ROOT.parent / "shared" / "data" / "feeds"
OWN_FEEDS = REPO_ROOT / "tests" / "fixtures" / "feeds"

Parsed = tuple[list[Transaction], list[StatementInfo]]


def split(records: list[Transaction | StatementInfo]) -> Parsed:
    return ([r for r in records if isinstance(r, Transaction)],
            [r for r in records if isinstance(r, StatementInfo)])


def read(path: Path) -> Parsed:
    with path.open("rb") as stream:
        return split(list(parse_statement(stream, path.name)))


@pytest.fixture
def shared_feeds() -> Path:
    if not SHARED_FEEDS.is_dir():
        pytest.skip("../shared/data/feeds is absent: real bank statements are only in "
                    "CI/dev checkouts")
    return SHARED_FEEDS


@pytest.fixture
def own_feeds() -> Path:
    return OWN_FEEDS


@pytest.fixture
def parse_file() -> Callable[[Path], Parsed]:
    return read


@pytest.fixture
def parse_bytes() -> Callable[[bytes], Parsed]:
    return lambda data: split(list(parse_statement(io.BytesIO(data), "test")))
