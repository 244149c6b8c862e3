"""product catalogue; calculator and order lines keep catalogue_id and product_line

Revision ID: e4b7c2a91d05
Revises: e4a9b2c7d1f3
"""
import sqlalchemy as sa
from alembic import op

revision = 'e4b7c2a91d05'
down_revision = 'e4a9b2c7d1f3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.create_table(
        'products',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.String(length=300), nullable=False),
        sa.Column('article', sa.String(length=100), nullable=True),
        sa.Column('unit', sa.String(length=20), nullable=False),
        sa.Column('price', sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column('vat_rate', sa.String(length=4), nullable=False),
        sa.Column('product_line', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    )
    op.create_index('ix_products_article', 'products', ['article'], unique=True,
                    postgresql_where=sa.text('article IS NOT NULL'))
    op.create_index('ix_products_search', 'products', [sa.literal_column(
        "(lower(name) || ' ' || lower(coalesce(article, ''))) gin_trgm_ops")],
        unique=False, postgresql_using='gin')
    for table in ('calculation_lines', 'order_lines'):
        op.add_column(table, sa.Column('catalogue_id', sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column('product_line', sa.String(length=200), nullable=True))


def downgrade() -> None:
    for table in ('calculation_lines', 'order_lines'):
        op.drop_column(table, 'product_line')
        op.drop_column(table, 'catalogue_id')
    op.drop_index('ix_products_search', table_name='products', postgresql_using='gin')
    op.drop_index('ix_products_article', table_name='products',
                  postgresql_where=sa.text('article IS NOT NULL'))
    op.drop_table('products')
