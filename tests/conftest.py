"""Fixtures shared by the end-to-end and browser tiers (instantiated only when asked for)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    running = Stack()
    try:
        yield running.up()
    finally:
        running.down()
