"""finance desk

Revision ID: 0851_finance_desk
Revises: 0804_treasury_kyc
Create Date: 2026-12-04 21:20:00

The finance branch (on the treasury's): fee schedules, desk settings, the review queue of large
transactions, disputes (impressions, chargebacks, invoice lines) and their evidence.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0851_finance_desk'
down_revision: str | None = '0804_treasury_kyc'
branch_labels: str | Sequence[str] | None = ('finance',)
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('finance_fee_schedules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('commission_bps', sa.Integer(), nullable=False),
    sa.Column('by_type', _JSON, nullable=False),
    sa.Column('fixed_fees', _JSON, nullable=False),
    sa.Column('set_by', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_finance_fee_schedules_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_fee_schedules'))
    )
    with op.batch_alter_table('finance_fee_schedules', schema=None) as batch_op:
        batch_op.create_index('ix_finance_fee_schedules_app', ['app_id', 'version'], unique=False)

    op.create_table('finance_settings',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('body', _JSON, nullable=False),
    sa.Column('scanned_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_finance_settings_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_finance_settings'))
    )

    op.create_table('finance_reviews',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('transaction_id', sa.String(length=40), nullable=False),
    sa.Column('account', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', _BIG, nullable=False),
    sa.Column('reference', _JSON, nullable=True),
    sa.Column('transacted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('reviewed_by', sa.String(length=160), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_finance_reviews_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_reviews')),
    sa.UniqueConstraint('app_id', 'transaction_id', name=op.f('uq_finance_reviews_app_id_transaction_id'))
    )
    with op.batch_alter_table('finance_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_finance_reviews_status', ['app_id', 'status', 'id'], unique=False)

    op.create_table('finance_disputes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('brand_id', sa.String(length=40), nullable=False),
    sa.Column('streamer_id', sa.String(length=40), nullable=True),
    sa.Column('campaign_id', sa.String(length=40), nullable=True),
    sa.Column('participation_id', sa.String(length=40), nullable=True),
    sa.Column('subject_ref', sa.String(length=128), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('impressions', _BIG, nullable=False),
    sa.Column('amount', _BIG, nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('opened_by', sa.String(length=160), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=True),
    sa.Column('decision', _JSON, nullable=True),
    sa.Column('refunded', _BIG, nullable=False),
    sa.Column('from_revenue', _BIG, nullable=False),
    sa.Column('from_streamer', _BIG, nullable=False),
    sa.Column('loss', _BIG, nullable=False),
    sa.Column('transactions', _JSON, nullable=False),
    sa.Column('decided_by', sa.String(length=160), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_finance_disputes_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_disputes')),
    sa.UniqueConstraint('app_id', 'kind', 'subject_ref', name=op.f('uq_finance_disputes_app_id_kind_subject_ref'))
    )
    with op.batch_alter_table('finance_disputes', schema=None) as batch_op:
        batch_op.create_index('ix_finance_disputes_brand', ['app_id', 'brand_id', 'id'], unique=False)
        batch_op.create_index('ix_finance_disputes_status', ['app_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_finance_disputes_streamer', ['app_id', 'streamer_id', 'id'], unique=False)

    op.create_table('finance_dispute_evidence',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('dispute_id', sa.String(length=40), nullable=False),
    sa.Column('party', sa.String(length=16), nullable=False),
    sa.Column('author', sa.String(length=160), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('links', _JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_finance_dispute_evidence_app_id_apps')),
    sa.ForeignKeyConstraint(['dispute_id'], ['finance_disputes.id'],
                            name=op.f('fk_finance_dispute_evidence_dispute_id_finance_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_dispute_evidence'))
    )
    with op.batch_alter_table('finance_dispute_evidence', schema=None) as batch_op:
        batch_op.create_index('ix_finance_dispute_evidence_dispute', ['dispute_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('finance_dispute_evidence', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_dispute_evidence_dispute')
    op.drop_table('finance_dispute_evidence')
    with op.batch_alter_table('finance_disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_disputes_streamer')
        batch_op.drop_index('ix_finance_disputes_status')
        batch_op.drop_index('ix_finance_disputes_brand')
    op.drop_table('finance_disputes')
    with op.batch_alter_table('finance_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_reviews_status')
    op.drop_table('finance_reviews')
    op.drop_table('finance_settings')
    with op.batch_alter_table('finance_fee_schedules', schema=None) as batch_op:
        batch_op.drop_index('ix_finance_fee_schedules_app')
    op.drop_table('finance_fee_schedules')
