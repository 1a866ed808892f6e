"""shop: inventories, inventory grants, orders, stock and per-player counters

Revision ID: 0008_shop
Revises: 0001_foundation
Create Date: 2026-11-21 00:00:01

The shop branch (inventory and shop).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008_shop'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('shop',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inventory_items',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('item', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('quantity >= 0', name=op.f('ck_inventory_items_non_negative')),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'item', name=op.f('pk_inventory_items'))
    )
    op.create_table('inventory_grants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('item', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('reference', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_grants')),
    sa.UniqueConstraint('app_id', 'key', name=op.f('uq_inventory_grants_app_id_key'))
    )
    with op.batch_alter_table('inventory_grants', schema=None) as batch_op:
        batch_op.create_index('ix_inventory_grants_player', ['app_id', 'player_id', 'id'], unique=False)

    op.create_table('shop_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('item', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=32), nullable=False),
    sa.Column('unit_price', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('external', sa.Boolean(), nullable=False),
    sa.Column('hold_id', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_orders'))
    )
    with op.batch_alter_table('shop_orders', schema=None) as batch_op:
        batch_op.create_index('ix_shop_orders_pending', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_shop_orders_player', ['app_id', 'player_id', 'id'], unique=False)

    op.create_table('shop_counters',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('item', sa.String(length=64), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('count >= 0', name=op.f('ck_shop_counters_non_negative')),
    sa.PrimaryKeyConstraint('app_id', 'item', 'player_id', name=op.f('pk_shop_counters'))
    )


def downgrade() -> None:
    op.drop_table('shop_counters')
    with op.batch_alter_table('shop_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_shop_orders_player')
        batch_op.drop_index('ix_shop_orders_pending')

    op.drop_table('shop_orders')
    with op.batch_alter_table('inventory_grants', schema=None) as batch_op:
        batch_op.drop_index('ix_inventory_grants_player')

    op.drop_table('inventory_grants')
    op.drop_table('inventory_items')
