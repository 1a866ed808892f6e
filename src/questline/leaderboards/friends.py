"""Friendships (mutual, at most ``MAX_FRIENDS`` per player) and the cache reads use to know them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.cache import CacheSpec
from questline.kit.clock import Clock
from questline.kit.errors import Unprocessable
from questline.kit.runtime import Runtime
from questline.leaderboards import repository as repo
from questline.leaderboards.boards import forget_after_commit
from questline.leaderboards.schemas import FriendsOut
from questline.players import service as players

MAX_FRIENDS = 1000

# Each player's friends, as reads need them (friends boards, ``friends_only`` players): held in
# process, dropped (here and in every process) when a friendship of theirs begins or ends.
FRIENDS = CacheSpec[tuple[str, str], tuple[str, ...]]("leaderboards.friends", max_entries=50_000)


async def cached_friends(session: AsyncSession, app_id: str, player_id: str) -> tuple[str, ...]:
    async def load() -> tuple[str, ...]:
        return tuple(await repo.friends_of(session, app_id, player_id))

    return await FRIENDS.get(session, (app_id, player_id), load)


async def befriend(session: AsyncSession, clock: Clock, app_id: str, player_id: str, friend_id: str) -> FriendsOut:
    if player_id == friend_id:
        raise Unprocessable("a player cannot befriend themself", code="cannot_befriend_self")
    await players.ensure_players(session, clock, app_id, [player_id, friend_id])
    current = set(await repo.friends_of(session, app_id, player_id))
    if friend_id not in current:
        for who in (player_id, friend_id):
            if await repo.count_friends(session, app_id, who) >= MAX_FRIENDS:
                raise Unprocessable(f"player {who} already has {MAX_FRIENDS} friends", code="too_many_friends")
        await repo.add_friendship(session, app_id, player_id, friend_id, clock.now())
        FRIENDS.invalidate(session, (app_id, player_id), (app_id, friend_id))
    return await friends_of(session, app_id, player_id)


async def unfriend(session: AsyncSession, app_id: str, player_id: str, friend_id: str) -> None:
    await players.get_player(session, app_id, player_id)
    await repo.remove_friendship(session, app_id, player_id, friend_id)
    FRIENDS.invalidate(session, (app_id, player_id), (app_id, friend_id))


async def friends_of(session: AsyncSession, app_id: str, player_id: str) -> FriendsOut:
    await players.get_player(session, app_id, player_id)
    return FriendsOut(player_id=player_id, friends=await repo.friends_of(session, app_id, player_id))


async def forget_player(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str) -> None:
    """A player is being erased (called before their rows go): their friends' cached lists and
    their own are dropped, and once the erasure commits the app's rank index is rebuilt without them."""
    friends = await repo.friends_of(session, app_id, player_id)
    FRIENDS.invalidate(session, (app_id, player_id), *[(app_id, friend) for friend in friends])
    forget_after_commit(session, runtime, app_id)
