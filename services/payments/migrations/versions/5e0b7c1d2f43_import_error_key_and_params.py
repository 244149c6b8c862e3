"""import error key and params

Revision ID: 5e0b7c1d2f43
Revises: 9c8c8d9d98f6
Create Date: 2026-12-02 02:55:00

A failed import keeps what is wrong as a message key with its parameters (the line, the
field, the value), so the import page says it in the reader's language.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '5e0b7c1d2f43'
down_revision = '9c8c8d9d98f6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('import_jobs', sa.Column('error_key', sa.Text(), nullable=True))
    op.add_column('import_jobs', sa.Column('error_params',
                                           postgresql.JSONB(astext_type=sa.Text()),
                                           nullable=True))


def downgrade() -> None:
    op.drop_column('import_jobs', 'error_params')
    op.drop_column('import_jobs', 'error_key')
