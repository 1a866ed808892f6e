"""achievements and streaks: player achievements, badges, backfills, player streaks, rest days

Revision ID: 0004_achievements_streaks
Revises: 0001_foundation
Create Date: 2026-11-21 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_achievements_streaks'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('achievements',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('achievement_backfills',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('achievement', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('cursor', sa.String(length=512), nullable=True),
    sa.Column('players', sa.Integer(), nullable=False),
    sa.Column('unlocked', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('app_id', 'achievement', name=op.f('pk_achievement_backfills'))
    )
    op.create_table('achievement_badges',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('achievement', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('thumbnail_path', sa.String(length=300), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=160), nullable=True),
    sa.PrimaryKeyConstraint('app_id', 'achievement', name=op.f('pk_achievement_badges'))
    )
    op.create_table('player_achievements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('achievement', sa.String(length=64), nullable=False),
    sa.Column('progress_current', sa.BigInteger(), nullable=False),
    sa.Column('progress_target', sa.BigInteger(), nullable=False),
    sa.Column('progress_period', sa.String(length=16), nullable=False),
    sa.Column('unlocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unlocked_by', sa.String(length=16), nullable=True),
    sa.Column('event_id', sa.String(length=128), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_player_achievements')),
    sa.UniqueConstraint('app_id', 'player_id', 'achievement', name=op.f('uq_player_achievements_app_id_player_id_achievement'))
    )
    with op.batch_alter_table('player_achievements', schema=None) as batch_op:
        batch_op.create_index('ix_player_achievements_app_achievement', ['app_id', 'achievement'], unique=False)

    op.create_table('player_streaks',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('streak', sa.String(length=64), nullable=False),
    sa.Column('current', sa.Integer(), nullable=False),
    sa.Column('longest', sa.Integer(), nullable=False),
    sa.Column('started_period', sa.String(length=16), nullable=True),
    sa.Column('last_period', sa.String(length=16), nullable=True),
    sa.Column('covered_period', sa.String(length=16), nullable=True),
    sa.Column('freezes_bought', sa.Integer(), nullable=False),
    sa.Column('freezes_granted', sa.Integer(), nullable=False),
    sa.Column('freezes_used', sa.Integer(), nullable=False),
    sa.Column('check_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'streak', name=op.f('pk_player_streaks'))
    )
    with op.batch_alter_table('player_streaks', schema=None) as batch_op:
        batch_op.create_index('ix_player_streaks_check_at', ['check_at'], unique=False)

    op.create_table('streak_rest_days',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('streak', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'streak', 'day', name=op.f('pk_streak_rest_days'))
    )


def downgrade() -> None:
    op.drop_table('streak_rest_days')
    with op.batch_alter_table('player_streaks', schema=None) as batch_op:
        batch_op.drop_index('ix_player_streaks_check_at')

    op.drop_table('player_streaks')
    with op.batch_alter_table('player_achievements', schema=None) as batch_op:
        batch_op.drop_index('ix_player_achievements_app_achievement')

    op.drop_table('player_achievements')
    op.drop_table('achievement_badges')
    op.drop_table('achievement_backfills')
