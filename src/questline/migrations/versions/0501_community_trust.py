"""players: community starter rewards bounded per app, admin grants as invitations

Revision ID: 0501_community_trust
Revises: 0010_communities
Create Date: 2026-12-04 18:00:00

- ``apps.community_starter_reward_max``: the largest starter reward a community of the app may
  pay (set by an app admin; 1000 by default).
- ``community_members.admin_invited_by``: a community admin's grant of the admin role to
  another player waits here until that player accepts or declines it.
- Starter rewards a player set on a community they created are cleared: only the server key or
  an app admin sets one now.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0501_community_trust'
down_revision: str | None = '0010_communities'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('community_starter_reward_max', sa.BigInteger(), nullable=False,
                                      server_default='1000'))
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin_invited_by', sa.String(length=128), nullable=True))
    # Player-made communities (created_by a player token) lose the reward their creator chose.
    op.execute("UPDATE communities SET starter_reward = NULL WHERE created_by LIKE 'player:%'")


def downgrade() -> None:
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.drop_column('admin_invited_by')
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('community_starter_reward_max')
