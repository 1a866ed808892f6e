"""players: time zone hopping closed: player time zone changes rate-limited, counted periods keep
their UTC span

Revision ID: 0502_period_spans
Revises: 0501_community_trust
Create Date: 2026-12-04 18:15:00

- ``players.timezone_changed_at``: when the player last changed their own time zone (a player
  token may change it once per ``QUESTLINE_TIMEZONE_CHANGE_INTERVAL_SECONDS``).
- ``challenge_completions.period_start`` / ``period_end``: the UTC span of the local day, week
  or month a completion counted for; a later period overlapping it never completes again.
- ``player_streaks.covered_until``: the UTC end of the last period a streak counted; an instant
  before it never counts a new period.
- ``xp_daily.starts_at`` / ``ends_at``: the UTC span of the local day an XP rule's daily cap
  counted; another time zone's day overlapping it shares that cap.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0502_period_spans'
down_revision: str | None = '0501_community_trust'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0003_pipeline', '0004_achievements_streaks', '0005_challenges')


def upgrade() -> None:
    with op.batch_alter_table('players', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone_changed_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('challenge_completions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_start', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('period_end', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('player_streaks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('covered_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('xp_daily', schema=None) as batch_op:
        batch_op.add_column(sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('xp_daily', schema=None) as batch_op:
        batch_op.drop_column('ends_at')
        batch_op.drop_column('starts_at')
    with op.batch_alter_table('player_streaks', schema=None) as batch_op:
        batch_op.drop_column('covered_until')
    with op.batch_alter_table('challenge_completions', schema=None) as batch_op:
        batch_op.drop_column('period_end')
        batch_op.drop_column('period_start')
    with op.batch_alter_table('players', schema=None) as batch_op:
        batch_op.drop_column('timezone_changed_at')
