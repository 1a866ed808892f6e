"""referrals: codes, referrals (status, fraud flags, review), milestones reached

Revision ID: 0009_referrals
Revises: 0001_foundation
Create Date: 2026-11-21 00:30:00

The referrals branch.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0009_referrals'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('referrals',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('referral_codes',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('device_fingerprint', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', name=op.f('pk_referral_codes')),
    sa.UniqueConstraint('app_id', 'code', name=op.f('uq_referral_codes_app_id_code'))
    )
    op.create_table('referrals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('referrer_id', sa.String(length=128), nullable=False),
    sa.Column('referee_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('fraud_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('review', sa.String(length=16), nullable=False),
    sa.Column('reviewed_by', sa.String(length=160), nullable=True),
    sa.Column('review_note', sa.String(length=500), nullable=True),
    sa.Column('email_hash', sa.String(length=64), nullable=True),
    sa.Column('email_domain', sa.String(length=255), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('device_fingerprint', sa.String(length=255), nullable=True),
    sa.Column('attribution', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('revenue', sa.BigInteger(), nullable=False),
    sa.Column('referrer_points', sa.BigInteger(), nullable=False),
    sa.Column('referee_points', sa.BigInteger(), nullable=False),
    sa.Column('rewarded', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signed_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_client_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('churned_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals')),
    sa.UniqueConstraint('app_id', 'referee_id', name=op.f('uq_referrals_app_id_referee_id'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_device', ['app_id', 'device_fingerprint'], unique=False)
        batch_op.create_index('ix_referrals_email', ['app_id', 'email_hash'], unique=False)
        batch_op.create_index('ix_referrals_ip', ['app_id', 'ip', 'created_at'], unique=False)
        batch_op.create_index('ix_referrals_referrer', ['app_id', 'referrer_id', 'status'], unique=False)
        batch_op.create_index('ix_referrals_review', ['app_id', 'review', 'id'], unique=False)

    op.create_table('referral_milestones',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('referrals', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('badge', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=100), nullable=True),
    sa.Column('transaction_id', sa.String(length=40), nullable=True),
    sa.Column('awarded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'tier', name=op.f('pk_referral_milestones'))
    )


def downgrade() -> None:
    op.drop_table('referral_milestones')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_review')
        batch_op.drop_index('ix_referrals_referrer')
        batch_op.drop_index('ix_referrals_ip')
        batch_op.drop_index('ix_referrals_email')
        batch_op.drop_index('ix_referrals_device')

    op.drop_table('referrals')
    op.drop_table('referral_codes')
