"""social: chat and announcements

Revision ID: 1101_social_chat
Revises: 0001_foundation
Create Date: 2026-12-04 21:14:49

The social branch: chat rooms (messages, mutes and bans, reports, per-app settings) and announcements.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '1101_social_chat'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('social',)
depends_on: str | Sequence[str] | None = None
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('announcements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target_id', sa.String(length=40), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('author_kind', sa.String(length=16), nullable=False),
    sa.Column('author_id', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_announcements'))
    )
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.create_index('ix_announcements_due', ['status', 'send_at'], unique=False)
        batch_op.create_index('ix_announcements_list', ['app_id', 'id'], unique=False)

    op.create_table('chat_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('room', sa.String(length=80), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by', sa.String(length=160), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_messages'))
    )
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.create_index('ix_chat_messages_player', ['app_id', 'player_id', 'created_at'], unique=False)
        batch_op.create_index('ix_chat_messages_room', ['app_id', 'room', 'id'], unique=False)

    op.create_table('chat_reports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('room', sa.String(length=80), nullable=False),
    sa.Column('message_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('author_id', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('resolved_by', sa.String(length=160), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_reports')),
    sa.UniqueConstraint('app_id', 'message_id', 'player_id', name=op.f('uq_chat_reports_app_id_message_id_player_id'))
    )
    with op.batch_alter_table('chat_reports', schema=None) as batch_op:
        batch_op.create_index('ix_chat_reports_queue', ['app_id', 'status', 'id'], unique=False)

    op.create_table('chat_restrictions',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('room', sa.String(length=80), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'room', 'player_id', 'kind', name=op.f('pk_chat_restrictions'))
    )
    op.create_table('chat_settings',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('blocked_words', JSON, nullable=False),
    sa.Column('max_length', sa.Integer(), nullable=False),
    sa.Column('rate_count', sa.Integer(), nullable=False),
    sa.Column('rate_seconds', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_chat_settings'))
    )


def downgrade() -> None:
    op.drop_table('chat_settings')
    op.drop_table('chat_restrictions')
    with op.batch_alter_table('chat_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_reports_queue')

    op.drop_table('chat_reports')
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_messages_room')
        batch_op.drop_index('ix_chat_messages_player')

    op.drop_table('chat_messages')
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_index('ix_announcements_list')
        batch_op.drop_index('ix_announcements_due')

    op.drop_table('announcements')
