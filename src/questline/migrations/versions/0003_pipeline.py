"""pipeline: event log, outbox, definitions, stats, progression

Revision ID: 0003_pipeline
Revises: 0001_foundation
Create Date: 2026-11-20 23:36:29.787695
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003_pipeline'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('pipeline',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('pending', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_events')),
    sa.UniqueConstraint('app_id', 'event_id', name=op.f('uq_events_app_id_event_id'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_app_player', ['app_id', 'player_id', 'seq'], unique=False)
        batch_op.create_index('ix_events_pending', ['seq'], unique=False, sqlite_where=sa.text('pending > 0'), postgresql_where=sa.text('pending > 0'))

    op.create_table('outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=True),
    sa.Column('event_seq', sa.BigInteger(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_app_id'), ['app_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_event_seq'), ['event_seq'], unique=False)

    op.create_table('player_stats',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('stat', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('samples', sa.BigInteger(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seq', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'stat', 'period_key', name=op.f('pk_player_stats'))
    )
    op.create_table('player_tracks',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('track', sa.String(length=64), nullable=False),
    sa.Column('total_xp', sa.BigInteger(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('xp_today', sa.BigInteger(), nullable=False),
    sa.Column('today', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'track', name=op.f('pk_player_tracks'))
    )
    op.create_table('xp_activities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('track', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_xp_activities'))
    )
    with op.batch_alter_table('xp_activities', schema=None) as batch_op:
        batch_op.create_index('ix_xp_activities_player', ['app_id', 'player_id', 'id'], unique=False)

    op.create_table('xp_daily',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('earned', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'rule', 'day', name=op.f('pk_xp_daily'))
    )
    op.create_table('definitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_definitions_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_definitions')),
    sa.UniqueConstraint('app_id', 'kind', 'key', name=op.f('uq_definitions_app_id_kind_key'))
    )


def downgrade() -> None:
    op.drop_table('definitions')
    op.drop_table('xp_daily')
    with op.batch_alter_table('xp_activities', schema=None) as batch_op:
        batch_op.drop_index('ix_xp_activities_player')

    op.drop_table('xp_activities')
    op.drop_table('player_tracks')
    op.drop_table('player_stats')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_event_seq'))
        batch_op.drop_index(batch_op.f('ix_outbox_app_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_pending', sqlite_where=sa.text('pending > 0'), postgresql_where=sa.text('pending > 0'))
        batch_op.drop_index('ix_events_app_player')

    op.drop_table('events')
