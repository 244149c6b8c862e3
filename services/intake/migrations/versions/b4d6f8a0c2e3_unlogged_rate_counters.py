"""Rate counters unlogged: a hit's commit waits for no disk

Revision ID: b4d6f8a0c2e3
Revises: a3c5e7f9b1d2
Create Date: 2026-12-02 06:25:00
"""
from alembic import op

revision = 'b4d6f8a0c2e3'
down_revision = 'a3c5e7f9b1d2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rate_counters SET UNLOGGED")


def downgrade() -> None:
    op.execute("ALTER TABLE rate_counters SET LOGGED")
