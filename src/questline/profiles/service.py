from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements import service as achievements
from questline.battlepass import service as battlepass
from questline.kit.periods import period_keys, zone
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.players import service as players
from questline.players.schemas import PlayerOut
from questline.profiles.schemas import PointsSummary, Profile, TitleOut
from questline.progression import service as progression
from questline.referrals import service as referrals
from questline.rules.service import ruleset_cache
from questline.streaks import service as streaks


async def profile(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str) -> Profile:
    player = await players.get_player(session, app_id, player_id)
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    today = period_keys(runtime.clock.now(), zone(player.timezone))["day"]
    levels = await progression.levels_of(session, ruleset, app_id, player_id, today)
    balances = await ledger.player_balances(session, app_id, player_id)
    standing = await streaks.player_streaks(session, runtime, app_id, player_id)
    titles = [TitleOut(title=t, source="achievement", reference=ref, earned_at=at)
              for t, ref, at in await achievements.titles_of(session, ruleset, app_id, player_id)]
    titles += [TitleOut(title=t, source="battle_pass", reference=ref, earned_at=at)
               for t, ref, at in await battlepass.titles_of(session, app_id, player_id)]
    titles += [TitleOut(title=t, source="referral_milestone", reference=ref, earned_at=at)
               for t, ref, at in await referrals.titles_of(session, app_id, player_id)]
    return Profile(
        player=PlayerOut.model_validate(player),
        levels=levels,
        combined_levels=progression.combined_levels_of(ruleset, levels),
        balances={code: PointsSummary(currency=code, balance=b.balance, lifetime_earned=b.lifetime_earned,
                                      lifetime_spent=b.lifetime_spent) for code, b in balances.items()},
        streaks={s.key: s for s in standing.streaks},
        titles=sorted(titles, key=lambda t: (t.earned_at, t.source, t.reference)),
        config_version=ruleset.version,
    )
