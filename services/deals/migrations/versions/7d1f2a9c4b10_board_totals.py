"""board totals: per status and manager, kept by triggers

The kanban's column counts and sums for one manager or for everyone are read from this
small table instead of counting a million deals on every page; triggers on ``deals`` keep
it exact whatever writes a deal (the service, a bulk fix, a migration).

Revision ID: 7d1f2a9c4b10
Revises: 5593adb5630b
Create Date: 2026-11-23 21:10:00
"""
from alembic import op

revision = '7d1f2a9c4b10'
down_revision = '5593adb5630b'
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION deal_totals_add(s integer, m integer, n integer, amt numeric) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO deal_totals AS t (status_id, manager_key, deals, amount)
    VALUES (s, coalesce(m, 0), n, amt)
    ON CONFLICT (status_id, manager_key)
    DO UPDATE SET deals = t.deals + EXCLUDED.deals, amount = t.amount + EXCLUDED.amount
$$;

CREATE FUNCTION deal_totals_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM deal_totals_add(NEW.status_id, NEW.manager_id, 1, NEW.amount);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM deal_totals_add(OLD.status_id, OLD.manager_id, -1, -OLD.amount);
    -- two rows change: lock them in one order, so two opposite moves cannot deadlock
    ELSIF (OLD.status_id, coalesce(OLD.manager_id, 0))
          <= (NEW.status_id, coalesce(NEW.manager_id, 0)) THEN
        PERFORM deal_totals_add(OLD.status_id, OLD.manager_id, -1, -OLD.amount);
        PERFORM deal_totals_add(NEW.status_id, NEW.manager_id, 1, NEW.amount);
    ELSE
        PERFORM deal_totals_add(NEW.status_id, NEW.manager_id, 1, NEW.amount);
        PERFORM deal_totals_add(OLD.status_id, OLD.manager_id, -1, -OLD.amount);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deal_totals_insert AFTER INSERT ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_totals_track();
CREATE TRIGGER deal_totals_delete AFTER DELETE ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_totals_track();
CREATE TRIGGER deal_totals_update AFTER UPDATE OF status_id, manager_id, amount ON deals
    FOR EACH ROW WHEN (OLD.status_id IS DISTINCT FROM NEW.status_id
                       OR OLD.manager_id IS DISTINCT FROM NEW.manager_id
                       OR OLD.amount IS DISTINCT FROM NEW.amount)
    EXECUTE FUNCTION deal_totals_track();
"""

REBUILD = """
DELETE FROM deal_totals;
INSERT INTO deal_totals (status_id, manager_key, deals, amount)
SELECT status_id, coalesce(manager_id, 0), count(*), coalesce(sum(amount), 0)
FROM deals GROUP BY status_id, coalesce(manager_id, 0);
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE deal_totals (
            status_id integer NOT NULL,
            manager_key integer NOT NULL,  -- 0: no manager
            deals bigint NOT NULL,
            amount numeric(18, 2) NOT NULL,
            CONSTRAINT pk_deal_totals PRIMARY KEY (status_id, manager_key),
            CONSTRAINT fk_deal_totals_status_id_statuses FOREIGN KEY (status_id)
                REFERENCES statuses (id) ON DELETE CASCADE
        )""")
    op.execute(FUNCTIONS)
    op.execute(REBUILD)


def downgrade() -> None:
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER deal_totals_{trigger} ON deals")
    op.execute("DROP FUNCTION deal_totals_track()")
    op.execute("DROP FUNCTION deal_totals_add(integer, integer, integer, numeric)")
    op.execute("DROP TABLE deal_totals")
