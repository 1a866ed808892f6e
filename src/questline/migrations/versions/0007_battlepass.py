"""battlepass: pass XP (derived), daily limits, players' premium and boosts, reward claims

Revision ID: 0007_battlepass
Revises: 0001_foundation
Create Date: 2026-11-21 00:00:00

The battle pass branch. ``battle_pass_xp`` and ``battle_pass_xp_daily`` are rebuilt by a
replay; ``battle_pass_players`` and ``battle_pass_claims`` record purchases and claims.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007_battlepass'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('battlepass',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('battle_pass_xp',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('season', sa.String(length=64), nullable=False),
    sa.Column('xp', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'season', name=op.f('pk_battle_pass_xp'))
    )
    op.create_table('battle_pass_xp_daily',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('season', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'season', 'rule', 'day', name=op.f('pk_battle_pass_xp_daily'))
    )
    op.create_table('battle_pass_players',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('season', sa.String(length=64), nullable=False),
    sa.Column('premium', sa.Boolean(), nullable=False),
    sa.Column('premium_source', sa.String(length=16), nullable=True),
    sa.Column('premium_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('premium_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('premium_reference', sa.String(length=200), nullable=True),
    sa.Column('boost_tiers', sa.Integer(), nullable=False),
    sa.Column('boost_xp', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'season', name=op.f('pk_battle_pass_players'))
    )
    op.create_table('battle_pass_claims',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('season', sa.String(length=64), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('track', sa.String(length=8), nullable=False),
    sa.Column('reward', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_battle_pass_claims')),
    sa.UniqueConstraint('app_id', 'player_id', 'season', 'tier', 'track', name=op.f('uq_battle_pass_claims_app_id_player_id_season_tier_track'))
    )


def downgrade() -> None:
    op.drop_table('battle_pass_claims')
    op.drop_table('battle_pass_players')
    op.drop_table('battle_pass_xp_daily')
    op.drop_table('battle_pass_xp')
