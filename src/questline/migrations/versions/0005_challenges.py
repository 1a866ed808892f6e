"""challenges: progress per period, completions (one per period by constraint), claims

Revision ID: 0005_challenges
Revises: 0001_foundation
Create Date: 2026-11-21 00:10:00.000000

The challenges branch. Definitions live in ``definitions`` (kind ``challenge``).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005_challenges'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('challenges',)
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_OPEN = sa.text("status <> 'rejected'")


def upgrade() -> None:
    op.create_table('challenge_progress',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('challenge', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('objectives', _JSON, nullable=False),
    sa.Column('met_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'challenge', 'period_key', name=op.f('pk_challenge_progress'))
    )
    op.create_table('challenge_completions',
    sa.Column('id', _BIGINT, autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('challenge', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=24), nullable=False),
    sa.Column('category', sa.String(length=50), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('rewards', _JSON, nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=True),
    sa.Column('event_id', sa.String(length=128), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_challenge_completions')),
    sa.UniqueConstraint('app_id', 'player_id', 'challenge', 'period_key',
                        name=op.f('uq_challenge_completions_app_id_player_id_challenge_period_key'))
    )
    with op.batch_alter_table('challenge_completions', schema=None) as batch_op:
        batch_op.create_index('ix_challenge_completions_player', ['app_id', 'player_id', 'id'], unique=False)

    op.create_table('challenge_claims',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('challenge', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('verification', _JSON, nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('progress', _JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=160), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_challenge_claims'))
    )
    with op.batch_alter_table('challenge_claims', schema=None) as batch_op:
        batch_op.create_index('ix_challenge_claims_queue', ['app_id', 'status', 'id'], unique=False)
        batch_op.create_index('uq_challenge_claims_open', ['app_id', 'player_id', 'challenge', 'period_key'],
                              unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN)


def downgrade() -> None:
    with op.batch_alter_table('challenge_claims', schema=None) as batch_op:
        batch_op.drop_index('uq_challenge_claims_open', sqlite_where=_OPEN, postgresql_where=_OPEN)
        batch_op.drop_index('ix_challenge_claims_queue')

    op.drop_table('challenge_claims')
    with op.batch_alter_table('challenge_completions', schema=None) as batch_op:
        batch_op.drop_index('ix_challenge_completions_player')

    op.drop_table('challenge_completions')
    op.drop_table('challenge_progress')
