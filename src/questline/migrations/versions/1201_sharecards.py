"""sharecards: shareable cards of what players achieved, and whether each player's are public

Revision ID: 1201_sharecards
Revises: 0001_foundation
Create Date: 2026-12-04 21:20:00

The sharecards branch.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1201_sharecards'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = ('sharecards',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('share_cards',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=400), nullable=False),
    sa.Column('description', sa.String(length=600), nullable=False),
    sa.Column('site_name', sa.String(length=200), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_cards')),
    sa.UniqueConstraint('app_id', 'player_id', 'kind', 'subject',
                        name=op.f('uq_share_cards_app_id_player_id_kind_subject'))
    )
    op.create_table('share_card_settings',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', name=op.f('pk_share_card_settings'))
    )


def downgrade() -> None:
    op.drop_table('share_card_settings')
    op.drop_table('share_cards')
