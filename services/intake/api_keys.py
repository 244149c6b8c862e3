"""The lead API: per-source keys (shown once, stored as SHA-256, revocable) and the leads
other programs post with them (idempotent on the source's own id)."""
from __future__ import annotations

import logging
from typing import Any

from services.intake import domain, store
from services.intake.models import (
    ApiKey,
)
from services.intake.part import IntakePart
from services.intake.schemas import (
    key_dict,
    lead_dict,
)
from services.kit import clock
from services.kit.entrypoints import rpc
from services.kit.errors import (
    Forbidden,
    NotFound,
    ValidationError,
)

log = logging.getLogger("crm.intake")


class ApiKeysEntrypoints(IntakePart):
    @rpc
    def create_api_key(self, name: str, user_id: int | None = None,
                       assignee_ids: list[int] | None = None) -> dict[str, Any]:
        """A new source key; the key itself is in this answer only."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("Назовите источник ключа.", field="name", key="api_key.name")
        key = domain.new_api_key()
        row = ApiKey(name=name.strip()[:200], prefix=key[:10], digest=domain.key_digest(key),
                     assignee_ids=domain.ids(assignee_ids or [], "assignee_ids"),
                     created_by=user_id)
        self.db.add(row)
        self.db.flush()
        return {**key_dict(row), "key": key}

    @rpc
    def list_api_keys(self) -> list[dict[str, Any]]:
        return [key_dict(k) for k in store.all_of(self.db, ApiKey)]

    @rpc
    def revoke_api_key(self, key_id: int, user_id: int | None = None) -> dict[str, Any]:
        row = self.db.get(ApiKey, domain.an_id(key_id, "key_id"), with_for_update=True)
        if row is None:
            raise NotFound(f"API key {key_id} not found", entity="api_key", id=key_id)
        row.revoked_at = row.revoked_at or clock.now()
        log.info("API key %s (%s) revoked by %s", row.id, row.name, user_id)
        return key_dict(row)

    @rpc
    def submit_api_lead(self, api_key: str, data: dict[str, Any],
                        remote_addr: str | None = None) -> dict[str, Any]:
        """A lead from another program; the same ``external_id`` from the same key is the
        same lead (``created`` false)."""
        if not isinstance(api_key, str) or not api_key:
            raise Forbidden("Нужен ключ источника (заголовок X-Api-Key).", reason="no_key")
        key = store.api_key_by_digest(self.db, domain.key_digest(api_key))
        if key is None or key.revoked_at is not None:
            raise Forbidden("Ключ источника неизвестен или отозван.",
                            reason="revoked" if key else "unknown_key")
        details = domain.clean_lead(data)
        external = data.get("external_id")
        if external is not None and (not isinstance(external, str | int)
                                     or not str(external).strip()
                                     or len(str(external)) > domain.LIMITS["external_id"]):
            raise ValidationError("external_id: строка до 200 символов.", field="external_id",
                                  key="lead.external_id")
        key.last_used_at = clock.now()
        lead, created = self._make(
            "api", details, source_ref=str(key.id), source_name=key.name,
            external_id=str(external).strip() if external is not None else None,
            candidates=list(key.assignee_ids), remote_addr=remote_addr,
            **domain.clean_marketing(data))
        return {**lead_dict(lead), "created": created}
