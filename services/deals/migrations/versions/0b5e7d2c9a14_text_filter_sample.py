"""a larger sample of the deals' search texts for the text filter's plan (text_plan.py)

ANALYZE keeps most common values and a histogram of the trigram index's expression; the
text filter looks a fragment's three-letter windows up there to ask the index for the rare
ones only.  500 values (the default keeps 100) tell a window in one deal of 500 from a
common one.  A catalogue change and one ANALYZE: no table rewrite, no index build.

Revision ID: 0b5e7d2c9a14
Revises: f3c8d1a2b4e7
Create Date: 2026-12-04 22:20:00
"""
from alembic import op

revision = '0b5e7d2c9a14'
down_revision = 'f3c8d1a2b4e7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER INDEX ix_deals_search ALTER COLUMN 1 SET STATISTICS 500")
    op.execute("ANALYZE deals")


def downgrade() -> None:
    op.execute("ALTER INDEX ix_deals_search ALTER COLUMN 1 SET STATISTICS -1")
    op.execute("ANALYZE deals")
