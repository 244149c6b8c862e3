"""The deal page of a deal that does not exist is a 404, not a page of empty panels."""
from __future__ import annotations

from services.deals.service import DealsService
from tests.service.gateway.conftest import api_token


def test_a_deal_that_does_not_exist_is_not_found(start_service, client, add_user):
    start_service(DealsService)
    add_user("anna")
    headers = {"Authorization": f"Bearer {api_token(client, 'anna')}"}
    for deal_id in (987654, 2**63 - 1):
        response = client.get(f"/api/v1/deals/{deal_id}", headers=headers)
        assert response.status_code == 404, (deal_id, response.status_code)
        assert response.get_json()["error"]["code"] == "not_found"
    # beyond BIGINT the edge refuses the id itself, naming it
    huge = client.get(f"/api/v1/deals/{2**63}", headers=headers)
    assert huge.status_code == 422 and huge.get_json()["error"]["field"] == "deal_id"
