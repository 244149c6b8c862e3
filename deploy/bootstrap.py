"""Prepare the databases: create each component's database if missing and migrate it.

Run before the services start (`make run`, the Procfile, docker-compose's `migrate` job).
Safe to run again: existing data stays.
"""
from __future__ import annotations

import sys

from services.kit.config import COMPONENTS, load_component_config
from services.kit.migrate import ensure_database, upgrade


def bootstrap(components: tuple[str, ...] = COMPONENTS) -> None:
    for component in components:
        url = load_component_config(component)["DB_URL"]
        created = ensure_database(url)
        upgrade(component, url)
        print(f"{component}: database {'created and ' if created else ''}migrated", flush=True)


if __name__ == "__main__":
    bootstrap(tuple(sys.argv[1:]) or COMPONENTS)
