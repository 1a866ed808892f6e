"""treasury: exchange rates

Revision ID: 0801_treasury_rates
Revises: 0001_foundation
Create Date: 2026-12-04 17:45:22

The treasury branch (money: rates, statements, deposits, withdrawals).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0801_treasury_rates'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('treasury',)
depends_on: str | Sequence[str] | None = '0301_ledger_wallets'


def upgrade() -> None:
    op.create_table('treasury_rates',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('base', sa.String(length=3), nullable=False),
    sa.Column('quote', sa.String(length=3), nullable=False),
    sa.Column('rate', sa.String(length=40), nullable=False),
    sa.Column('set_by', sa.String(length=160), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_treasury_rates_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_treasury_rates')),
    sa.UniqueConstraint('app_id', 'base', 'quote', name=op.f('uq_treasury_rates_app_id_base_quote'))
    )


def downgrade() -> None:
    op.drop_table('treasury_rates')
