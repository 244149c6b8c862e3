"""deal summaries: each deal's transitions summed up on its row (the funnel at scale)

Revision ID: c3f1a7e2b9d4
Revises: 9aa15f507ddc
Create Date: 2026-12-02 02:50:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'c3f1a7e2b9d4'
down_revision = '9aa15f507ddc'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('deals', sa.Column('path', postgresql.ARRAY(sa.String(length=50)),
                                     nullable=True))
    op.add_column('deals', sa.Column('seconds_codes', postgresql.ARRAY(sa.String(length=50)),
                                     nullable=True))
    op.add_column('deals', sa.Column('seconds_values', postgresql.ARRAY(sa.Double()),
                                     nullable=True))
    op.add_column('deals', sa.Column('last_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('deals', sa.Column('last_loss_reason', sa.String(length=200),
                                     nullable=True))
    # an installation that already has a read model: sum up every deal's transitions once
    from services.analytics.projection import SUMMARIZE_ALL
    op.execute(SUMMARIZE_ALL)


def downgrade() -> None:
    for name in ('last_loss_reason', 'last_at', 'seconds_values', 'seconds_codes', 'path'):
        op.drop_column('deals', name)
