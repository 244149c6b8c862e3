"""indexes for the deals table sorted by a column (keyset pages over (column, id))

Revision ID: f3c8d1a2b4e7
Revises: f3c8d1a2b4e6
Create Date: 2026-12-02 06:10:00
"""
from alembic import op

revision = 'f3c8d1a2b4e7'
down_revision = 'f3c8d1a2b4e6'
branch_labels = None
depends_on = None

INDEXES = (("ix_deals_sort_name", ["name", "id"]), ("ix_deals_sort_amount", ["amount", "id"]),
           ("ix_deals_sort_updated", ["updated_at", "id"]),
           ("ix_deals_sort_planned_close", ["planned_close_on", "id"]),
           ("ix_deals_sort_manager", ["manager_id", "id"]))


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, 'deals', columns)


def downgrade() -> None:
    for name, _ in INDEXES:
        op.drop_index(name, table_name='deals')
