"""ledger: currencies, accounts, transactions, postings, holds

Revision ID: 0002_ledger
Revises: 0001_foundation
Create Date: 2026-11-20 23:36:21.861463

The ledger branch. Only the ledger package writes these tables.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002_ledger'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('ledger',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_currencies',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_ledger_currencies_app_id_apps')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_ledger_currencies')),
    sa.UniqueConstraint('app_id', 'code', name=op.f('uq_ledger_currencies_app_id_code'))
    )
    op.create_table('ledger_transactions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('actor', sa.String(length=160), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_ledger_transactions_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transactions')),
    sa.UniqueConstraint('app_id', 'idempotency_key', name=op.f('uq_ledger_transactions_app_id_idempotency_key'))
    )
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transactions_app_created', ['app_id', 'created_at'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('owner_kind', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.String(length=128), nullable=False),
    sa.Column('currency', sa.String(length=32), nullable=False),
    sa.Column('allow_negative', sa.Boolean(), nullable=False),
    sa.Column('balance', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lifetime_credited', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lifetime_debited', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('allow_negative OR balance >= 0', name=op.f('ck_ledger_accounts_non_negative')),
    sa.ForeignKeyConstraint(['app_id', 'currency'], ['ledger_currencies.app_id', 'ledger_currencies.code'], name='fk_ledger_accounts_currency'),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_ledger_accounts_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('app_id', 'owner_kind', 'owner_id', 'currency', name=op.f('uq_ledger_accounts_app_id_owner_kind_owner_id_currency'))
    )
    op.create_table('ledger_holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('currency', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('release_reason', sa.String(length=16), nullable=True),
    sa.Column('reference', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('hold_transaction_id', sa.String(length=40), nullable=False),
    sa.Column('settle_transaction_id', sa.String(length=40), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_ledger_holds_app_id_apps')),
    sa.ForeignKeyConstraint(['hold_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_holds_hold_transaction_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['settle_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_holds_settle_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_holds')),
    sa.UniqueConstraint('hold_transaction_id', name=op.f('uq_ledger_holds_hold_transaction_id'))
    )
    with op.batch_alter_table('ledger_holds', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_holds_status_expires', ['status', 'expires_at'], unique=False)

    op.create_table('ledger_postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transaction_id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('balance_before', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('balance_after', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_ledger_postings_non_zero')),
    sa.CheckConstraint('balance_after = balance_before + amount', name=op.f('ck_ledger_postings_balance_change')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_postings_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_postings_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_postings')),
    sa.UniqueConstraint('account_id', 'account_seq', name=op.f('uq_ledger_postings_account_id_account_seq'))
    )
    with op.batch_alter_table('ledger_postings', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_postings_account_id_id', ['account_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_postings_transaction_id'), ['transaction_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ledger_postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_postings_transaction_id'))
        batch_op.drop_index('ix_ledger_postings_account_id_id')

    op.drop_table('ledger_postings')
    with op.batch_alter_table('ledger_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_holds_status_expires')

    op.drop_table('ledger_holds')
    op.drop_table('ledger_accounts')
    with op.batch_alter_table('ledger_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_transactions_app_created')

    op.drop_table('ledger_transactions')
    op.drop_table('ledger_currencies')
