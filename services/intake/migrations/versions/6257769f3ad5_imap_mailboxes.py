"""IMAP mailboxes and the UIDs read from them

Revision ID: 6257769f3ad5
Revises: 161f0229cf68
Create Date: 2026-12-02 02:55:00
"""
from alembic import op
import sqlalchemy as sa

revision = '6257769f3ad5'
down_revision = '161f0229cf68'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mailboxes',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=253), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=10), nullable=False),
    sa.Column('login', sa.String(length=320), nullable=False),
    sa.Column('password_enc', sa.Text(), nullable=False),
    sa.Column('folder', sa.String(length=200), server_default='INBOX', nullable=False),
    sa.Column('move_to', sa.String(length=200), nullable=True),
    sa.Column('interval_seconds', sa.Integer(), server_default='60', nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=True),
    sa.Column('next_poll_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_polled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('taken', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailboxes'))
    )
    op.create_index('ix_mailboxes_due', 'mailboxes', ['next_poll_at'], unique=False, postgresql_where=sa.text('active'))
    op.create_table('mailbox_messages',
    sa.Column('mailbox_id', sa.BigInteger(), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.String(length=998), server_default='', nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('flagged', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['mailbox_id'], ['mailboxes.id'], name=op.f('fk_mailbox_messages_mailbox_id_mailboxes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('mailbox_id', 'uidvalidity', 'uid', name=op.f('pk_mailbox_messages'))
    )


def downgrade() -> None:
    op.drop_table('mailbox_messages')
    op.drop_index('ix_mailboxes_due', table_name='mailboxes', postgresql_where=sa.text('active'))
    op.drop_table('mailboxes')
