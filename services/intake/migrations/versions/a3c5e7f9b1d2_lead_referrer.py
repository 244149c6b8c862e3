"""The page that led to a lead's page (the deal's source detail)

Revision ID: a3c5e7f9b1d2
Revises: 6257769f3ad5
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'a3c5e7f9b1d2'
down_revision = '6257769f3ad5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('leads', sa.Column('referrer', sa.String(length=2000), server_default='',
                                     nullable=False))


def downgrade() -> None:
    op.drop_column('leads', 'referrer')
