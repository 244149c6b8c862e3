"""Client links carry their secret in the path (``/d/<token>``, ``/q/<token>``): it must
never reach a log line, so every logged path goes through ``redact``."""
from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_LINK = re.compile(r"(/[dq]/)[A-Za-z0-9_-]{8,}")


def redact(text: str) -> str:
    return _LINK.sub(r"\1***", text)


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's access log with link tokens masked in the request line and path."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
