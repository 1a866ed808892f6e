"""definitions: every version kept (history and diff)

Revision ID: 0901_definition_versions
Revises: 0003_pipeline
Create Date: 2026-12-04 21:30:00

Each definition's current body is copied in as its first known version: earlier ones were
overwritten before this table existed.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0901_definition_versions'
down_revision: str | None = '0003_pipeline'
branch_labels: str | Sequence[str] | None = ('definition_history',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('definition_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_definition_versions_app_id_apps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_definition_versions')),
    sa.UniqueConstraint('app_id', 'kind', 'key', 'version', name=op.f('uq_definition_versions_app_id_kind_key_version'))
    )
    op.execute("INSERT INTO definition_versions (app_id, kind, key, version, body, created_at) "
               "SELECT app_id, kind, key, version, body, updated_at FROM definitions")


def downgrade() -> None:
    op.drop_table('definition_versions')
