"""the client's group of companies in the read model (funnel, performance, RFM by group)

``client_group_members`` is fed by clients.client_group_changed; ``deals.client_group_id``
follows it through triggers: a deal written with a client takes the client's group, and a
client moving to another group moves its deals.

Revision ID: c5f1a2b3d4e6
Revises: b7e3f0c4d1a2
"""
import sqlalchemy as sa
from alembic import op

revision = 'c5f1a2b3d4e6'
down_revision = 'b7e3f0c4d1a2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'client_group_members',
        sa.Column('client_id', sa.BigInteger(), nullable=False),
        sa.Column('client_group_id', sa.BigInteger(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('client_id', name=op.f('pk_client_group_members')),
    )
    op.create_index('ix_client_group_members_group', 'client_group_members',
                    ['client_group_id'])
    op.add_column('deals', sa.Column('client_group_id', sa.BigInteger(), nullable=True))
    op.execute("""
        CREATE FUNCTION deals_take_client_group() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.client_group_id := (SELECT client_group_id FROM client_group_members
                                    WHERE client_id = NEW.client_id);
            RETURN NEW;
        END $$;
        CREATE TRIGGER deals_client_group BEFORE INSERT OR UPDATE OF client_id ON deals
            FOR EACH ROW EXECUTE FUNCTION deals_take_client_group();
        CREATE FUNCTION client_group_moves_deals() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE deals SET client_group_id = NEW.client_group_id
            WHERE client_id = NEW.client_id
              AND client_group_id IS DISTINCT FROM NEW.client_group_id;
            RETURN NEW;
        END $$;
        CREATE TRIGGER client_group_members_move AFTER INSERT OR UPDATE ON client_group_members
            FOR EACH ROW EXECUTE FUNCTION client_group_moves_deals();
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER client_group_members_move ON client_group_members;"
               " DROP FUNCTION client_group_moves_deals();"
               " DROP TRIGGER deals_client_group ON deals; DROP FUNCTION deals_take_client_group();")
    op.drop_column('deals', 'client_group_id')
    op.drop_index('ix_client_group_members_group', table_name='client_group_members')
    op.drop_table('client_group_members')
