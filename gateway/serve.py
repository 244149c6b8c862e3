"""Serve the gateway with gunicorn (threads: each request waits on RPC replies, not CPU).

``HOST`` (default 127.0.0.1), ``PORT`` (8000), ``WEB_WORKERS`` (2) and ``WEB_THREADS`` (16)
come from the environment, so the same command runs locally and in a container."""
from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication


class GatewayServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gateway.app import create_app

        return create_app()


def main() -> None:
    GatewayServer({
        "bind": f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}",
        "workers": int(os.environ.get("WEB_WORKERS", 2)),
        "worker_class": "gthread",
        "threads": int(os.environ.get("WEB_THREADS", 16)),
        "accesslog": "-",
        "logger_class": "gateway.redact.RedactingLogger",
        "timeout": 60,
        "graceful_timeout": 10,
        # the longest line gunicorn takes, so the app (gateway.edge) refuses long URLs with
        # its own JSON 414 naming the limit
        "limit_request_line": 8190,
    }).run()


if __name__ == "__main__":
    main()
