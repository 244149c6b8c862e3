"""groups of companies (holdings) and relations between clients

Revision ID: d3a8e5f17b42
Revises: 237bf76a3526
"""
import sqlalchemy as sa
from alembic import op

revision = 'd3a8e5f17b42'
down_revision = '237bf76a3526'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'client_groups',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.String(length=300), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_client_groups')),
        sa.UniqueConstraint('name', name=op.f('uq_client_groups_name')),
    )
    op.add_column('clients', sa.Column('client_group_id', sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f('fk_clients_client_group_id_client_groups'), 'clients',
                          'client_groups', ['client_group_id'], ['id'], ondelete='SET NULL')
    op.create_index(op.f('ix_clients_client_group_id'), 'clients', ['client_group_id'])
    op.create_table(
        'client_relations',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('client_id', sa.BigInteger(), nullable=False),
        sa.Column('related_id', sa.BigInteger(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ondelete='CASCADE',
                                name=op.f('fk_client_relations_client_id_clients')),
        sa.ForeignKeyConstraint(['related_id'], ['clients.id'], ondelete='CASCADE',
                                name=op.f('fk_client_relations_related_id_clients')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_client_relations')),
        sa.UniqueConstraint('client_id', 'related_id', 'kind',
                            name=op.f('uq_client_relations_client_id')),
    )
    op.create_index(op.f('ix_client_relations_client_id'), 'client_relations', ['client_id'])
    op.create_index(op.f('ix_client_relations_related_id'), 'client_relations', ['related_id'])


def downgrade() -> None:
    op.drop_table('client_relations')
    op.drop_index(op.f('ix_clients_client_group_id'), table_name='clients')
    op.drop_constraint(op.f('fk_clients_client_group_id_client_groups'), 'clients',
                       type_='foreignkey')
    op.drop_column('clients', 'client_group_id')
    op.drop_table('client_groups')
