"""communities: referral links with click tracking, member codes, starter rewards of every kind

Revision ID: 1001_reach_links
Revises: 0502_period_spans
Create Date: 2026-12-04 21:40:00

- ``community_members.member_code``: each member's short code in their own link (existing
  members get one here), unique in the community; ``click_id``: the link click that attributed
  the join; ``starter_reference``: what the starter reward became (txn_…, ful_…, inventory).
- ``link_clicks``, ``link_visits`` and ``link_salts``: clicks of the public links, the day's
  visitors (to count each once a day) and the day's salt of visitor hashes.
"""
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '1001_reach_links'
down_revision: str | None = '0502_period_spans'
branch_labels: str | Sequence[str] | None = ('reach_links',)
depends_on: str | Sequence[str] | None = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def upgrade() -> None:
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_code', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('click_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('starter_reference', sa.String(length=200), nullable=True))
    bind = op.get_bind()
    members = sa.table('community_members', sa.column('community_id'), sa.column('player_id'),
                       sa.column('member_code'))
    for community_id, player_id in bind.execute(sa.select(members.c.community_id, members.c.player_id)).all():
        code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        bind.execute(members.update().where(members.c.community_id == community_id,
                                            members.c.player_id == player_id).values(member_code=code))
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_community_members_community_id_member_code'),
                                          ['community_id', 'member_code'])
    op.create_table('link_clicks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.Column('community_id', sa.String(length=40), nullable=False),
    sa.Column('member_code', sa.String(length=16), nullable=True),
    sa.Column('referrer_id', sa.String(length=128), nullable=True),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('hints', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('joined_player_id', sa.String(length=128), nullable=True),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('joined_day', sa.String(length=10), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_link_clicks'))
    )
    op.create_index('ix_link_clicks_day', 'link_clicks', ['community_id', 'day'], unique=False)
    op.create_index('ix_link_clicks_joined', 'link_clicks', ['community_id', 'joined_day'], unique=False)
    op.create_table('link_visits',
    sa.Column('community_id', sa.String(length=40), nullable=False),
    sa.Column('link', sa.String(length=16), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('visitor', sa.String(length=64), nullable=False),
    sa.Column('app_id', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('community_id', 'link', 'day', 'visitor', name=op.f('pk_link_visits'))
    )
    op.create_table('link_salts',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_link_salts'))
    )


def downgrade() -> None:
    op.drop_table('link_salts')
    op.drop_table('link_visits')
    op.drop_index('ix_link_clicks_joined', table_name='link_clicks')
    op.drop_index('ix_link_clicks_day', table_name='link_clicks')
    op.drop_table('link_clicks')
    with op.batch_alter_table('community_members', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_community_members_community_id_member_code'), type_='unique')
        batch_op.drop_column('starter_reference')
        batch_op.drop_column('click_id')
        batch_op.drop_column('member_code')
