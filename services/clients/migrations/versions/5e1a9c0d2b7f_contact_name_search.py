"""contact name search index

Revision ID: 5e1a9c0d2b7f
Revises: 70c7b8b650ff
Create Date: 2026-12-01 23:30:00

The header's global search finds contacts by any part of their name: a trigram index
on lower(name), as the client names have.
"""
from alembic import op
import sqlalchemy as sa


revision = '5e1a9c0d2b7f'
down_revision = '70c7b8b650ff'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_contacts_name_trgm', 'contacts',
                    [sa.text('lower(name) gin_trgm_ops')], unique=False,
                    postgresql_using='gin')


def downgrade() -> None:
    op.drop_index('ix_contacts_name_trgm', table_name='contacts', postgresql_using='gin')
