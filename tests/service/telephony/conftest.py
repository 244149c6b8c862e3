"""Telephony on a real broker and database, with the PBX played by local stand-ins and
clients/deals by small fake services answering the two matching questions."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.kit.entrypoints import rpc
from services.telephony.domain import to_e164
from services.telephony.service import TelephonyService
from tests.support.pbx_standins import RecordingServer

MANGO_KEY, MANGO_SALT = "vpbx400123456", "s4lt-9f8e7d"
ZADARMA_KEY, ZADARMA_SECRET = "zd-key-1", "a1b2c3d4e5f6"


@dataclass
class Directory:
    """What the fake clients and deals services know."""

    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    deals: dict[int, list[int]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def add(self, phone: str, contact_id: int, client_id: int, deal_ids: list[int] = (),
            name: str = "Пётр Сидоров") -> None:
        e164 = to_e164(phone)
        assert e164 is not None
        self.contacts[e164] = {"id": contact_id, "client_id": client_id, "name": name,
                               "phones": [e164]}
        self.deals[contact_id] = list(deal_ids)


DIRECTORY = Directory()


class FakeClients:
    name = "clients"

    @rpc
    def find_contact_by_phone(self, phone: str) -> dict[str, Any] | None:
        DIRECTORY.asked.append(phone)
        return DIRECTORY.contacts.get(to_e164(phone) or "")


class FakeDeals:
    name = "deals"

    @rpc
    def open_deals_for_contact(self, contact_id: int) -> list[int]:
        return DIRECTORY.deals.get(int(contact_id), [])


@pytest.fixture
def directory() -> Iterator[Directory]:
    DIRECTORY.contacts.clear()
    DIRECTORY.deals.clear()
    DIRECTORY.asked.clear()
    yield DIRECTORY


@pytest.fixture
def pbx_files() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        server.mango_credentials = (MANGO_KEY, MANGO_SALT)
        server.zadarma_key = ZADARMA_KEY
        yield server


@pytest.fixture
def telephony(start_service: Callable[..., Any], tmp_path: Path,
              pbx_files: RecordingServer) -> Callable[..., Any]:
    """Start telephony (and, unless told otherwise, the fake clients and deals)."""

    def start(with_directory: bool = True, **overrides: Any) -> Any:
        if with_directory:
            start_service(FakeClients)
            start_service(FakeDeals)
        config = {"RECORDINGS_DIR": str(tmp_path / "recordings"),
                  "RECORDING_POLL_SECONDS": 0.5, "RECORDING_RETRY_SECONDS": 0.05,
                  "RECORDING_MAX_ATTEMPTS": 3, "ATTRIBUTION_RETRY_SECONDS": 0.3,
                  "AMI_RECORDINGS_URL": pbx_files.url("/monitor"),
                  "MANGO_API_KEY": MANGO_KEY, "MANGO_API_SALT": MANGO_SALT,
                  "MANGO_API_URL": pbx_files.url(""),
                  "ZADARMA_KEY": ZADARMA_KEY, "ZADARMA_SECRET": ZADARMA_SECRET,
                  "ZADARMA_API_URL": pbx_files.url(""), "ZADARMA_TIMEZONE": "Europe/Moscow",
                  "RECORDING_ALLOWED_HOSTS": "127.0.0.1",
                  "AMI_RECONNECT_SECONDS": 0.05, "AMI_LEASE_RETRY_SECONDS": 0.2,
                  **overrides}
        return start_service(TelephonyService, **config)

    return start
