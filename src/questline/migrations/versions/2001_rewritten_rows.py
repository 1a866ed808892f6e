"""pipeline: the tables the worker rewrites every batch keep 30% of each page free (PostgreSQL)

Revision ID: 2001_rewritten_rows
Revises: 0003_pipeline
Create Date: 2026-12-05 14:10:00

``fillfactor = 70`` on ``player_stats``, ``player_tracks``, ``xp_daily``, ``player_achievements``,
``challenge_progress`` and ``player_streaks`` (``kit.db.REWRITTEN_ROWS``): an updated row's new
version fits on its page, so PostgreSQL writes no index entry for it (a HOT update). Pages written
before keep what they hold until rewritten. SQLite has no such setting: nothing to do there.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '2001_rewritten_rows'
down_revision: str | None = '0003_pipeline'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ('0004_achievements_streaks', '0005_challenges')

TABLES = ('player_stats', 'player_tracks', 'xp_daily', 'player_achievements', 'challenge_progress',
          'player_streaks')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'ALTER TABLE {table} SET (fillfactor = 70)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in TABLES:
            op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
