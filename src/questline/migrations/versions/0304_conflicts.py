"""conflicts: conflict rules

Revision ID: 0304_conflicts
Revises: 0001_foundation
Create Date: 2026-11-22 09:00:00

The conflicts branch (the sponsorship marketplace).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0304_conflicts'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('conflicts',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('conflict_rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('applies_on', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_conflict_rules_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conflict_rules'))
    )
    with op.batch_alter_table('conflict_rules', schema=None) as batch_op:
        batch_op.create_index('ix_conflict_rules_app', ['app_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conflict_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_conflict_rules_app')

    op.drop_table('conflict_rules')
