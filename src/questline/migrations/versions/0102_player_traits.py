"""players: traits (set by the server key or an admin) apart from the player's own profile

Revision ID: 0102_player_traits
Revises: 0101_tenancy_sessions
Create Date: 2026-12-01 09:30:00

``players.attributes`` was writable by the player and read by gates (competition entry) and
partitioned boards. It is split:

- ``traits``: what gates, requirements and partitions read; only the server key or an app admin
  writes them. Existing ``attributes`` become traits, since integrators set them for exactly
  that use (a gym, a tier). Players could also write them until now: an integrator who fears
  a player set one of theirs can re-send the traits it owns with ``PUT /v1/players/{id}/account``.
- ``preferences`` (the player's own settings, read by no rule) and ``avatar_url`` start empty.

A competition's ``entry.attributes`` becomes ``entry.gating.traits`` (one requirement model).
"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0102_player_traits'
down_revision: str | None = '0101_tenancy_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = '0006_leaderboards'  # creates the competitions table

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
competitions = sa.table('competitions', sa.column('id', sa.String()), sa.column('config', JSON))


def _empty_json() -> str:
    return "'{}'::jsonb" if op.get_bind().dialect.name == 'postgresql' else "'{}'"


def upgrade() -> None:
    with op.batch_alter_table('players', schema=None) as batch_op:
        batch_op.add_column(sa.Column('avatar_url', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('preferences', JSON, nullable=True))
        batch_op.add_column(sa.Column('traits', JSON, nullable=True))
    op.execute(f"UPDATE players SET traits = COALESCE(attributes, {_empty_json()}), preferences = {_empty_json()}")
    with op.batch_alter_table('players', schema=None) as batch_op:
        batch_op.alter_column('preferences', existing_type=JSON, nullable=False)
        batch_op.alter_column('traits', existing_type=JSON, nullable=False)
        batch_op.drop_column('attributes')
    _move_entry_rules(_attributes_to_gating)


def downgrade() -> None:
    with op.batch_alter_table('players', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attributes', JSON, nullable=True))
    op.execute(f"UPDATE players SET attributes = COALESCE(traits, {_empty_json()})")
    with op.batch_alter_table('players', schema=None) as batch_op:
        batch_op.alter_column('attributes', existing_type=JSON, nullable=False)
        batch_op.drop_column('traits')
        batch_op.drop_column('preferences')
        batch_op.drop_column('avatar_url')
    _move_entry_rules(_gating_to_attributes)


def _move_entry_rules(change: Any) -> None:
    bind = op.get_bind()
    for comp_id, config in bind.execute(sa.select(competitions.c.id, competitions.c.config)).all():
        entry = (config or {}).get('entry')
        if isinstance(entry, dict) and change(entry):
            bind.execute(competitions.update().where(competitions.c.id == comp_id).values(config=config))


def _attributes_to_gating(entry: dict[str, Any]) -> bool:
    wanted = entry.pop('attributes', None)
    if not wanted:
        return wanted is not None
    gating = entry.get('gating') or {}
    gating['traits'] = {**wanted, **(gating.get('traits') or {})}
    entry['gating'] = gating
    return True


def _gating_to_attributes(entry: dict[str, Any]) -> bool:
    gating = entry.get('gating') or {}
    traits = gating.pop('traits', None)
    if traits is None:
        return False
    entry['attributes'] = traits
    return True
