"""The leaderboard processor (after stats and progression) and the period rollover job."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.leaderboards import repository as repo
from questline.leaderboards import service
from questline.leaderboards.schemas import LeaderboardDef, PartitionScope
from questline.leaderboards.scoring import BoardSpec, ScoreKeeper, compile_spec
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.rules.service import RuleSet

UPDATE_PLAYERS_SHOWN = 50
COMPETITION_PREFIX = "@"  # boards of competitions; they end with their competition, not here


def compile_boards(ruleset: RuleSet) -> list[BoardSpec]:
    specs = []
    for key, spec in ruleset.of("leaderboard").items():
        assert isinstance(spec, LeaderboardDef)
        attr = spec.scope.attribute if isinstance(spec.scope, PartitionScope) else None
        compiled = compile_spec(key, spec, ruleset, period=spec.period, tz=zone(spec.timezone),
                                starts_at=spec.starts_at, ends_at=spec.ends_at, partition_attr=attr,
                                gating=spec.gating)
        if compiled is not None:
            specs.append(compiled)
    return specs


class LeaderboardProcessor:
    """Folds each matching event into the board entries of its period; indexes after commit."""

    name = "leaderboards"

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._keepers: WeakKeyDictionary[Batch, ScoreKeeper] = WeakKeyDictionary()

    def concerned(self, ruleset: RuleSet) -> bool:
        return bool(ruleset.memo("leaderboards.boards", compile_boards))

    async def load(self, batch: Batch) -> None:
        specs = batch.ruleset.memo("leaderboards.boards", compile_boards)
        if not specs:
            return
        keeper = self._keepers[batch] = ScoreKeeper(specs)
        await keeper.load(batch)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        keeper = self._keepers.get(batch)
        if keeper is not None:
            keeper.handle(batch, view, state)

    async def flush(self, batch: Batch) -> None:
        keeper = self._keepers.pop(batch, None)
        if keeper is None:
            return
        moved = await keeper.flush(batch, service.boards_of(self._runtime).hook)
        # One message per board and batch (not per player): live views refresh from it.
        by_board: dict[str, list[tuple[str, int, EventView]]] = {}
        for board, player_id, score, view in moved:
            by_board.setdefault(board, []).append((player_id, score, view))
        for board, changes in sorted(by_board.items()):
            shown = [{"player_id": pid, "score": score} for pid, score, _ in changes[:UPDATE_PLAYERS_SHOWN]]
            batch.emit("leaderboard.updated", None, {"board": board, "players_changed": len(changes),
                                                     "players": shown}, changes[-1][2].record)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        await repo.delete_entries(session, app_id, boards_not_like=f"{COMPETITION_PREFIX}%")
        service.forget_after_commit(session, self._runtime, app_id)
