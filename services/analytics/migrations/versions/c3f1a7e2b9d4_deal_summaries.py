"""deal summaries: each deal's transitions summed up on its row, and the deals now in
each status counted by triggers (the funnel at scale)

``deal_counts`` holds how many deals and how much sit in each (status, stage, manager,
type) and ``deal_count_moves`` what changed since: a trigger on ``deals`` only appends
there (no hot row is locked, so concurrent batches cannot wait on or deadlock over a
count), and ``projection.compact_counts`` folds the moves into the counts.

Revision ID: c3f1a7e2b9d4
Revises: b7e3c1d2a4f5
Create Date: 2026-12-02 02:50:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = 'c3f1a7e2b9d4'
down_revision = 'b7e3c1d2a4f5'
branch_labels = None
depends_on = None


COUNTS = """
CREATE TABLE deal_counts (
    status varchar(50) NOT NULL,
    stage varchar(50) NOT NULL,
    manager_key integer NOT NULL,  -- -1: no manager
    type_key integer NOT NULL,     -- -1: no type
    deals bigint NOT NULL,
    amount numeric(18, 2) NOT NULL,
    CONSTRAINT pk_deal_counts PRIMARY KEY (status, stage, manager_key, type_key)
);
CREATE TABLE deal_count_moves (
    status varchar(50) NOT NULL,
    stage varchar(50) NOT NULL,
    manager_key integer NOT NULL,
    type_key integer NOT NULL,
    deals integer NOT NULL,
    amount numeric(18, 2) NOT NULL
);

CREATE FUNCTION deal_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO deal_count_moves VALUES (coalesce(OLD.status, ''), coalesce(OLD.stage, ''),
            coalesce(OLD.manager_id, -1), coalesce(OLD.type_id, -1), -1, -OLD.amount);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO deal_count_moves VALUES (coalesce(NEW.status, ''), coalesce(NEW.stage, ''),
            coalesce(NEW.manager_id, -1), coalesce(NEW.type_id, -1), 1, NEW.amount);
    END IF;
    RETURN NULL;
END
$$;
CREATE FUNCTION deal_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deal_counts;
    DELETE FROM deal_count_moves;
    RETURN NULL;
END
$$;

CREATE TRIGGER deal_counts_insert AFTER INSERT ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_counts_track();
CREATE TRIGGER deal_counts_delete AFTER DELETE ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_counts_track();
CREATE TRIGGER deal_counts_update AFTER UPDATE OF status, stage, manager_id, type_id, amount
    ON deals FOR EACH ROW
    WHEN ((OLD.status, OLD.stage, OLD.manager_id, OLD.type_id, OLD.amount)
          IS DISTINCT FROM (NEW.status, NEW.stage, NEW.manager_id, NEW.type_id, NEW.amount))
    EXECUTE FUNCTION deal_counts_track();
CREATE TRIGGER deal_counts_truncate AFTER TRUNCATE ON deals
    FOR EACH STATEMENT EXECUTE FUNCTION deal_counts_clear();

INSERT INTO deal_counts
SELECT coalesce(status, ''), coalesce(stage, ''), coalesce(manager_id, -1),
       coalesce(type_id, -1), count(*), coalesce(sum(amount), 0)
FROM deals GROUP BY 1, 2, 3, 4;
"""


def upgrade() -> None:
    op.add_column('deals', sa.Column('path', postgresql.ARRAY(sa.String(length=50)),
                                     nullable=True))
    op.add_column('deals', sa.Column('seconds_codes', postgresql.ARRAY(sa.String(length=50)),
                                     nullable=True))
    op.add_column('deals', sa.Column('seconds_values', postgresql.ARRAY(sa.Double()),
                                     nullable=True))
    op.add_column('deals', sa.Column('last_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('deals', sa.Column('last_loss_reason', sa.String(length=200),
                                     nullable=True))
    # an installation that already has a read model: sum up every deal's transitions once
    from services.analytics.store import SUMMARIZE_ALL
    op.execute(SUMMARIZE_ALL)
    op.execute(COUNTS)
    # the client slice of "now in each status" is read from the deals themselves
    op.create_index('ix_deals_client', 'deals', ['client_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deals_client', table_name='deals')
    for trigger in ('insert', 'delete', 'update', 'truncate'):
        op.execute(f"DROP TRIGGER deal_counts_{trigger} ON deals")
    op.execute("DROP FUNCTION deal_counts_track()")
    op.execute("DROP FUNCTION deal_counts_clear()")
    op.execute("DROP TABLE deal_count_moves")
    op.execute("DROP TABLE deal_counts")
    for name in ('last_loss_reason', 'last_at', 'seconds_values', 'seconds_codes', 'path'):
        op.drop_column('deals', name)
