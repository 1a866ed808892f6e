"""fulfilment: reward fulfilment records and delivery targets

Revision ID: 0451_fulfilment
Revises: 0001_foundation
Create Date: 2026-12-04 18:00:00

The fulfilment branch (reward delivery outside the ledger).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0451_fulfilment'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('fulfilment',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('fulfilments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('tx_raw', sa.Text(), nullable=True),
    sa.Column('tx_nonce', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fulfilments')),
    sa.UniqueConstraint('app_id', 'source', 'source_ref', name=op.f('uq_fulfilments_app_id'))
    )
    with op.batch_alter_table('fulfilments', schema=None) as batch_op:
        batch_op.create_index('ix_fulfilments_app', ['app_id', 'id'], unique=False)
        batch_op.create_index('ix_fulfilments_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('fulfilment_targets',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'kind', name=op.f('pk_fulfilment_targets'))
    )


def downgrade() -> None:
    op.drop_table('fulfilment_targets')
    with op.batch_alter_table('fulfilments', schema=None) as batch_op:
        batch_op.drop_index('ix_fulfilments_due')
        batch_op.drop_index('ix_fulfilments_app')

    op.drop_table('fulfilments')
