"""sponsors: brands, brand members, streamers, marketplace settings

Revision ID: 0302_sponsors
Revises: 0001_foundation
Create Date: 2026-11-22 09:00:00

The sponsors branch (the sponsorship marketplace).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0302_sponsors'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('sponsors',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('market_settings',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_market_settings_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_market_settings'))
    )
    op.create_table('brands',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('company_name', sa.String(length=200), nullable=False),
    sa.Column('industry', sa.String(length=100), nullable=False),
    sa.Column('contact_person', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('billing', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('marketing', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_brands_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brands'))
    )
    with op.batch_alter_table('brands', schema=None) as batch_op:
        batch_op.create_index('ix_brands_app_id_id', ['app_id', 'id'], unique=False)

    op.create_table('brand_members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_brand_members_app_id_apps')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_brand_members_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_members')),
    sa.UniqueConstraint('app_id', 'email', name=op.f('uq_brand_members_app_id_email'))
    )
    with op.batch_alter_table('brand_members', schema=None) as batch_op:
        batch_op.create_index('ix_brand_members_brand', ['brand_id'], unique=False)

    op.create_table('streamers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('content_categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('platforms', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('demographics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('bank_sealed', sa.Text(), nullable=True),
    sa.Column('bank_hint', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_streamers_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_streamers')),
    sa.UniqueConstraint('app_id', 'email', name=op.f('uq_streamers_app_id_email')),
    sa.UniqueConstraint('app_id', 'player_id', name=op.f('uq_streamers_app_id_player_id'))
    )


def downgrade() -> None:
    op.drop_table('streamers')
    with op.batch_alter_table('brand_members', schema=None) as batch_op:
        batch_op.drop_index('ix_brand_members_brand')

    op.drop_table('brand_members')
    with op.batch_alter_table('brands', schema=None) as batch_op:
        batch_op.drop_index('ix_brands_app_id_id')

    op.drop_table('brands')
    op.drop_table('market_settings')
