"""pipeline: events carry their log partition; pending events are found per partition

Revision ID: 0011_pipeline_partitions
Revises: 0003_pipeline
Create Date: 2026-12-04 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_pipeline_partitions'
down_revision: str | None = '0003_pipeline'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partition', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.drop_index('ix_events_pending')
        batch_op.create_index('ix_events_pending', ['partition', 'seq'], unique=False,
                              sqlite_where=sa.text('pending > 0'), postgresql_where=sa.text('pending > 0'))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_pending')
        batch_op.create_index('ix_events_pending', ['seq'], unique=False,
                              sqlite_where=sa.text('pending > 0'), postgresql_where=sa.text('pending > 0'))
        batch_op.drop_column('partition')
