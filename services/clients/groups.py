"""Groups of companies (holdings) and relations between clients: the entrypoints.  The
rules are in domain/groups.py, the queries in store.py."""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from services.clients import models, store
from services.clients.domain import groups
from services.clients.schemas import client_dict
from services.kit.dependencies import Work
from services.kit.entrypoints import rpc
from services.kit.errors import NotFound, ValidationError
from services.kit.parse import identifier


class GroupsEntrypoints:
    db: Work
    may: Any

    @rpc
    def list_client_groups(self) -> list[dict[str, Any]]:
        """Every group with the number of its live clients, by name."""
        counts = store.group_sizes(self.db)
        return [{"id": grp.id, "name": grp.name, "clients": counts.get(grp.id, 0)}
                for grp in store.all_groups(self.db)]

    @rpc
    def save_client_group(self, data: dict[str, Any], user_id: int | None = None
                          ) -> dict[str, Any]:
        """Create (no ``id``) or rename a group; names are unique."""
        if not isinstance(data, dict):
            raise ValidationError("Ожидается объект.", "group", key="object.invalid")
        name = groups.group_name(data.get("name"))
        group_id = identifier(data.get("id"), "id", required=False)
        taken = store.group_named(self.db, name)
        if taken is not None and taken != group_id:
            raise ValidationError("Группа с таким названием уже есть.", "name",
                                  key="client_group.name_taken", params={"name": name})
        if group_id is None:
            grp = models.ClientGroup(name=name, created_by=user_id)
            self.db.add(grp)
        else:
            found = self.db.get(models.ClientGroup, group_id)
            if found is None:
                raise NotFound("client group not found", entity="client_group", id=group_id)
            grp = found
            grp.name = name
        self.db.flush()
        return {"id": grp.id, "name": grp.name}

    @rpc
    def set_client_group(self, client_id: int, group_id: int | None,
                         user_id: int | None = None) -> dict[str, Any]:
        """Put a client into a group (None: out of any); history and a
        ``client_group_changed`` event when it moves."""
        client = store.find_client(self.db, client_id, lock=True)
        self.may.check("clients", [client.manager_id], f"client {client.id}")
        new = identifier(group_id, "client_group_id", required=False)
        if new is not None and self.db.get(models.ClientGroup, new) is None:
            raise ValidationError("Нет такой группы компаний.", "client_group_id",
                                  key="client_group.unknown", params={"id": new})
        old = client.client_group_id
        if old != new:
            client.client_group_id = new
            client.version += 1
            client.updated_by = user_id
            store.write_history(self.db, client.id, [(
                "client_group_id", None if old is None else str(old),
                None if new is None else str(new))], user_id, "ui")
            self.db.emit("client_group_changed", {
                "client_id": client.id, "client_group_id": new, "previous_group_id": old,
                "version": client.version, "user_id": user_id})
        self.db.flush()
        return client_dict(client, with_contacts=False)

    @rpc
    def add_client_relation(self, client_id: int, related_id: int, kind: str,
                            user_id: int | None = None) -> list[dict[str, Any]]:
        """``related_id`` is the ``kind`` (parent / subsidiary / partner) of ``client_id``;
        the client's relations after it.  The same relation twice is one; a parent loop
        is refused."""
        link = groups.relation(client_id, related_id, kind)
        me = store.find_client(self.db, client_id, lock=True)
        self.may.check("clients", [me.manager_id], f"client {me.id}")
        store.find_client(self.db, related_id)
        if link.kind == "parent" and groups.would_cycle(link, store.parents(self.db)):
            raise ValidationError("Такая связь замкнёт круг родителей.", "related_id",
                                  key="relation.cycle")
        self.db.execute(insert(models.ClientRelation).values(
            client_id=link.client_id, related_id=link.related_id, kind=link.kind,
            created_by=user_id).on_conflict_do_nothing())
        return self.client_relations(me.id)

    @rpc
    def remove_client_relation(self, client_id: int, relation_id: int,
                               user_id: int | None = None) -> list[dict[str, Any]]:
        me = store.find_client(self.db, client_id, lock=True)
        self.may.check("clients", [me.manager_id], f"client {me.id}")
        store.remove_relation(self.db, me.id, identifier(relation_id, "relation_id"))
        return self.client_relations(me.id)

    @rpc
    def client_relations(self, client_id: int) -> list[dict[str, Any]]:
        """The client's parents, subsidiaries (divisions) and partners, each {`id` (the
        relation), `client_id`, `name`, `kind`}, and the group's other members are asked
        with ``search_clients`` filtered by ``group_id``."""
        cid = identifier(client_id, "client_id")
        shown = groups.view(cid, store.relations_of(self.db, cid))
        names = store.names(self.db, [r["client_id"] for r in shown])
        return [{**r, "name": names.get(r["client_id"], "")} for r in shown]
