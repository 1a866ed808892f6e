"""pipeline: JetStream offsets applied per partition stream, partition leases, live workers

Revision ID: 0701_pipeline_stream
Revises: 0011_pipeline_partitions
Create Date: 2026-12-04 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0701_pipeline_stream'
down_revision: str | None = '0011_pipeline_partitions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'pipeline_offsets',
        sa.Column('stream', sa.String(length=120), nullable=False),
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.PrimaryKeyConstraint('stream'),
    )
    op.create_table(
        'pipeline_leases',
        sa.Column('stream', sa.String(length=120), nullable=False),
        sa.Column('owner', sa.String(length=120), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('stream'),
    )
    op.create_table(
        'pipeline_members',
        sa.Column('namespace', sa.String(length=120), nullable=False),
        sa.Column('worker', sa.String(length=120), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('namespace', 'worker'),
    )


def downgrade() -> None:
    op.drop_table('pipeline_members')
    op.drop_table('pipeline_leases')
    op.drop_table('pipeline_offsets')
