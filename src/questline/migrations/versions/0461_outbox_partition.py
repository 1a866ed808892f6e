"""outbox partition: outbox rows carry their relay partition; relay cursors per (subscriber, partition)

Revision ID: 0461_outbox_partition
Revises: 0402_webhooks
Create Date: 2026-12-05 00:45:00

The delivery branch. Rows already in the outbox are in partition 0, and each subscriber's one
cursor becomes its partition-0 cursor, at the same position: an upgraded install neither replays
nor skips. Cursors of the other partitions are made by the relay, at their beginning (they hold
only rows written after the upgrade).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0461_outbox_partition'
down_revision: str | None = '0402_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partition', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_index('ix_outbox_position')
        batch_op.create_index('ix_outbox_partition_position', ['partition', 'txid', 'seq'], unique=False)
    with op.batch_alter_table('relay_cursors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partition', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_constraint('pk_relay_cursors', type_='primary')
        batch_op.create_primary_key('pk_relay_cursors', ['subscriber', 'partition'])


def downgrade() -> None:
    # Exact with one relay partition (everything in partition 0); with more, the old one cursor
    # keeps partition 0's position and the other partitions' rows above it come again.
    op.execute(sa.text('DELETE FROM relay_cursors WHERE partition <> 0'))
    with op.batch_alter_table('relay_cursors', schema=None) as batch_op:
        batch_op.drop_constraint('pk_relay_cursors', type_='primary')
        batch_op.create_primary_key('pk_relay_cursors', ['subscriber'])
        batch_op.drop_column('partition')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_partition_position')
        batch_op.create_index('ix_outbox_position', ['txid', 'seq'], unique=False)
        batch_op.drop_column('partition')
