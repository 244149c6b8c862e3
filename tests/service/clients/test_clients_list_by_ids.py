"""The client list sliced by ids another context chose (the RFM segment the gateway asked
analytics for), combined with the other filters and paged as usual."""
from __future__ import annotations

import pytest

from services.kit.errors import ValidationError

from .conftest import ClientsEnv, inn10


def test_only_the_clients_named_by_id_are_listed(clients: ClientsEnv, manager: int):
    made = [clients.call("create_client", {"name": f"ООО «Сегмент {i}»", "inn": inn10(),
                                           "kind": "legal"}, user_id=manager)
            for i in range(4)]
    wanted = [made[1]["id"], made[3]["id"], 10**12]  # an unknown id finds nothing
    found = clients.call("search_clients", "", filters={"manager_id": manager,
                                                        "ids": wanted})
    assert [c["id"] for c in found["items"]] == [made[1]["id"], made[3]["id"]]
    assert found["total"] == 2
    none = clients.call("search_clients", "", filters={"manager_id": manager, "ids": []})
    assert none["total"] == 0 and none["items"] == []
    with pytest.raises(ValidationError) as bad:
        clients.call("search_clients", "", filters={"ids": ["x"]})
    assert bad.value.field == "ids"
