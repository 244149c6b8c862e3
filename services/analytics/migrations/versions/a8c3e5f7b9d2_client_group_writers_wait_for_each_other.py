"""a deal written while its client changes group takes the new group (no lost update)

Two transactions could each miss the other's work: one writes a deal of client 501 and
reads the client's group (none yet, the change is not committed), while another records
that 501 joined a group and moves the client's deals (the new deal is not committed, so
the move cannot see it).  Both commit and the deal stays out of the group until the next
rebuild: the funnel, performance and RFM slices by group miss it.

Now the writers of ``deals`` that take a client's group (the insert's statement trigger
and the row trigger on a change of ``client_id``) hold a shared advisory lock for the
rest of their transaction, and a change of a client's group takes the same lock
exclusively before it moves the deals.  Writers of deals never wait for each other (the
lock is shared); a group change waits for those under way and holds new ones back until
it commits, so whichever commits second sees what the first wrote (each statement of a
plpgsql function takes a fresh snapshot under READ COMMITTED).  A member row whose group
did not change (the client's kind was updated, or a new client in no group) takes no
lock: a deal written meanwhile reads the same group either way.

Revision ID: a8c3e5f7b9d2
Revises: f6a2d9c4b8e1
"""
from alembic import op

revision = 'a8c3e5f7b9d2'
down_revision = 'f6a2d9c4b8e1'
branch_labels = None
depends_on = None

# the advisory lock's key: (the analytics read model, "a client's group")
LOCK = "7301, 1"

# the three trigger functions as they were (``{shared}``/``{exclusive}`` empty) and as
# they are now (with the lock taken first)
FUNCTIONS = """
CREATE OR REPLACE FUNCTION deals_take_client_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {shared}
    NEW.client_group_id := (SELECT client_group_id FROM client_group_members
                            WHERE client_id = NEW.client_id);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION deals_added_take_client_group() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {shared}
    UPDATE deals AS d SET client_group_id = m.client_group_id
    FROM added AS a LEFT JOIN client_group_members AS m ON m.client_id = a.client_id
    WHERE d.deal_id = a.deal_id AND a.client_group_id IS DISTINCT FROM m.client_group_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION client_group_moves_deals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {exclusive}
    UPDATE deals SET client_group_id = NEW.client_group_id
    WHERE client_id = NEW.client_id
      AND client_group_id IS DISTINCT FROM NEW.client_group_id;
    RETURN NEW;
END $$;
"""

SHARED = f"PERFORM pg_advisory_xact_lock_shared({LOCK});"
EXCLUSIVE = f"""IF (TG_OP = 'INSERT' AND NEW.client_group_id IS NOT NULL)
       OR (TG_OP = 'UPDATE' AND NEW.client_group_id IS DISTINCT FROM OLD.client_group_id)
    THEN
        PERFORM pg_advisory_xact_lock({LOCK});
    END IF;"""


def upgrade() -> None:
    op.execute(FUNCTIONS.format(shared=SHARED, exclusive=EXCLUSIVE))


def downgrade() -> None:
    op.execute(FUNCTIONS.format(shared="", exclusive=""))
