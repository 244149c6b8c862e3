"""every one- and two-character part of each client's search name, kept by the database
on every write (a generated column), with a GIN index: a fragment of one or two letters is
found by equality on it, where the trigram index has nothing to search with

Revision ID: c7e2f91a4b58
Revises: a61f0c3e9d24
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = 'c7e2f91a4b58'
down_revision = 'a61f0c3e9d24'
branch_labels = None
depends_on = None

GRAMS = """
CREATE FUNCTION client_search_grams(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT g), '{}')
    FROM (SELECT substr(name, i, 1) FROM generate_series(1, length(name)) AS i
          UNION ALL
          SELECT substr(name, i, 2) FROM generate_series(1, length(name) - 1) AS i) AS s(g)
$$"""


def upgrade() -> None:
    op.execute(GRAMS)
    op.add_column('clients', sa.Column(
        'search_grams', ARRAY(sa.Text()),
        sa.Computed('client_search_grams(search_name)', persisted=True), nullable=False))
    op.create_index('ix_clients_search_grams', 'clients', ['search_grams'],
                    postgresql_using='gin')


def downgrade() -> None:
    op.drop_index('ix_clients_search_grams', table_name='clients')
    op.drop_column('clients', 'search_grams')
    op.execute("DROP FUNCTION client_search_grams(text)")
