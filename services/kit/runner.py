"""Start one service: ``python -m services.kit.runner clients``.

Our own runner rather than nameko's CLI: it sets psycopg's cooperative wait function
before anything imports psycopg, monkey-patches, reads ``deploy/config/<name>.yaml`` and
stops cleanly on SIGTERM/SIGINT.
"""
from __future__ import annotations

import os
import sys
import warnings

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
# eventlet announces its maintenance mode on import; the notice would open every service
# log.  (docs/ARCHITECTURE.md: we keep our code off eventlet and nameko internals so a move to
# another runtime stays possible.)
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet

eventlet.monkey_patch()

import importlib
import logging
import signal
from typing import Any

from nameko.runners import ServiceRunner

from services.kit.config import SERVICES, load_component_config


def service_class(name: str) -> Any:
    module = importlib.import_module(f"services.{name}.service")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == name:
            return value
    raise LookupError(f"services.{name}.service defines no class with name = {name!r}")


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("nameko", "kombu", "amqp", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in SERVICES:
        print(f"usage: python -m services.kit.runner {{{'|'.join(SERVICES)}}}", file=sys.stderr)
        return 2
    name = argv[1]
    config = load_component_config(name)
    configure_logging(str(config.get("LOG_LEVEL", "INFO")))
    runner = ServiceRunner(config)
    runner.add_service(service_class(name))

    def shutdown(*_: Any) -> None:
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.start()
    logging.getLogger("crm").info("service %s started", name)
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
