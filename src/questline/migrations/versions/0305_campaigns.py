"""campaigns: campaigns, participations, impression ids, per-minute and per-hour counts

Revision ID: 0305_campaigns
Revises: 0001_foundation
Create Date: 2026-11-22 09:00:00

The campaigns branch (the sponsorship marketplace).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0305_campaigns'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('campaigns',)
depends_on: str | Sequence[str] | None = '0302_sponsors'


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('currency', sa.String(length=32), nullable=False),
    sa.Column('budget', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rate_per_mille', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('impression_target', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('gkey_cooloff_hours', sa.Integer(), nullable=False),
    sa.Column('targeting', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rejection_reason', sa.String(length=500), nullable=True),
    sa.Column('commission_bps', sa.Integer(), nullable=True),
    sa.Column('impressions', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('spent', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('commission', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=160), nullable=True),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completion_reason', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_campaigns_app_id_apps')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_campaigns_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index('ix_campaigns_app_brand', ['app_id', 'brand_id', 'id'], unique=False)
        batch_op.create_index('ix_campaigns_app_status', ['app_id', 'status'], unique=False)

    op.create_table('participations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('streamer_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gkey_category', sa.String(length=32), nullable=False),
    sa.Column('impressions', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('earned_gross', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('earned_fee', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('earned_net', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('released', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('overlay_token_hash', sa.String(length=64), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_by', sa.String(length=160), nullable=True),
    sa.Column('removal_reason', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_participations_app_id_apps')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_participations_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['streamer_id'], ['streamers.id'], name=op.f('fk_participations_streamer_id_streamers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participations')),
    sa.UniqueConstraint('campaign_id', 'streamer_id', name=op.f('uq_participations_campaign_id_streamer_id')),
    sa.UniqueConstraint('overlay_token_hash', name=op.f('uq_participations_overlay_token_hash'))
    )
    with op.batch_alter_table('participations', schema=None) as batch_op:
        batch_op.create_index('ix_participations_campaign', ['app_id', 'campaign_id', 'status'], unique=False)
        batch_op.create_index('ix_participations_streamer', ['app_id', 'streamer_id', 'status'], unique=False)

    op.create_table('impression_ids',
    sa.Column('participation_id', sa.String(length=40), nullable=False),
    sa.Column('impression_id', sa.String(length=128), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['participation_id'], ['participations.id'], name=op.f('fk_impression_ids_participation_id_participations')),
    sa.PrimaryKeyConstraint('participation_id', 'impression_id', name=op.f('pk_impression_ids'))
    )
    op.create_table('impression_minutes',
    sa.Column('participation_id', sa.String(length=40), nullable=False),
    sa.Column('minute', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('overlay', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['participation_id'], ['participations.id'], name=op.f('fk_impression_minutes_participation_id_participations')),
    sa.PrimaryKeyConstraint('participation_id', 'minute', name=op.f('pk_impression_minutes'))
    )
    op.create_table('impression_hours',
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('streamer_id', sa.String(length=40), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('impressions', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('gross', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fee', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('net', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_impression_hours_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', 'streamer_id', 'hour', name=op.f('pk_impression_hours'))
    )
    with op.batch_alter_table('impression_hours', schema=None) as batch_op:
        batch_op.create_index('ix_impression_hours_streamer', ['app_id', 'streamer_id', 'hour'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('impression_hours', schema=None) as batch_op:
        batch_op.drop_index('ix_impression_hours_streamer')

    op.drop_table('impression_hours')
    op.drop_table('impression_minutes')
    op.drop_table('impression_ids')
    with op.batch_alter_table('participations', schema=None) as batch_op:
        batch_op.drop_index('ix_participations_campaign')
        batch_op.drop_index('ix_participations_streamer')

    op.drop_table('participations')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('ix_campaigns_app_brand')
        batch_op.drop_index('ix_campaigns_app_status')

    op.drop_table('campaigns')
