"""audit: the audit log of changes made by server keys and admins

Revision ID: 0201_audit
Revises: 0001_foundation
Create Date: 2026-12-04 15:00:00

The audit branch.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0201_audit'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('audit',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=True),
    sa.Column('org_id', sa.String(length=40), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('target', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_app', 'audit_log', ['app_id', 'id'], unique=False)
    op.create_index('ix_audit_log_org', 'audit_log', ['org_id', 'id'], unique=False)
    op.create_index('ix_audit_log_app_actor', 'audit_log', ['app_id', 'actor_id', 'id'], unique=False)
    op.create_index('ix_audit_log_app_action', 'audit_log', ['app_id', 'action', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_log_app_action', table_name='audit_log')
    op.drop_index('ix_audit_log_app_actor', table_name='audit_log')
    op.drop_index('ix_audit_log_org', table_name='audit_log')
    op.drop_index('ix_audit_log_app', table_name='audit_log')
    op.drop_table('audit_log')
