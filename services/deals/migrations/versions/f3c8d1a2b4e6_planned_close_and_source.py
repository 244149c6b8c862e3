"""a deal's planned close date and where it came from (source, UTM detail)

Revision ID: f3c8d1a2b4e6
Revises: e4b7c2a91d05
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'f3c8d1a2b4e6'
down_revision = 'e4b7c2a91d05'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deals', sa.Column('planned_close_on', sa.Date(), nullable=True))
    # a constant default: PostgreSQL adds the column without rewriting the table
    op.add_column('deals', sa.Column('source', sa.String(length=20), nullable=False,
                                     server_default='manual'))
    op.add_column('deals', sa.Column('source_detail', postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column('deals', 'source_detail')
    op.drop_column('deals', 'source')
    op.drop_column('deals', 'planned_close_on')
