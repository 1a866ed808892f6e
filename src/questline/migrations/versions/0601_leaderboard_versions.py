"""leaderboards: entry versions move past every version an index may hold from before the fix

Revision ID: 0601_leaderboard_versions
Revises: 0006_leaderboards
Create Date: 2026-12-04 18:00:00

Before this change the entry upsert never raised ``version`` in the database, while the score
keeper sent rank indexes ``version + 1`` and up (one more per change within a batch, so at most
one more than a batch's size). Raising every stored version by more than any batch can hold
makes the database's entries newer than anything a shared (Redis) index kept, so the rebuild
that follows (the index's ready marker was renamed with this change) replaces stale scores.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0601_leaderboard_versions'
down_revision: str | None = '0006_leaderboards'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUMP = 1_000_000  # > the largest worker batch (10,000 events) plus one


def upgrade() -> None:
    op.execute(f"UPDATE leaderboard_entries SET version = version + {BUMP}")


def downgrade() -> None:
    pass  # versions only ever rise: nothing to undo
