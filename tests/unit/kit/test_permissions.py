"""The permission matrix: every role × resource cell, for one's own record, another's and
a record nobody owns; configuration changes a cell."""
from __future__ import annotations

import pytest

from services.kit.errors import Forbidden
from services.kit.permissions import DEFAULT_MATRIX, RESOURCES, allowed, check, matrix_from

ME, OTHER = 7, 8
EXPECTED = {  # role -> resource -> (own record, someone else's)
    "manager": dict.fromkeys(RESOURCES, (True, False)),
    "head": dict.fromkeys(RESOURCES, (True, True)),
    "admin": dict.fromkeys(RESOURCES, (True, True)),
    "accountant": {"deals": (False, False), "clients": (False, False),
                   "payments": (True, True), "receipts": (True, True)},
}


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.parametrize("resource", RESOURCES)
def test_each_cell_of_the_default_matrix(role, resource):
    actor = {"id": ME, "roles": [role]}
    own, others = EXPECTED[role][resource]
    assert allowed(DEFAULT_MATRIX, actor, resource, [ME]) is own
    assert allowed(DEFAULT_MATRIX, actor, resource, [OTHER]) is others


def test_several_roles_get_the_widest_scope_and_unowned_records_are_anyones():
    assert allowed(DEFAULT_MATRIX, {"id": ME, "roles": ["accountant", "manager"]}, "deals", [ME])
    assert allowed(DEFAULT_MATRIX, {"id": ME, "roles": ["manager"]}, "clients", [None])
    assert not allowed(DEFAULT_MATRIX, {"id": ME, "roles": ["accountant"]}, "clients", [None])


def test_a_call_without_an_actor_is_another_service_and_is_not_restricted():
    assert allowed(DEFAULT_MATRIX, None, "deals", [OTHER])


def test_a_refusal_names_the_resource():
    with pytest.raises(Forbidden) as refused:
        check(DEFAULT_MATRIX, {"id": ME, "roles": ["manager"]}, "deals", [OTHER], "deal 5")
    assert refused.value.details["resource"] == "deals" and "deal 5" in refused.value.message


def test_configuration_changes_a_cell_and_refuses_an_unknown_scope():
    matrix = matrix_from({"PERMISSIONS": {"manager": {"deals": "all"}}})
    assert allowed(matrix, {"id": ME, "roles": ["manager"]}, "deals", [OTHER])
    assert not allowed(matrix, {"id": ME, "roles": ["manager"]}, "clients", [OTHER])
    with pytest.raises(ValueError):
        matrix_from({"PERMISSIONS": {"manager": {"deals": "some"}}})
