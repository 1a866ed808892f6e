"""The battle pass processor: pass XP from ``pass_xp_rule`` definitions, after progression.

Each matching event gives pass XP in every season the rule names (or, for a rule without a
season, every season running at the event's time), within the rule's daily limit in the
player's local day. Crossing a tier emits ``battle_pass.tier_reached``; the featured
season's tier and XP are exposed as the metrics ``battle_pass.tier`` and ``battle_pass.xp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from questline.battlepass import repository as repo
from questline.battlepass.service import CompiledPasses, passes_of
from questline.gating import service as gating
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.rules.service import RuleSet

TIER_METRIC, XP_METRIC = "battle_pass.tier", "battle_pass.xp"


@dataclass
class PassState:
    xp: dict[str, int] = field(default_factory=dict)  # season -> earned pass XP
    boost: dict[str, int] = field(default_factory=dict)  # season -> bought XP (read only here)
    dirty: set[str] = field(default_factory=set)
    daily: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (season, rule, day) -> earned
    daily_dirty: set[tuple[str, str, str]] = field(default_factory=set)


class BattlePassProcessor:
    name = "battlepass"

    def concerned(self, ruleset: RuleSet) -> bool:
        return bool(passes_of(ruleset).seasons)

    async def load(self, batch: Batch) -> None:
        compiled = passes_of(batch.ruleset)
        if not compiled.seasons:
            return
        seasons = list(compiled.seasons)
        states = {pid: self._state(state) for pid, state in batch.players.items()}
        for row in await repo.xp_rows(batch.session, batch.app_id, batch.players, seasons):
            states[row.player_id].xp[row.season] = row.xp
        for player_id, season, xp in await repo.boosts(batch.session, batch.app_id, batch.players, seasons):
            states[player_id].boost[season] = xp
        limited = [key for rules in compiled.rules_by_type.values() for key, rule, _ in rules if rule.daily_limit]
        if limited:
            days = {view.periods["day"] for view in batch.views}
            for d in await repo.daily_rows(batch.session, batch.app_id, batch.players, limited, days):
                states[d.player_id].daily[(d.season, d.rule, d.day)] = d.earned
        for state in batch.players.values():
            self._metrics(compiled, state)
        await gating.batch_gate(batch, (season.spec.gating for season in compiled.seasons.values()))

    @staticmethod
    def _state(state: PlayerState) -> PassState:
        return state.part(PassState)

    @classmethod
    def _metrics(cls, compiled: CompiledPasses, state: PlayerState) -> None:
        if compiled.featured is None:
            return
        own = cls._state(state)
        xp = own.xp.get(compiled.featured, 0) + own.boost.get(compiled.featured, 0)
        state.metrics[XP_METRIC] = xp
        state.metrics[TIER_METRIC] = compiled.seasons[compiled.featured].tier_of(xp)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        compiled = passes_of(batch.ruleset)
        rules = compiled.rules_by_type.get(view.record.type)
        if not rules:
            return
        ctx = batch.context(view, state)
        own = self._state(state)
        at, day = view.record.occurred_at, view.periods["day"]
        for key, rule, matches in rules:
            if not matches(ctx):
                continue
            targets = [compiled.seasons[rule.season]] if rule.season else list(compiled.seasons.values())
            for season in targets:
                if not season.running_at(at):
                    continue
                if season.spec.gating is not None and not gating.gate_of(batch).allows(season.spec.gating, state):
                    continue  # a gated season counts no XP for players outside its gate
                amount = rule.amount
                if rule.daily_limit is not None:
                    slot = (season.key, key, day)
                    amount = min(amount, rule.daily_limit - own.daily.get(slot, 0))
                    if amount <= 0:
                        continue
                    own.daily[slot] = own.daily.get(slot, 0) + amount
                    own.daily_dirty.add(slot)
                boost = own.boost.get(season.key, 0)
                before = own.xp.get(season.key, 0)
                own.xp[season.key] = before + amount
                own.dirty.add(season.key)
                old_tier, new_tier = season.tier_of(before + boost), season.tier_of(before + amount + boost)
                batch.emit("battle_pass.xp_earned", state.player_id,
                           {"season": season.key, "amount": amount, "xp": before + amount + boost, "rule": key},
                           view.record)
                if new_tier > old_tier:
                    batch.emit("battle_pass.tier_reached", state.player_id,
                               {"season": season.key, "from": old_tier, "to": new_tier}, view.record)
        self._metrics(compiled, state)

    async def flush(self, batch: Batch) -> None:
        now = batch.clock.now()
        xp_rows, daily_rows = [], []
        for state in batch.players.values():
            own = state.part_if_any(PassState)
            if own is None:
                continue
            xp_rows += [{"app_id": batch.app_id, "player_id": state.player_id, "season": season,
                         "xp": own.xp[season], "updated_at": now} for season in sorted(own.dirty)]
            daily_rows += [{"app_id": batch.app_id, "player_id": state.player_id, "season": season, "rule": rule,
                            "day": day, "earned": own.daily[(season, rule, day)]}
                           for season, rule, day in sorted(own.daily_dirty)]
            own.dirty.clear()
            own.daily_dirty.clear()
        await repo.save_xp(batch.session, xp_rows)
        await repo.save_daily(batch.session, daily_rows)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.reset(session, app_id)
