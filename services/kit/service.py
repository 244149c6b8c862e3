"""What every service class shares: the health check entrypoint."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

from services.kit.entrypoints import rpc


class HealthCheck:
    """Mixin: ``health`` answers only when the service and its database both work."""

    db: Any

    @rpc
    def health(self) -> dict[str, Any]:
        self.db.execute(text("SELECT 1"))
        return {"service": self.name, "status": "ok"}  # type: ignore[attr-defined]
