"""leaderboards and competitions: entries, periods, archives, friends

Revision ID: 0006_leaderboards
Revises: 0001_foundation
Create Date: 2026-11-21 00:30:00.000000

The leaderboards branch. Definitions live in ``definitions`` (kind ``leaderboard``).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006_leaderboards'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('leaderboards',)
depends_on: str | Sequence[str] | None = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


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

    op.create_table('competitions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('starts_at', _TS, nullable=False),
    sa.Column('ends_at', _TS, nullable=False),
    sa.Column('config', _JSON, nullable=False),
    sa.Column('participant_count', sa.Integer(), nullable=False),
    sa.Column('max_participants', sa.Integer(), nullable=True),
    sa.Column('fees_collected', sa.BigInteger(), nullable=False),
    sa.Column('sponsor_amount', sa.BigInteger(), nullable=False),
    sa.Column('leaders', _JSON, nullable=False),
    sa.Column('distribution_batch', sa.Integer(), nullable=False),
    sa.Column('distribution_status', sa.String(length=16), nullable=False),
    sa.Column('distribution_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('started_at', _TS, nullable=True),
    sa.Column('completed_at', _TS, nullable=True),
    sa.Column('cancelled_at', _TS, nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_competitions_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competitions')),
    )
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.create_index('ix_competitions_status', ['status', 'starts_at', 'ends_at'], unique=False)
        batch_op.create_index('ix_competitions_app', ['app_id', 'status'], unique=False)

    op.create_table('competition_participants',
    sa.Column('competition_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('fee_paid', sa.BigInteger(), nullable=False),
    sa.Column('fee_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('joined_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('competition_id', 'player_id', name=op.f('pk_competition_participants')),
    )

    op.create_table('competition_results',
    sa.Column('competition_id', sa.String(length=40), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('score', sa.BigInteger(), nullable=False),
    sa.Column('reached_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('competition_id', 'rank', name=op.f('pk_competition_results')),
    sa.UniqueConstraint('competition_id', 'player_id', name=op.f('uq_competition_results_competition_id_player_id')),
    )

    op.create_table('competition_distributions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('competition_id', sa.String(length=40), nullable=False),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pool', sa.BigInteger(), nullable=False),
    sa.Column('total_points', sa.BigInteger(), nullable=False),
    sa.Column('prizes', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=160), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.Column('rolled_back_at', _TS, nullable=True),
    sa.Column('rollback_reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_distributions')),
    sa.UniqueConstraint('competition_id', 'batch', name=op.f('uq_competition_distributions_competition_id_batch')),
    )

    op.create_table('competition_prizes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('competition_id', sa.String(length=40), nullable=False),
    sa.Column('distribution_id', sa.String(length=40), nullable=False),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=32), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('item', sa.String(length=128), nullable=True),
    sa.Column('data', _JSON, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('fulfilment', sa.String(length=16), nullable=False),
    sa.Column('claim_deadline', _TS, nullable=True),
    sa.Column('claimed_at', _TS, nullable=True),
    sa.Column('transaction_id', sa.String(length=40), nullable=True),
    sa.Column('rollback_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_prizes')),
    sa.UniqueConstraint('competition_id', 'batch', 'rank', name=op.f('uq_competition_prizes_competition_id_batch_rank')),
    )
    with op.batch_alter_table('competition_prizes', schema=None) as batch_op:
        batch_op.create_index('ix_competition_prizes_player', ['app_id', 'player_id', 'created_at'], unique=False)
        batch_op.create_index('ix_competition_prizes_deadline', ['status', 'claim_deadline'], unique=False)

    op.create_table('competition_prize_history',
    sa.Column('id', _BIGINT, autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('prize_id', sa.String(length=40), nullable=False),
    sa.Column('competition_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=160), nullable=True),
    sa.Column('at', _TS, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_competition_prize_history')),
    )
    with op.batch_alter_table('competition_prize_history', schema=None) as batch_op:
        batch_op.create_index('ix_competition_prize_history_player', ['app_id', 'player_id', 'id'], unique=False)

    op.create_table('competition_activity',
    sa.Column('competition_id', sa.String(length=40), nullable=False),
    sa.Column('bucket', _TS, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('joins', sa.BigInteger(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('volume', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('competition_id', 'bucket', name=op.f('pk_competition_activity')),
    )


def downgrade() -> None:
    op.drop_table('competition_activity')
    with op.batch_alter_table('competition_prize_history', schema=None) as batch_op:
        batch_op.drop_index('ix_competition_prize_history_player')
    op.drop_table('competition_prize_history')
    with op.batch_alter_table('competition_prizes', schema=None) as batch_op:
        batch_op.drop_index('ix_competition_prizes_deadline')
        batch_op.drop_index('ix_competition_prizes_player')
    op.drop_table('competition_prizes')
    op.drop_table('competition_distributions')
    op.drop_table('competition_results')
    op.drop_table('competition_participants')
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_index('ix_competitions_app')
        batch_op.drop_index('ix_competitions_status')
    op.drop_table('competitions')
    op.drop_table('player_friends')
    op.drop_table('leaderboard_archives')
    with op.batch_alter_table('leaderboard_periods', schema=None) as batch_op:
        batch_op.drop_index('ix_leaderboard_periods_open')
    op.drop_table('leaderboard_periods')
    with op.batch_alter_table('leaderboard_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_leaderboard_entries_rank')
    op.drop_table('leaderboard_entries')
