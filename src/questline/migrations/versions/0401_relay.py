"""relay: outbox rows carry their transaction id; relay cursors per subscriber

Revision ID: 0401_relay
Revises: 0011_pipeline_partitions
Create Date: 2026-12-04 18:00:00

The delivery branch (the outbox relay, webhooks, live channels).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0401_relay'
down_revision: str | None = '0011_pipeline_partitions'
branch_labels: str | Sequence[str] | None = ('delivery',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    default = sa.text('(pg_current_xact_id()::text::bigint)') if postgres else sa.text('0')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('txid', sa.BigInteger(), server_default=default, nullable=False))
        batch_op.create_index('ix_outbox_position', ['txid', 'seq'], unique=False)
    op.create_table('relay_cursors',
    sa.Column('subscriber', sa.String(length=60), nullable=False),
    sa.Column('low', sa.BigInteger(), nullable=False),
    sa.Column('done', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('partial', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('delivered', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subscriber', name=op.f('pk_relay_cursors'))
    )


def downgrade() -> None:
    op.drop_table('relay_cursors')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_position')
        batch_op.drop_column('txid')
