"""communities: communities (slug, moderation, member schema, starter reward) and members

Revision ID: 0010_communities
Revises: 0001_foundation
Create Date: 2026-11-21 01:00:00

The communities branch.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010_communities'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('communities',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('communities',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('redirect_url', sa.String(length=500), nullable=True),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.Column('auto_approve', sa.Boolean(), nullable=False),
    sa.Column('max_members', sa.Integer(), nullable=True),
    sa.Column('member_count', sa.Integer(), nullable=False),
    sa.Column('member_schema', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('starter_reward', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('member_count >= 0', name=op.f('ck_communities_non_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communities')),
    sa.UniqueConstraint('app_id', 'slug', name=op.f('uq_communities_app_id_slug'))
    )
    op.create_table('community_members',
    sa.Column('community_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('member_metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('referred_by', sa.String(length=128), nullable=True),
    sa.Column('starter_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('community_id', 'player_id', name=op.f('pk_community_members'))
    )
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.create_index('ix_community_members_player', ['app_id', 'player_id'], unique=False)
        batch_op.create_index('ix_community_members_status', ['community_id', 'status', 'player_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.drop_index('ix_community_members_status')
        batch_op.drop_index('ix_community_members_player')

    op.drop_table('community_members')
    op.drop_table('communities')
