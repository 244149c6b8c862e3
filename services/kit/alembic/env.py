"""Shared alembic environment: each component keeps only its own versions folder."""
from services.kit.migrate import run_env

run_env()
