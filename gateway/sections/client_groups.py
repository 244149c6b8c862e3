"""Groups of companies (holdings) and relations between clients on the client pages: the
group a client is in, its parents, subsidiaries (divisions) and partners with links, and
the client list's group filter.  The rules and the records are the clients service's."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from gateway.auth import section
from gateway.i18n import extend
from gateway.remote import remote
from gateway.sections.clients import back
from services.kit.errors import CrmError

bp = Blueprint("client_groups", __name__)

extend({
    "ru": {"grp.title": "Группа компаний и связи", "grp.group": "Группа компаний",
           "grp.none": "не в группе", "grp.new": "новая группа", "grp.set": "Сохранить",
           "grp.members": "Все компании группы", "grp.relations": "Связи",
           "grp.kind.parent": "головная компания",
           "grp.kind.subsidiary": "дочерняя / подразделение",
           "grp.kind.partner": "партнёр", "grp.add": "Добавить связь",
           "grp.remove": "Убрать", "grp.client": "Клиент", "grp.no_relations": "Связей нет",
           "grp.any": "любая"},
    "en": {"grp.title": "Group of companies and relations", "grp.group": "Group of companies",
           "grp.none": "no group", "grp.new": "new group", "grp.set": "Save",
           "grp.members": "Every company of the group", "grp.relations": "Relations",
           "grp.kind.parent": "parent company", "grp.kind.subsidiary": "subsidiary / division",
           "grp.kind.partner": "partner", "grp.add": "Add a relation",
           "grp.remove": "Remove", "grp.client": "Client", "grp.no_relations": "No relations",
           "grp.any": "any"},
})


@bp.route("/clients/<int:client_id>/group", methods=["POST"])
@section("clients")
def set_group(client_id: int) -> Any:
    """The client's group: one of the list, a new one by name, or none."""
    try:
        group_id: Any = request.form.get("client_group_id") or None
        new_name = (request.form.get("new_group") or "").strip()
        if new_name:
            group_id = remote("clients", "save_client_group", {"name": new_name},
                              user_id=g.user.id)["id"]
        remote("clients", "set_client_group", client_id, group_id, user_id=g.user.id)
    except CrmError as exc:
        return back("clients.page", exc, client_id=client_id)
    return back("clients.page", client_id=client_id, _anchor="panel-groups")


@bp.route("/clients/<int:client_id>/relations", methods=["POST"])
@section("clients")
def add_relation(client_id: int) -> Any:
    try:
        remote("clients", "add_client_relation", client_id, request.form.get("related_id"),
               request.form.get("kind"), user_id=g.user.id)
    except CrmError as exc:
        return back("clients.page", exc, client_id=client_id)
    return back("clients.page", client_id=client_id, _anchor="panel-groups")


@bp.route("/clients/<int:client_id>/relations/<int:relation_id>/delete", methods=["POST"])
@section("clients")
def remove_relation(client_id: int, relation_id: int) -> Any:
    try:
        remote("clients", "remove_client_relation", client_id, relation_id, user_id=g.user.id)
    except CrmError as exc:
        return back("clients.page", exc, client_id=client_id)
    return back("clients.page", client_id=client_id, _anchor="panel-groups")
