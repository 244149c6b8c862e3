"""win probability (deal facts, learnt outcomes, counts, nightly rebuild claims) and
manager performance (tasks, calls)

Revision ID: b7e3c1d2a4f5
Revises: 9aa15f507ddc
Create Date: 2026-12-02 03:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'b7e3c1d2a4f5'
down_revision = '9aa15f507ddc'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deal_facts',
    sa.Column('deal_id', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=True),
    sa.Column('client_kind', sa.String(length=20), nullable=True),
    sa.Column('client_group_id', sa.BigInteger(), nullable=True),
    sa.Column('manual_probability', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('deal_id', name=op.f('pk_deal_facts'))
    )
    op.create_table('win_outcomes',
    sa.Column('deal_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=True),
    sa.Column('won', sa.Boolean(), nullable=True),
    sa.Column('lost_at', sa.String(length=50), nullable=True),
    sa.Column('values', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('deal_id', name=op.f('pk_win_outcomes'))
    )
    op.create_table('win_counts',
    sa.Column('model', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=50), nullable=False),
    sa.Column('feature', sa.String(length=20), nullable=False),
    sa.Column('value', sa.String(length=50), nullable=False),
    sa.Column('won', sa.Integer(), nullable=False),
    sa.Column('lost', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('model', 'status', 'feature', 'value', name=op.f('pk_win_counts'))
    )
    op.create_table('probability_rebuilds',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('outcomes', sa.Integer(), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_probability_rebuilds'))
    )

    op.create_table('tasks',
    sa.Column('reminder_id', sa.BigInteger(), nullable=False),
    sa.Column('deal_id', sa.BigInteger(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('reminder_id', name=op.f('pk_tasks'))
    )
    op.create_index(op.f('ix_tasks_deal_id'), 'tasks', ['deal_id'], unique=False)
    op.create_table('calls',
    sa.Column('call_id', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deal_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('call_id', name=op.f('pk_calls'))
    )
    op.create_index('ix_calls_started', 'calls', ['started_at'], unique=False)
    op.create_index(op.f('ix_calls_deal_id'), 'calls', ['deal_id'], unique=False)


def downgrade() -> None:
    op.drop_table('calls')
    op.drop_table('tasks')
    op.drop_table('probability_rebuilds')
    op.drop_table('win_counts')
    op.drop_table('win_outcomes')
    op.drop_table('deal_facts')
