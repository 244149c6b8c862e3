"""an index on the day money was received

Manager performance reads the period's receipts (and the deals paid in the period) by
``received_on`` on every request; without an index that is a scan of every receipt.

Revision ID: e4b8d1f6a3c7
Revises: d2a7c4e9f1b3
"""
from alembic import op

revision = 'e4b8d1f6a3c7'
down_revision = 'd2a7c4e9f1b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_receipts_received_on', 'receipts', ['received_on'])


def downgrade() -> None:
    op.drop_index('ix_receipts_received_on', table_name='receipts')
