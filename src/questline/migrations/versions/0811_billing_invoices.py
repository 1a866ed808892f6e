"""billing: invoices, credit notes, plans

Revision ID: 0811_billing_invoices
Revises: 0804_treasury_kyc
Create Date: 2026-12-04 21:21:21

The billing branch (on the treasury): invoices from campaign spend, numbered at finalization, credit
notes, plans and subscriptions, reminders sent.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0811_billing_invoices'
down_revision: str | None = '0804_treasury_kyc'
branch_labels: str | Sequence[str] | None = ('billing',)
depends_on: str | Sequence[str] | None = '0302_sponsors'


def upgrade() -> None:
    op.create_table('billing_counters',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('series', sa.String(length=40), nullable=False),
    sa.Column('next', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_counters_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', 'series', name=op.f('pk_billing_counters'))
    )
    op.create_table('billing_plans',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('monthly_fee', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('usage_bps', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_plans_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_plans'))
    )
    with op.batch_alter_table('billing_plans', schema=None) as batch_op:
        batch_op.create_index('ix_billing_plans_app', ['app_id', 'id'], unique=False)

    op.create_table('billing_runs',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_runs_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', 'period', name=op.f('pk_billing_runs'))
    )
    op.create_table('billing_settings',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_settings_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_billing_settings'))
    )
    op.create_table('billing_invoices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period_key', sa.String(length=64), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=True),
    sa.Column('bill_to', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('tax_country', sa.String(length=2), nullable=True),
    sa.Column('tax_rate_bps', sa.Integer(), nullable=False),
    sa.Column('subtotal', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tax', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('total', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('prepaid', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('credited', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('paid', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_due', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('payment_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finalized_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_due >= 0', name=op.f('ck_billing_invoices_due_non_negative')),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_invoices_app_id_apps')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_billing_invoices_brand_id_brands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_invoices')),
    sa.UniqueConstraint('app_id', 'brand_id', 'period_key', 'currency', name=op.f('uq_billing_invoices_app_id_brand_id_period_key_currency')),
    sa.UniqueConstraint('app_id', 'number', name=op.f('uq_billing_invoices_app_id_number'))
    )
    with op.batch_alter_table('billing_invoices', schema=None) as batch_op:
        batch_op.create_index('ix_billing_invoices_brand', ['app_id', 'brand_id', 'id'], unique=False)
        batch_op.create_index('ix_billing_invoices_status', ['app_id', 'status', 'id'], unique=False)

    op.create_table('billing_subscriptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('plan_id', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_subscriptions_app_id_apps')),
    sa.ForeignKeyConstraint(['brand_id'], ['brands.id'], name=op.f('fk_billing_subscriptions_brand_id_brands')),
    sa.ForeignKeyConstraint(['plan_id'], ['billing_plans.id'], name=op.f('fk_billing_subscriptions_plan_id_billing_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_subscriptions')),
    sa.UniqueConstraint('app_id', 'brand_id', name=op.f('uq_billing_subscriptions_app_id_brand_id'))
    )
    op.create_table('billing_credit_notes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('line_id', sa.String(length=40), nullable=True),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_credit_notes_app_id_apps')),
    sa.ForeignKeyConstraint(['invoice_id'], ['billing_invoices.id'], name=op.f('fk_billing_credit_notes_invoice_id_billing_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_credit_notes')),
    sa.UniqueConstraint('app_id', 'number', name=op.f('uq_billing_credit_notes_app_id_number'))
    )
    with op.batch_alter_table('billing_credit_notes', schema=None) as batch_op:
        batch_op.create_index('ix_billing_credit_notes_invoice', ['invoice_id', 'id'], unique=False)

    op.create_table('billing_invoice_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('campaign_id', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('prepaid', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_billing_invoice_lines_app_id_apps')),
    sa.ForeignKeyConstraint(['invoice_id'], ['billing_invoices.id'], name=op.f('fk_billing_invoice_lines_invoice_id_billing_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_invoice_lines'))
    )
    with op.batch_alter_table('billing_invoice_lines', schema=None) as batch_op:
        batch_op.create_index('ix_billing_invoice_lines_campaign', ['app_id', 'campaign_id'], unique=False)
        batch_op.create_index('ix_billing_invoice_lines_invoice', ['invoice_id', 'position'], unique=False)

    op.create_table('billing_reminders',
    sa.Column('invoice_id', sa.String(length=40), nullable=False),
    sa.Column('step', sa.SmallInteger(), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['billing_invoices.id'], name=op.f('fk_billing_reminders_invoice_id_billing_invoices')),
    sa.PrimaryKeyConstraint('invoice_id', 'step', name=op.f('pk_billing_reminders'))
    )


def downgrade() -> None:
    op.drop_table('billing_reminders')
    with op.batch_alter_table('billing_invoice_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_invoice_lines_invoice')
        batch_op.drop_index('ix_billing_invoice_lines_campaign')

    op.drop_table('billing_invoice_lines')
    with op.batch_alter_table('billing_credit_notes', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_credit_notes_invoice')

    op.drop_table('billing_credit_notes')
    op.drop_table('billing_subscriptions')
    with op.batch_alter_table('billing_invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_invoices_status')
        batch_op.drop_index('ix_billing_invoices_brand')

    op.drop_table('billing_invoices')
    op.drop_table('billing_settings')
    op.drop_table('billing_runs')
    with op.batch_alter_table('billing_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_plans_app')

    op.drop_table('billing_plans')
    op.drop_table('billing_counters')
