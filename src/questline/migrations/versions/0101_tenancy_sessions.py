"""tenancy: admin sessions as refresh-token families; player token epochs

Revision ID: 0101_tenancy_sessions
Revises: 0001_foundation
Create Date: 2026-12-01 09:00:00

Each refresh token belongs to a family (the admin session it continues); tokens issued before
this revision each start their own family. ``player_token_epochs`` holds the epoch that player
tokens must carry (revoking a player's tokens moves it on).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0101_tenancy_sessions'
down_revision: str | None = '0001_foundation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('family_id', sa.String(length=40), nullable=True))
    op.execute("UPDATE refresh_tokens SET family_id = id")
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.alter_column('family_id', existing_type=sa.String(length=40), nullable=False)
        batch_op.create_index(batch_op.f('ix_refresh_tokens_family_id'), ['family_id'], unique=False)

    op.create_table('player_token_epochs',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], name=op.f('fk_player_token_epochs_app_id_apps')),
    sa.PrimaryKeyConstraint('app_id', 'player_id', name=op.f('pk_player_token_epochs'))
    )


def downgrade() -> None:
    op.drop_table('player_token_epochs')
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_family_id'))
        batch_op.drop_column('family_id')
