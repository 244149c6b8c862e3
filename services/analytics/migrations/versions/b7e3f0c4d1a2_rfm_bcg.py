"""RFM scores and segment history, the scheduled-job claim, deals' product lines (BCG)

Revision ID: b7e3f0c4d1a2
Revises: c3f1a7e2b9d4
"""
import sqlalchemy as sa
from alembic import op

revision = 'b7e3f0c4d1a2'
down_revision = 'c3f1a7e2b9d4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rfm_scores',
        sa.Column('client_id', sa.BigInteger(), nullable=False),
        sa.Column('recency_days', sa.Integer(), nullable=False),
        sa.Column('payments', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column('r', sa.Integer(), nullable=False),
        sa.Column('f', sa.Integer(), nullable=False),
        sa.Column('m', sa.Integer(), nullable=False),
        sa.Column('segment', sa.String(length=20), nullable=False),
        sa.Column('last_paid_on', sa.Date(), nullable=True),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('client_id', name=op.f('pk_rfm_scores')),
    )
    op.create_index('ix_rfm_scores_segment', 'rfm_scores', ['segment', 'client_id'])
    op.create_table(
        'rfm_history',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('client_id', sa.BigInteger(), nullable=False),
        sa.Column('previous', sa.String(length=20), nullable=True),
        sa.Column('segment', sa.String(length=20), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rfm_history')),
    )
    op.create_index(op.f('ix_rfm_history_client_id'), 'rfm_history', ['client_id'])
    op.create_table(
        'scheduled_jobs',
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_result', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduled_jobs')),
    )
    op.create_table(
        'deal_lines',
        sa.Column('deal_id', sa.BigInteger(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('product_line', sa.String(length=200), nullable=True),
        sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.PrimaryKeyConstraint('deal_id', 'position', name=op.f('pk_deal_lines')),
    )


def downgrade() -> None:
    op.drop_table('deal_lines')
    op.drop_table('scheduled_jobs')
    op.drop_index(op.f('ix_rfm_history_client_id'), table_name='rfm_history')
    op.drop_table('rfm_history')
    op.drop_index('ix_rfm_scores_segment', table_name='rfm_scores')
    op.drop_table('rfm_scores')
