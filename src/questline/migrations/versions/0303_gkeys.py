"""gkeys: G-Keys per streamer and category, energy packs

Revision ID: 0303_gkeys
Revises: 0001_foundation
Create Date: 2026-11-22 09:00:00

The gkeys branch (the sponsorship marketplace).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0303_gkeys'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('gkeys',)
depends_on: str | Sequence[str] | None = '0302_sponsors'


def upgrade() -> None:
    op.create_table('gkeys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('streamer_id', sa.String(length=40), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('locked_campaign_id', sa.String(length=40), nullable=True),
    sa.Column('locked_brand_id', sa.String(length=40), nullable=True),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cooloff_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('usage_count', sa.Integer(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_brand_id', sa.String(length=40), nullable=True),
    sa.Column('last_brand_cooloff_hours', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_gkeys_app_id_apps')),
    sa.ForeignKeyConstraint(['streamer_id'], ['streamers.id'], name=op.f('fk_gkeys_streamer_id_streamers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gkeys')),
    sa.UniqueConstraint('app_id', 'streamer_id', 'category', name=op.f('uq_gkeys_app_id_streamer_id_category'))
    )
    with op.batch_alter_table('gkeys', schema=None) as batch_op:
        batch_op.create_index('ix_gkeys_locked_campaign', ['app_id', 'locked_campaign_id'], unique=False)
        batch_op.create_index('ix_gkeys_status_cooloff', ['status', 'cooloff_until'], unique=False)

    op.create_table('energy',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('streamer_id', sa.String(length=40), nullable=False),
    sa.Column('current', sa.Integer(), nullable=False),
    sa.Column('maximum', sa.Integer(), nullable=False),
    sa.Column('daily_used', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('next_reset_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('regen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_energy_app_id_apps')),
    sa.ForeignKeyConstraint(['streamer_id'], ['streamers.id'], name=op.f('fk_energy_streamer_id_streamers')),
    sa.PrimaryKeyConstraint('app_id', 'streamer_id', name=op.f('pk_energy'))
    )
    with op.batch_alter_table('energy', schema=None) as batch_op:
        batch_op.create_index('ix_energy_next_reset', ['next_reset_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('energy', schema=None) as batch_op:
        batch_op.drop_index('ix_energy_next_reset')

    op.drop_table('energy')
    with op.batch_alter_table('gkeys', schema=None) as batch_op:
        batch_op.drop_index('ix_gkeys_locked_campaign')
        batch_op.drop_index('ix_gkeys_status_cooloff')

    op.drop_table('gkeys')
