"""the client dimension (kind and group, each kept newest) and the deal's planned close date

``client_group_members`` becomes the analytics copy of each client: its kind
(clients.client_created / client_updated) beside its group, each field with the version
and time of the event that set it, so a late older event changes neither.
``deal_facts.planned_close_on`` (deals.deal_created / deal_updated) dates the weighted
pipeline; ``planned_version`` is the deal's version that set it.

Revision ID: d2a7c4e9f1b3
Revises: c5f1a2b3d4e6
"""
import sqlalchemy as sa
from alembic import op

revision = 'd2a7c4e9f1b3'
down_revision = 'c5f1a2b3d4e6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('client_group_members', sa.Column('group_at', sa.DateTime(timezone=True),
                                                    nullable=True))
    op.add_column('client_group_members', sa.Column('kind', sa.String(20), nullable=True))
    op.add_column('client_group_members', sa.Column('kind_version', sa.Integer(),
                                                    nullable=False, server_default='0'))
    op.add_column('client_group_members', sa.Column('kind_at', sa.DateTime(timezone=True),
                                                    nullable=True))
    op.add_column('deal_facts', sa.Column('planned_close_on', sa.Date(), nullable=True))
    op.add_column('deal_facts', sa.Column('planned_version', sa.Integer(), nullable=False,
                                          server_default='0'))


def downgrade() -> None:
    op.drop_column('deal_facts', 'planned_version')
    op.drop_column('deal_facts', 'planned_close_on')
    for column in ('kind_at', 'kind_version', 'kind', 'group_at'):
        op.drop_column('client_group_members', column)
