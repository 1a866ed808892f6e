"""leaderboards and competitions: entries, periods, archives, friends

Revision ID: 0006_leaderboards
Revises: 0001_foundation
Create Date: 2026-11-21 00:30:00.000000

The leaderboards branch. Definitions live in ``definitions`` (kind ``leaderboard``).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_leaderboards'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('leaderboards',)
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('leaderboard_entries',
    sa.Column('id', _BIGINT, autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('board', sa.String(length=80), nullable=False),
    sa.Column('period_key', sa.String(length=32), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('partition', sa.String(length=128), nullable=False),
    sa.Column('score', sa.BigInteger(), nullable=False),
    sa.Column('reached_at', _TS, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leaderboard_entries')),
    sa.UniqueConstraint('app_id', 'board', 'period_key', 'player_id',
                        name=op.f('uq_leaderboard_entries_app_id_board_period_key_player_id')),
    )
    with op.batch_alter_table('leaderboard_entries', schema=None) as batch_op:
        batch_op.create_index('ix_leaderboard_entries_rank',
                              ['app_id', 'board', 'period_key', 'partition', 'score', 'reached_at', 'seq'],
                              unique=False)

    op.create_table('leaderboard_periods',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('board', sa.String(length=80), nullable=False),
    sa.Column('period_key', sa.String(length=32), nullable=False),
    sa.Column('opened_at', _TS, nullable=False),
    sa.Column('archived_at', _TS, nullable=True),
    sa.Column('entries', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('app_id', 'board', 'period_key', name=op.f('pk_leaderboard_periods')),
    )
    with op.batch_alter_table('leaderboard_periods', schema=None) as batch_op:
        batch_op.create_index('ix_leaderboard_periods_open', ['archived_at'], unique=False)

    op.create_table('leaderboard_archives',
    sa.Column('id', _BIGINT, autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('board', sa.String(length=80), nullable=False),
    sa.Column('period_key', sa.String(length=32), nullable=False),
    sa.Column('partition', sa.String(length=128), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('score', sa.BigInteger(), nullable=False),
    sa.Column('reached_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leaderboard_archives')),
    sa.UniqueConstraint('app_id', 'board', 'period_key', 'partition', 'rank',
                        name=op.f('uq_leaderboard_archives_app_id_board_period_key_partition_rank')),
    )

    op.create_table('player_friends',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('friend_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'friend_id', name=op.f('pk_player_friends')),
    )


def downgrade() -> None:
    op.drop_table('player_friends')
    op.drop_table('leaderboard_archives')
    with op.batch_alter_table('leaderboard_periods', schema=None) as batch_op:
        batch_op.drop_index('ix_leaderboard_periods_open')
    op.drop_table('leaderboard_periods')
    with op.batch_alter_table('leaderboard_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_leaderboard_entries_rank')
    op.drop_table('leaderboard_entries')
