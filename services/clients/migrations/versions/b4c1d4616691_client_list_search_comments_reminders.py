"""client list search, comments, reminders, imports

Revision ID: b4c1d4616691
Revises: 2753f7cd3e0a
Create Date: 2026-11-23 19:53:09.051003

pg_trgm serves substring search of names and phone fragments (Debian's PostgreSQL ships
it in the main server package).  ``search_name`` is filled from ``name`` by the same
Python function the service uses, so existing rows are found like new ones.
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from services.clients.domain.listing import search_text

revision = 'b4c1d4616691'
down_revision = '2753f7cd3e0a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('client_imports',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_imports'))
    )
    op.create_table('client_reminders',
    sa.Column('reminder_id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.BigInteger(), nullable=False),
    sa.Column('deal_id', sa.BigInteger(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('reminder_id', name=op.f('pk_client_reminders'))
    )
    op.create_index('ix_client_reminders_open', 'client_reminders', ['client_id'], unique=False, postgresql_where=sa.text('completed_at IS NULL'))
    op.create_table('client_comments',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('client_id', sa.BigInteger(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_client_comments_client_id_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_client_comments'))
    )
    op.create_index(op.f('ix_client_comments_client_id'), 'client_comments', ['client_id'], unique=False)
    op.add_column('client_history', sa.Column('contact_id', sa.BigInteger(), nullable=True))
    op.add_column('clients', sa.Column('search_name', sa.Text(), server_default='', nullable=False))
    op.add_column('clients', sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('contacts', sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('contacts', sa.Column('updated_by', sa.Integer(), nullable=True))

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, name FROM clients")).all()
    for client_id, name in rows:
        bind.execute(sa.text("UPDATE clients SET search_name = :s WHERE id = :id"),
                     {"s": search_text(name or ""), "id": client_id})

    op.drop_index(op.f('ix_clients_inn'), table_name='clients')
    op.create_index('ix_clients_inn_pattern', 'clients', ['inn'], unique=False, postgresql_ops={'inn': 'varchar_pattern_ops'})
    op.execute("CREATE INDEX ix_clients_person_phone_trgm ON clients "
               "USING gin ((requisites ->> 'phone') gin_trgm_ops)")
    op.create_index('ix_clients_search_name_id', 'clients', ['search_name', 'id'], unique=False)
    op.create_index('ix_clients_search_name_trgm', 'clients', ['search_name'], unique=False, postgresql_using='gin', postgresql_ops={'search_name': 'gin_trgm_ops'})
    op.drop_index(op.f('ix_contact_phones_e164'), table_name='contact_phones')
    op.create_index('ix_contact_phones_e164_pattern', 'contact_phones', ['e164'], unique=False, postgresql_ops={'e164': 'varchar_pattern_ops'})
    op.create_index('ix_contact_phones_e164_trgm', 'contact_phones', ['e164'], unique=False, postgresql_using='gin', postgresql_ops={'e164': 'gin_trgm_ops'})


def downgrade() -> None:
    op.drop_column('contacts', 'updated_by')
    op.drop_column('contacts', 'updated_at')
    op.drop_index('ix_contact_phones_e164_trgm', table_name='contact_phones')
    op.drop_index('ix_contact_phones_e164_pattern', table_name='contact_phones')
    op.create_index(op.f('ix_contact_phones_e164'), 'contact_phones', ['e164'], unique=False)
    op.drop_index('ix_clients_search_name_trgm', table_name='clients')
    op.drop_index('ix_clients_search_name_id', table_name='clients')
    op.drop_index('ix_clients_person_phone_trgm', table_name='clients')
    op.drop_index('ix_clients_inn_pattern', table_name='clients')
    op.create_index(op.f('ix_clients_inn'), 'clients', ['inn'], unique=False)
    op.drop_column('clients', 'last_contact_at')
    op.drop_column('clients', 'search_name')
    op.drop_column('client_history', 'contact_id')
    op.drop_index(op.f('ix_client_comments_client_id'), table_name='client_comments')
    op.drop_table('client_comments')
    op.drop_index('ix_client_reminders_open', table_name='client_reminders')
    op.drop_table('client_reminders')
    op.drop_table('client_imports')
