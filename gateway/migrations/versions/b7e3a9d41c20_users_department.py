"""users: department (the funnel's department slice)

Revision ID: b7e3a9d41c20
Revises: c090ef654df7
Create Date: 2026-12-01 23:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'b7e3a9d41c20'
down_revision = 'c090ef654df7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('department', sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column('users', 'department')
