"""ledger wallets: fiat currencies with their minor units, and sub-accounts (held, pending) per owner

Revision ID: 0301_ledger_wallets
Revises: 0002_ledger
Create Date: 2026-11-22 09:00:00

On the ledger branch. Existing currencies are points (exponent 0); existing accounts are their
owner's main account (sub "").
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0301_ledger_wallets'
down_revision: str | None = '0002_ledger'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ledger_currencies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='points', nullable=False))
        batch_op.add_column(sa.Column('exponent', sa.SmallInteger(), server_default='0', nullable=False))

    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sub', sa.String(length=64), server_default='', nullable=False))
        batch_op.drop_constraint('uq_ledger_accounts_app_id_owner_kind_owner_id_currency', type_='unique')
        batch_op.create_unique_constraint('uq_ledger_accounts_app_id_owner_kind_owner_id_currency_sub',
                                          ['app_id', 'owner_kind', 'owner_id', 'currency', 'sub'])


def downgrade() -> None:
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_ledger_accounts_app_id_owner_kind_owner_id_currency_sub', type_='unique')
        batch_op.create_unique_constraint('uq_ledger_accounts_app_id_owner_kind_owner_id_currency',
                                          ['app_id', 'owner_kind', 'owner_id', 'currency'])
        batch_op.drop_column('sub')

    with op.batch_alter_table('ledger_currencies', schema=None) as batch_op:
        batch_op.drop_column('exponent')
        batch_op.drop_column('kind')
