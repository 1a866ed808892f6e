"""treasury withdrawals

Revision ID: 0803_treasury_withdrawals
Revises: 0802_treasury_payments
Create Date: 2026-12-04 17:58:28

On the treasury branch: withdrawals and each app's money settings (limits, approval thresholds).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0803_treasury_withdrawals'
down_revision: str | None = '0802_treasury_payments'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('treasury_settings',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_treasury_settings_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_treasury_settings'))
    )
    op.create_table('treasury_withdrawals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('owner_kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_method_id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('approvals_needed', sa.SmallInteger(), nullable=False),
    sa.Column('approvals', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('provider_ref', sa.String(length=128), nullable=True),
    sa.Column('reference', sa.String(length=128), nullable=True),
    sa.Column('failure_reason', sa.String(length=500), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('hold_transaction_id', sa.String(length=40), nullable=False),
    sa.Column('settle_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_treasury_withdrawals_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treasury_withdrawals')),
    sa.UniqueConstraint('app_id', 'provider', 'provider_ref', name=op.f('uq_treasury_withdrawals_app_id_provider_provider_ref'))
    )
    with op.batch_alter_table('treasury_withdrawals', schema=None) as batch_op:
        batch_op.create_index('ix_treasury_withdrawals_owner', ['app_id', 'owner_kind', 'owner_id', 'currency', 'created_at'], unique=False)
        batch_op.create_index('ix_treasury_withdrawals_status', ['app_id', 'status', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('treasury_withdrawals', schema=None) as batch_op:
        batch_op.drop_index('ix_treasury_withdrawals_status')
        batch_op.drop_index('ix_treasury_withdrawals_owner')

    op.drop_table('treasury_withdrawals')
    op.drop_table('treasury_settings')
