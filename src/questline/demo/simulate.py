"""Play simulated players through the demo game, so a newcomer sees progress at once.

Each player gets a persona (how often and how hard they play), a time zone and a display name,
then days of plausible activity in their own local hours: sessions, workouts, meals, water,
steps, sleep, posts, kudos (given by one player, received by another), records, coached
sessions and referrals. The events go through the real ingest service in time order, the
worker drains them (stats, XP, ranks, streaks, challenges, achievements, …), and players whose
claim-mode challenges are ready file claims; about half are approved, the rest wait in the queue.

Event ids derive from the seed, player and day, so a second run with the same seed adds nothing.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import OperationalError

from questline.challenges import service as challenges
from questline.challenges.schemas import ClaimIn
from questline.kit.db import unit_of_work
from questline.kit.errors import ProblemError
from questline.kit.runtime import Runtime
from questline.mechanics import install
from questline.pipeline import ingest as events
from questline.pipeline.worker import drain
from questline.players import service as player_service
from questline.players.schemas import AccountUpdate
from questline.rules.service import ruleset_cache
from questline.tenancy.auth import SERVER, Caller

TIMEZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
             "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Asia/Singapore",
             "Australia/Sydney", "Pacific/Auckland", "Pacific/Kiritimati", "Etc/GMT+12", "Africa/Lagos"]
FIRST = ["Ada", "Ben", "Cleo", "Dev", "Elif", "Finn", "Gia", "Hugo", "Iris", "Jon", "Kai", "Lena", "Milo", "Nia",
         "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wes", "Xena", "Yuki", "Zoe"]
LAST = ["Stone", "Rivers", "Hart", "Vale", "Quick", "Bright", "Marsh", "Frost", "Lake", "Reyes", "Okafor", "Novak",
        "Sato", "Kaur", "Silva", "Berg", "Moreau", "Walsh", "Nakamura", "Costa"]
WORKOUTS = ["run", "ride", "swim", "hiit", "strength", "yoga"]


@dataclass(frozen=True)
class Persona:
    name: str
    weight: int
    active: float  # chance of playing on a given day
    workouts: tuple[int, int]
    social: float


PERSONAS = [Persona("casual", 45, 0.45, (0, 1), 0.15), Persona("regular", 40, 0.75, (0, 2), 0.3),
            Persona("athlete", 15, 0.95, (1, 3), 0.5)]
BATCH = 1000
LOCK_RETRIES = 5


class Reporter(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int) -> None: ...


class _Silent:
    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, n: int) -> None:
        return None


@dataclass
class SimPlayer:
    player_id: str
    display_name: str
    timezone: str
    persona: Persona


@dataclass
class SimulationResult:
    app_id: str
    players: int
    events_sent: int
    events_accepted: int
    events_processed: int
    claims_filed: int = 0
    claims_approved: int = 0
    sample_players: list[str] = field(default_factory=list)


def plan(players: int, days: int, now: datetime, seed: int) -> tuple[list[SimPlayer], list[dict[str, Any]]]:
    """The simulated players and their events over the last ``days`` days (and today), in time order."""
    rng = random.Random(seed)
    cast = []
    for i in range(players):
        persona = rng.choices(PERSONAS, weights=[p.weight for p in PERSONAS])[0]
        cast.append(SimPlayer(f"demo-{i + 1:03d}", f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                              rng.choice(TIMEZONES), persona))
    ids = [p.player_id for p in cast]
    out: list[dict[str, Any]] = []
    for sim in cast:
        tz = ZoneInfo(sim.timezone)
        today = now.astimezone(tz).date()
        first = True
        for back in range(days, -1, -1):
            day = today - timedelta(days=back)
            if rng.random() > sim.persona.active:
                continue
            day_events = _day(rng, sim, day, first, ids)
            first = False
            for n, (hour, type_, data) in enumerate(day_events):
                local = datetime.combine(day, time(0), tzinfo=tz) + timedelta(hours=hour)
                moment = local.astimezone(UTC)
                if moment > now:
                    continue
                stamp = f"sim{seed}-{sim.player_id}-{day:%Y%m%d}-{n:02d}"
                if type_ == "kudos.given":
                    out.append(_event(f"{stamp}-r", data["to"], "kudos.received", {"from": sim.player_id}, moment))
                out.append(_event(stamp, sim.player_id, type_, data, moment))
    out.sort(key=lambda e: (e["timestamp"], e["id"]))
    return cast, out


def _event(event_id: str, player_id: str, type_: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"id": event_id, "player_id": player_id, "type": type_, "data": data, "timestamp": at}


def _day(rng: random.Random, sim: SimPlayer, day: Any, first: bool, ids: list[str]) -> list[tuple[float, str, Any]]:
    """(local hour, type, data) of one active day."""
    persona = sim.persona
    wake = rng.uniform(6, 10)
    acts: list[tuple[float, str, Any]] = [(wake, "session.started", {"platform": rng.choice(["ios", "android", "web"]),
                                                                     "first": first})]
    low, high = persona.workouts
    hour = wake + rng.uniform(0.5, 2)
    for _ in range(rng.randint(low, high)):
        kind = rng.choices(WORKOUTS, weights=[30, 12, 8, 15, 20, 15])[0]
        minutes = rng.randint(20, 90)
        data: dict[str, Any] = {"kind": kind, "minutes": minutes, "calories": minutes * rng.randint(6, 11)}
        if kind in ("run", "ride"):
            data["distance_km"] = round(minutes / (6 if kind == "run" else 2.5) * rng.uniform(0.8, 1.2), 1)
        acts.append((min(hour, 23.5), "workout.completed", data))
        hour += rng.uniform(2, 6)
    for meal, at in (("breakfast", wake + 0.5), ("lunch", 12.5), ("dinner", 19.0), ("snack", 16.0)):
        if rng.random() < (0.9 if meal != "snack" else 0.4):
            acts.append((at + rng.uniform(-0.5, 0.5), "meal.logged",
                         {"meal": meal, "healthy": rng.random() < 0.6, "protein_g": rng.randint(5, 45)}))
    for _ in range(rng.randint(1, 3)):
        acts.append((rng.uniform(wake, 22), "water.logged", {"glasses": rng.randint(2, 4)}))
    acts.append((21.0 + rng.uniform(0, 1.5), "steps.synced", {"steps": max(500, int(rng.gauss(8500, 3500)))}))
    if rng.random() < 0.5:
        acts.append((wake + 0.1, "sleep.logged", {"hours": round(rng.uniform(5, 9), 1)}))
    if rng.random() < persona.social:
        acts.append((rng.uniform(12, 22), "post.shared", {"kind": rng.choice(["photo", "story"])}))
    for _ in range(rng.randint(0, 2) if rng.random() < persona.social * 2 else 0):
        friend = rng.choice(ids)
        if friend != sim.player_id:
            acts.append((rng.uniform(wake, 23), "kudos.given", {"to": friend}))
    if rng.random() < 0.05:
        acts.append((hour, "personal_record.set", {"exercise": rng.choice(["5k", "bench", "plank"]),
                                                   "value": rng.randint(1, 300)}))
    if persona.name == "athlete" and rng.random() < 0.3:
        acts.append((rng.uniform(15, 20), "trainer.session", {"trainer_id": f"coach-{rng.randint(1, 5)}",
                                                              "minutes": rng.choice([30, 45, 60, 75])}))
    if rng.random() < 0.03:
        acts.append((rng.uniform(12, 22), "friend.referred", {"friend": f"friend-of-{sim.player_id}"}))
    return sorted(acts, key=lambda a: a[0])


async def simulate(runtime: Runtime, app_id: str, *, players: int = 300, days: int = 14, seed: int = 7,
                   reporter: Reporter | None = None, approve_share: float = 0.5) -> SimulationResult:
    """Create the players, send their events through ingest, drain the worker, file and decide claims."""
    report = reporter or _Silent()
    install(runtime)
    now = runtime.clock.now()
    cast, planned = plan(players, days, now, seed)

    report.start("players", len(cast))
    async with unit_of_work(runtime.sessions) as session:
        for sim in cast:
            await player_service.upsert_player(session, runtime.clock, app_id, sim.player_id, AccountUpdate(
                display_name=sim.display_name, username=sim.player_id, timezone=sim.timezone))
            report.advance(1)

    caller = Caller(kind=SERVER, app_id=app_id, key_id="demo-simulator")
    accepted = 0
    report.start("events", len(planned))
    for start in range(0, len(planned), BATCH):
        chunk = planned[start:start + BATCH]
        body = [{**e, "timestamp": e["timestamp"].isoformat()} for e in chunk]
        ingested = await events.ingest(runtime, caller, body, source="demo")
        accepted += len(ingested.result.accepted)
        report.advance(len(chunk))

    processed = await _drain(runtime, report, accepted)
    result = SimulationResult(app_id=app_id, players=len(cast), events_sent=len(planned), events_accepted=accepted,
                              events_processed=processed, sample_players=[p.player_id for p in cast[:3]])
    await _claims(runtime, app_id, cast, planned, result, random.Random(seed), approve_share, report)
    result.events_processed += await _drain(runtime, report, 0)
    return result


async def _drain(runtime: Runtime, report: Reporter, expected: int) -> int:
    """Run the worker until nothing is pending (next to a running engine, whose worker shares the work)."""
    report.start("processing", expected)
    processed = 0

    def advance(n: int) -> None:
        nonlocal processed
        processed += n
        report.advance(n)

    for attempt in range(LOCK_RETRIES + 1):
        try:
            await drain(runtime, advance)
            break
        except OperationalError as exc:  # SQLite: another writer kept the lock past the busy timeout
            if "locked" not in str(exc) or attempt == LOCK_RETRIES:
                raise
    return processed


async def _claims(runtime: Runtime, app_id: str, cast: list[SimPlayer], planned: list[dict[str, Any]],
                  result: SimulationResult, rng: random.Random, approve_share: float, report: Reporter) -> None:
    """Players with a claim-mode challenge's events this week claim it; some claims are approved."""
    async with runtime.read_sessions() as session:
        ruleset = await ruleset_cache(runtime).get(session, app_id)
    claimable = {key: {o.spec.event_type for o in c.objectives}
                 for key, c in challenges.compiled(ruleset).by_key.items() if c.spec.completion_mode == "claim"}
    if not claimable:
        return
    recent = runtime.clock.now() - timedelta(days=7)
    active: dict[str, set[str]] = {}
    for event in planned:
        if event["timestamp"] >= recent:
            active.setdefault(event["player_id"], set()).add(event["type"])
    candidates = [(sim.player_id, key) for sim in cast for key, types in claimable.items()
                  if types & active.get(sim.player_id, set())]
    report.start("claims", len(candidates))
    for player_id, key in candidates:
        # Refused when not met yet, already claimed or completed: a real player would not claim either.
        with contextlib.suppress(ProblemError):
            async with unit_of_work(runtime.sessions) as session:
                claim = await challenges.claim(session, runtime, app_id, player_id, key, ClaimIn(
                    verification={"source": "trainer_approval", "reviewed_by": "coach"},
                    note="simulated by questline demo simulate"))
            result.claims_filed += 1
            if rng.random() < approve_share:
                async with unit_of_work(runtime.sessions) as session:
                    await challenges.approve(session, runtime, app_id, claim.id, "demo:simulator", "simulated")
                result.claims_approved += 1
        report.advance(1)
