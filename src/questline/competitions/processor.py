"""The competition processor (after leaderboards) and the lifecycle job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncSession

from questline.competitions import repository as repo
from questline.competitions import service
from questline.competitions.models import ACTIVE, CANCELLED, UPCOMING, Competition
from questline.kit.runtime import Runtime
from questline.leaderboards import service as boards
from questline.leaderboards.schemas import Scoring
from questline.leaderboards.scoring import BoardSpec, ScoreKeeper, compile_spec
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.rules.service import RuleSet


@dataclass
class _Round:
    keeper: ScoreKeeper
    competitions: dict[str, Competition]  # by board key


class CompetitionProcessor:
    """Scores the events of joined players on their competitions' boards, within each window."""

    name = "competitions"

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._rounds: WeakKeyDictionary[Batch, _Round] = WeakKeyDictionary()

    def concerned(self, ruleset: RuleSet) -> bool:
        return True  # competitions are live or not by their schedule: its load asks (one small query)

    async def load(self, batch: Batch) -> None:
        if not batch.events:
            return
        times = [e.occurred_at for e in batch.events]
        live = await repo.live_for(batch.session, batch.app_id, min(times), max(times))
        if not live:
            return
        specs: list[BoardSpec] = []
        by_board: dict[str, Competition] = {}
        for comp in live:
            spec = compile_spec(service.board_key(comp.id), Scoring.model_validate(comp.config["scoring"]),
                                batch.ruleset, period=service.PERIOD, starts_at=comp.starts_at, ends_at=comp.ends_at)
            if spec is not None:
                specs.append(spec)
                by_board[spec.board] = comp
        joined = await repo.joined(batch.session, [c.id for c in by_board.values()], batch.players)
        prefix = len(service.BOARD_PREFIX)

        def eligible(spec: BoardSpec, player_id: str) -> bool:
            return (spec.board[prefix:], player_id) in joined

        keeper = ScoreKeeper(specs, eligible)
        await keeper.load(batch)
        self._rounds[batch] = _Round(keeper, by_board)

    def handle(self, batch: Batch, view: EventView, state: PlayerState) -> None:
        found = self._rounds.get(batch)
        if found is not None:
            found.keeper.handle(batch, view, state)

    async def flush(self, batch: Batch) -> None:
        found = self._rounds.pop(batch, None)
        if found is None:
            return
        keeper = found.keeper
        folds = keeper.folds
        moved = await keeper.flush(batch, boards.boards_of(self._runtime).hook, track_periods=False)
        activity: dict[tuple[str, datetime], list[int]] = {}
        for board, value, at in folds:
            slot = activity.setdefault((board, at.replace(minute=0, second=0, microsecond=0)), [0, 0])
            slot[0] += 1
            slot[1] += abs(value)
        await repo.add_activity(batch.session, [
            {"competition_id": found.competitions[board].id, "bucket": bucket, "app_id": batch.app_id, "joins": 0,
             "events": events, "volume": volume} for (board, bucket), (events, volume) in sorted(activity.items())])
        last_move: dict[str, EventView] = {}
        for board, _player, _score, view in moved:
            last_move[board] = view
        for board, view in sorted(last_move.items()):
            await self._leaders(batch, found.competitions[board], view)

    async def _leaders(self, batch: Batch, comp: Competition, view: EventView) -> None:
        top = await boards.standings(batch.session, batch.app_id, service.board_info(comp), service.PERIOD,
                                     limit=service.TOP_POSITIONS)
        leaders = [s.player_id for s in top]
        before = list(comp.leaders or [])
        if leaders == before:
            return
        await repo.update(batch.session, comp.id, leaders=leaders)
        comp.leaders = leaders
        batch.emit("competition.top_changed", leaders[0] if leaders else None,
                   {"competition_id": comp.id, "leaders": [{"rank": s.rank, "player_id": s.player_id,
                                                            "score": s.score} for s in top],
                    "previous": before}, view.record)

    async def reset(self, session: AsyncSession, app_id: str | None) -> None:
        # Completed competitions keep their boards: their results are final and replay does not touch them.
        found = await repo.with_status(session, app_id, [UPCOMING, ACTIVE, CANCELLED])
        by_app: dict[str, list[str]] = {}
        for app, cid in found:
            by_app.setdefault(app, []).append(cid)
        for app, ids in by_app.items():
            await boards.remove_entries(session, self._runtime, app, [service.board_key(c) for c in ids])
            await repo.delete_activity(session, ids)
            for cid in ids:
                await repo.update(session, cid, leaders=[])
