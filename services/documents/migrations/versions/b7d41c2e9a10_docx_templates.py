"""DOCX templates and DOCX documents

Revision ID: b7d41c2e9a10
Revises: 2e85931ea91b
Create Date: 2026-12-02 00:55:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b7d41c2e9a10'
down_revision = '2e85931ea91b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('templates', sa.Column('format', sa.String(length=10), server_default='html', nullable=False))
    op.add_column('templates', sa.Column('docx', sa.LargeBinary(), nullable=True))
    op.add_column('documents', sa.Column('docx', sa.LargeBinary(), nullable=True))
    op.alter_column('documents', 'pdf', existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    op.alter_column('documents', 'pdf', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_column('documents', 'docx')
    op.drop_column('templates', 'docx')
    op.drop_column('templates', 'format')
