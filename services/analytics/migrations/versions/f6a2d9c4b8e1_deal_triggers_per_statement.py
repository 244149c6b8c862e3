"""the deals' insert triggers once per statement (transition tables) instead of per row

A rebuild page inserts 10,000 deals in one statement; the per-row ``deal_counts_track``
(one plpgsql call and one ``deal_count_moves`` row per deal) and ``deals_take_client_group``
(one plpgsql call and one look-up per deal) cost about as much as the insert itself.
Per statement, the inserted rows (``REFERENCING NEW TABLE``) are counted into
``deal_count_moves`` with one grouped INSERT (one row per status, stage, manager and type
instead of one per deal: the same sums for ``compact_counts`` and the snapshot), and a
deal whose client belongs to a group (or whose written group is not its client's) takes
its client's group with one UPDATE at the end of the statement, as the row trigger set it
before the row was written (an update of ``client_id`` still goes through the row
trigger). Updates and deletes keep their row triggers (the update one fires only when a
counted column changed: a transition table would hold every updated row).

Revision ID: f6a2d9c4b8e1
Revises: e4b8d1f6a3c7
"""
from alembic import op

revision = 'f6a2d9c4b8e1'
down_revision = 'e4b8d1f6a3c7'
branch_labels = None
depends_on = None


UPGRADE = """
CREATE FUNCTION deal_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deal_count_moves
    SELECT coalesce(status, ''), coalesce(stage, ''), coalesce(manager_id, -1),
           coalesce(type_id, -1), count(*), sum(amount)
    FROM added GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;
DROP TRIGGER deal_counts_insert ON deals;
CREATE TRIGGER deal_counts_insert AFTER INSERT ON deals REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION deal_counts_added();

CREATE FUNCTION deals_added_take_client_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE deals AS d SET client_group_id = m.client_group_id
    FROM added AS a LEFT JOIN client_group_members AS m ON m.client_id = a.client_id
    WHERE d.deal_id = a.deal_id AND a.client_group_id IS DISTINCT FROM m.client_group_id;
    RETURN NULL;
END $$;
DROP TRIGGER deals_client_group ON deals;
CREATE TRIGGER deals_client_group BEFORE UPDATE OF client_id ON deals
    FOR EACH ROW EXECUTE FUNCTION deals_take_client_group();
CREATE TRIGGER deals_client_group_insert AFTER INSERT ON deals REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION deals_added_take_client_group();
"""

DOWNGRADE = """
DROP TRIGGER deals_client_group_insert ON deals;
DROP FUNCTION deals_added_take_client_group();
DROP TRIGGER deals_client_group ON deals;
CREATE TRIGGER deals_client_group BEFORE INSERT OR UPDATE OF client_id ON deals
    FOR EACH ROW EXECUTE FUNCTION deals_take_client_group();
DROP TRIGGER deal_counts_insert ON deals;
DROP FUNCTION deal_counts_added();
CREATE TRIGGER deal_counts_insert AFTER INSERT ON deals
    FOR EACH ROW EXECUTE FUNCTION deal_counts_track();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
