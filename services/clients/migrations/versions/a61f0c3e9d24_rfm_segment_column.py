"""each client's RFM segment as analytics last announced it, for the list's filter; the
name index of live clients only, so a page in name order is read inside the index

Revision ID: a61f0c3e9d24
Revises: d3a8e5f17b42
"""
import sqlalchemy as sa
from alembic import op

revision = 'a61f0c3e9d24'
down_revision = 'd3a8e5f17b42'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('clients', sa.Column('rfm_segment', sa.String(length=32), nullable=True))
    op.add_column('clients', sa.Column('rfm_computed_at', sa.DateTime(timezone=True),
                                       nullable=True))
    # a segment's page in name order is read off this index, live clients only
    op.create_index('ix_clients_rfm_segment_name', 'clients',
                    ['rfm_segment', 'search_name', 'id'],
                    postgresql_where=sa.text('merged_into IS NULL AND rfm_segment IS NOT NULL'))
    op.create_index('ix_clients_live_search_name', 'clients', ['search_name', 'id'],
                    postgresql_where=sa.text('merged_into IS NULL'))
    op.drop_index('ix_clients_search_name_id', table_name='clients')


def downgrade() -> None:
    op.create_index('ix_clients_search_name_id', 'clients', ['search_name', 'id'])
    op.drop_index('ix_clients_live_search_name', table_name='clients')
    op.drop_index('ix_clients_rfm_segment_name', table_name='clients')
    op.drop_column('clients', 'rfm_computed_at')
    op.drop_column('clients', 'rfm_segment')
