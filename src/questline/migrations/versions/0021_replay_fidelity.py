"""replay: an epoch per app for processes that hold derived state; person-made completions keep
their log position; automatic completions keep their ids across a replay

Revision ID: 0021_replay_fidelity
Revises: 0011_pipeline_partitions
Create Date: 2026-12-04 18:10:00

- ``replay_epochs``: raised by a replay's reset and by every batch of replayed events; a process
  with an in-process rank index rebuilds it when the epoch moves.
- ``challenge_completions.log_seq``: for a completion made by a person (claim approval,
  support), the player's last processed event when it was made. A replay counts it from that
  point of the log on, as live processing did. Existing rows have none and count from the start.
- ``challenge_replay_ids``: the ids of automatic completions a replay reset, given back to the
  completions the replay derives again.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021_replay_fidelity'
down_revision: str | None = '0011_pipeline_partitions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = '0005_challenges'


def upgrade() -> None:
    op.create_table('replay_epochs',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('app_id', name=op.f('pk_replay_epochs'))
    )
    op.create_table('challenge_replay_ids',
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('player_id', sa.String(length=128), nullable=False),
    sa.Column('challenge', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=24), nullable=False),
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('app_id', 'player_id', 'challenge', 'period_key', name=op.f('pk_challenge_replay_ids'))
    )
    with op.batch_alter_table('challenge_completions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('log_seq', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('challenge_completions', schema=None) as batch_op:
        batch_op.drop_column('log_seq')
    op.drop_table('challenge_replay_ids')
    op.drop_table('replay_epochs')
