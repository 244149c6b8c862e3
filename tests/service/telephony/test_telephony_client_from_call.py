"""A client from an unknown call is one write owned by telephony: when deals fails half-way
nothing is attached, and the retry finishes the same client (no orphan twin)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from services.clients.service import ClientsService
from services.kit.entrypoints import rpc
from services.kit.errors import ServiceUnavailable
from tests.service.telephony.test_telephony_calls import api_call

DEALS_FAIL = {"left": 1}
MADE: list[dict] = []


class FlakyDeals:
    name = "deals"

    @rpc
    def open_deals_for_contact(self, contact_id: int) -> list[int]:
        return []

    @rpc
    def create_deal(self, data: dict, user_id: int | None = None) -> dict:
        if DEALS_FAIL["left"]:
            DEALS_FAIL["left"] -= 1
            raise ServiceUnavailable("deals is restarting")
        MADE.append(data)
        return {"id": 500 + len(MADE), **data}


def test_a_failure_half_way_is_finished_by_the_retry_with_the_same_client(
        telephony, start_service, rpc, session_of):
    start_service(ClientsService)
    start_service(FlakyDeals)
    telephony(with_directory=False)
    call = rpc.call("telephony", "record_call", api_call("8 (926) 700-11-22", "unknown-1"))
    names = {"client_name": "Игорь", "contact_name": "Игорь", "deal_name": "Звонок"}
    with pytest.raises(ServiceUnavailable):
        rpc.call("telephony", "create_client_from_call", call["id"], names, user_id=3)
    assert rpc.call("telephony", "get_call", call["id"])["contact_id"] is None
    made = rpc.call("telephony", "create_client_from_call", call["id"], names, user_id=3)
    assert made["call"]["contact_id"] == made["contact"]["id"]
    assert made["call"]["deal_ids"] == [made["deal"]["id"]] and len(MADE) == 1
    clients = session_of("clients")
    assert clients.scalar(text("SELECT count(*) FROM clients WHERE name = 'Игорь'")) == 1
    assert made["contact"]["phones"] == ["+79267001122"]
