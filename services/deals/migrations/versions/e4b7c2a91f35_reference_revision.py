"""reference revision: one number that changes with every change of the reference lists

The deal page shows every status, process type with its stages and loss reason.  The
gateway keeps those lists and asks deals only for this number: when it is the one the
gateway holds, deals leaves the lists out of its answer.  Statement-level triggers on the
four tables bump it in the same transaction as the change, so the number and the lists
are always seen together (no window in which a page could show a stale list), whatever
writes them (the service, the seed, a migration, a hand fix).

Revision ID: e4b7c2a91f35
Revises: c28657f1c669
Create Date: 2026-12-02 02:50:00
"""
from alembic import op

revision = 'e4b7c2a91f35'
down_revision = 'c28657f1c669'
branch_labels = None
depends_on = None

TABLES = ("statuses", "loss_reasons", "deal_types", "stages")
# Revisions are milliseconds of the clock (at least one more than the last): another
# database (a new one, a restored backup) never reuses a number a reader holds from this one.
NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE reference_revision (
            id smallint CONSTRAINT pk_reference_revision PRIMARY KEY
                CONSTRAINT ck_reference_revision_one_row CHECK (id = 1),
            revision bigint NOT NULL
        );
        INSERT INTO reference_revision (id, revision) VALUES (1, {NOW_MS});
        CREATE FUNCTION reference_revision_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE reference_revision SET revision = greatest(revision + 1, {NOW_MS})
            WHERE id = 1;
            RETURN NULL;
        END
        $$;
    """)
    for table in TABLES:
        op.execute(f"""
            CREATE TRIGGER {table}_reference_revision
                AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION reference_revision_bump();
        """)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_reference_revision ON {table}")
    op.execute("DROP FUNCTION reference_revision_bump()")
    op.execute("DROP TABLE reference_revision")
