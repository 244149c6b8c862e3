"""a win probability set by hand on a deal

Revision ID: e4a9b2c7d1f3
Revises: e4b7c2a91f35
Create Date: 2026-12-02 03:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'e4a9b2c7d1f3'
down_revision = 'e4b7c2a91f35'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deals', sa.Column('probability', sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column('deals', 'probability')
