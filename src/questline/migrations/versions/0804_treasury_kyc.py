"""treasury kyc

Revision ID: 0804_treasury_kyc
Revises: 0803_treasury_withdrawals
Create Date: 2026-12-04 18:15:10

On the treasury branch: KYC cases and their identity documents (sealed).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0804_treasury_kyc'
down_revision: str | None = '0803_treasury_withdrawals'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('kyc_cases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('risk_score', sa.SmallInteger(), nullable=False),
    sa.Column('risk_factors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('submissions', sa.SmallInteger(), nullable=False),
    sa.Column('reviewer', sa.String(length=160), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_kyc_cases_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kyc_cases')),
    sa.UniqueConstraint('app_id', 'subject_kind', 'subject_id', name=op.f('uq_kyc_cases_app_id_subject_kind_subject_id'))
    )
    with op.batch_alter_table('kyc_cases', schema=None) as batch_op:
        batch_op.create_index('ix_kyc_cases_status', ['app_id', 'status', 'id'], unique=False)

    op.create_table('kyc_documents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('sealed', sa.Text(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_kyc_documents_app_id_apps')),
    sa.ForeignKeyConstraint(['case_id'], ['kyc_cases.id'], name=op.f('fk_kyc_documents_case_id_kyc_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kyc_documents'))
    )
    with op.batch_alter_table('kyc_documents', schema=None) as batch_op:
        batch_op.create_index('ix_kyc_documents_case', ['case_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('kyc_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_kyc_documents_case')

    op.drop_table('kyc_documents')
    with op.batch_alter_table('kyc_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_kyc_cases_status')

    op.drop_table('kyc_cases')
