"""assets: campaign creatives

Revision ID: 0306_assets
Revises: 0001_foundation
Create Date: 2026-11-22 09:00:00

The assets branch (the sponsorship marketplace).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0306_assets'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('assets',)
depends_on: str | Sequence[str] | None = '0302_sponsors'


def upgrade() -> None:
    op.create_table('campaign_assets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('overlay_path', sa.String(length=300), nullable=True),
    sa.Column('overlay_width', sa.Integer(), nullable=True),
    sa.Column('overlay_height', sa.Integer(), nullable=True),
    sa.Column('uploaded_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_campaign_assets_app_id_apps')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_campaign_assets_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_assets'))
    )
    with op.batch_alter_table('campaign_assets', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_assets_campaign', ['app_id', 'campaign_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campaign_assets', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_assets_campaign')

    op.drop_table('campaign_assets')
