"""Databases and alembic migrations, one history per service (and one for the gateway)."""
from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def package(component: str) -> str:
    return "gateway" if component == "gateway" else f"services.{component}"


def versions_dir(component: str) -> Path:
    """``clients`` -> services/clients/migrations/versions; ``gateway`` -> gateway/..."""
    return ROOT.joinpath(*package(component).split("."), "migrations", "versions")


def alembic_config(component: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "alembic"))
    cfg.set_main_option("version_locations", str(versions_dir(component)))
    cfg.attributes["url"] = url
    cfg.attributes["component"] = component
    return cfg


def ensure_database(url: str) -> bool:
    """Create the database if missing; True if it was created."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).first()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
            return True
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def upgrade(component: str, url: str) -> None:
    command.upgrade(alembic_config(component, url), "head")


def run_env() -> None:
    """Body of the shared env.py: online migrations of one component's models."""
    from alembic import context

    component = context.config.attributes["component"]
    metadata = importlib.import_module(f"{package(component)}.models").metadata
    engine = create_engine(context.config.attributes["url"])
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def revision(component: str, url: str, message: str) -> None:
    """Autogenerate a revision from the models' difference to an up-to-date database."""
    ensure_database(url)
    upgrade(component, url)
    command.revision(alembic_config(component, url), message=message, autogenerate=True)
