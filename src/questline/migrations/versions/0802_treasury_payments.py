"""treasury payments

Revision ID: 0802_treasury_payments
Revises: 0801_treasury_rates
Create Date: 2026-12-04 17:50:57

On the treasury branch: payment methods (sealed), deposits, provider webhook events.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0802_treasury_payments'
down_revision: str | None = '0801_treasury_rates'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('treasury_webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treasury_webhook_events')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_treasury_webhook_events_provider_event_id'))
    )
    op.create_table('treasury_deposits',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('owner_kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('provider_ref', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('instructions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('confirmation', sa.String(length=128), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('transaction_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('settled_by', sa.String(length=160), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_treasury_deposits_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treasury_deposits')),
    sa.UniqueConstraint('app_id', 'provider', 'provider_ref', name=op.f('uq_treasury_deposits_app_id_provider_provider_ref'))
    )
    with op.batch_alter_table('treasury_deposits', schema=None) as batch_op:
        batch_op.create_index('ix_treasury_deposits_owner', ['app_id', 'owner_kind', 'owner_id', 'id'], unique=False)

    op.create_table('treasury_payment_methods',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('owner_kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sealed', sa.Text(), nullable=False),
    sa.Column('masked', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_treasury_payment_methods_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treasury_payment_methods'))
    )
    with op.batch_alter_table('treasury_payment_methods', schema=None) as batch_op:
        batch_op.create_index('ix_treasury_payment_methods_owner', ['app_id', 'owner_kind', 'owner_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('treasury_payment_methods', schema=None) as batch_op:
        batch_op.drop_index('ix_treasury_payment_methods_owner')

    op.drop_table('treasury_payment_methods')
    with op.batch_alter_table('treasury_deposits', schema=None) as batch_op:
        batch_op.drop_index('ix_treasury_deposits_owner')

    op.drop_table('treasury_deposits')
    op.drop_table('treasury_webhook_events')
