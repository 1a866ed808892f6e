"""``questline demo …``: the demo game's content, and simulated players to fill it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from questline.cli.terminal import err
from questline.cli.terminal import out as console
from questline.kit.db import unit_of_work
from questline.kit.errors import ProblemError
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings

app = typer.Typer(help="The demo game: its content and simulated players.", no_args_is_help=True)
KEYS_FILE = Path("questline-demo.json")
SIMULATION_BATCH = 2000


def _app_id(given: str | None) -> str:
    if given:
        return given
    if KEYS_FILE.exists():
        found = json.loads(KEYS_FILE.read_text()).get("app_id")
        if isinstance(found, str):
            return found
    err().print(f"[red]error[/red]: name the app with --app (no {KEYS_FILE} here from a first `questline serve`)")
    raise typer.Exit(1)


class _Bars:
    """One rich progress bar per phase of the simulation."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, label: str, total: int) -> None:
        self.finish()
        self.task = self.progress.add_task(label, total=total)

    def finish(self) -> None:
        # A phase may do more than it expected (the worker also processes the engine's own events).
        for task in self.progress.tasks:
            if task.id == self.task:
                self.progress.update(task.id, total=task.completed, completed=task.completed)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)


@app.command("load")
def load(app_id: Annotated[str | None, typer.Option("--app", help="the app (default: the demo app)")] = None) -> None:
    """Load the demo game (stats, XP/RP tracks, rank, challenges, achievements, streaks) into an app."""
    from questline.demo import content_files, install_content
    from questline.tenancy import service as tenancy

    target = _app_id(app_id)

    async def main() -> str:
        runtime = Runtime.build(Settings())
        try:
            async with unit_of_work(runtime.sessions) as session:
                await tenancy.get_app(session, target)
                result = await install_content(session, runtime.clock, target)
            return (f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}; "
                    f"config version {result.config_version}")
        finally:
            await runtime.close()

    try:
        summary = asyncio.run(main())
    except ProblemError as exc:
        err().print(f"[red]error[/red] ({exc.code}): {exc.detail}")
        raise typer.Exit(1) from exc
    console().print(f"loaded {', '.join(content_files())} into {target}: {summary}")


@app.command("simulate")
def simulate(
    players: Annotated[int, typer.Option(min=1, max=10_000, help="how many simulated players")] = 300,
    days: Annotated[int, typer.Option(min=0, max=90, help="how many past days they played")] = 14,
    app_id: Annotated[str | None, typer.Option("--app", help="the app (default: the demo app)")] = None,
    seed: Annotated[int, typer.Option(help="random seed: the same seed sends the same events")] = 7,
) -> None:
    """Play simulated players through the demo game so its progress, unlocks and streaks show at once.

    Loads the demo content into the app (unchanged if already there), creates the players with
    time zones and names, sends their events of the past days through the real ingest, drains
    the worker, and files claims (half approved, half left in the approval queue).
    """
    from questline.demo import install_content
    from questline.demo.simulate import simulate as run_simulation
    from questline.tenancy import service as tenancy

    target = _app_id(app_id)

    async def main() -> object:
        settings = Settings()
        # Bigger batches: the backlog is large, and each batch loads its players' state once.
        runtime = Runtime.build(settings.model_copy(update={"worker_batch_size": max(settings.worker_batch_size,
                                                                                     SIMULATION_BATCH)}))
        try:
            async with unit_of_work(runtime.sessions) as session:
                await tenancy.get_app(session, target)
                await install_content(session, runtime.clock, target)
            columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err()) as progress:
                bars = _Bars(progress)
                outcome = await run_simulation(runtime, target, players=players, days=days, seed=seed,
                                               reporter=bars)
                bars.finish()
                return outcome
        finally:
            await runtime.close()

    try:
        result = asyncio.run(main())
    except ProblemError as exc:
        err().print(f"[red]error[/red] ({exc.code}): {exc.detail}")
        raise typer.Exit(1) from exc
    from questline.demo.simulate import SimulationResult

    assert isinstance(result, SimulationResult)
    table = Table("", "", title="Simulation", title_justify="left", show_header=False)
    table.add_row("app", result.app_id)
    table.add_row("players", str(result.players))
    table.add_row("events", f"{result.events_accepted:,} new of {result.events_sent:,} sent")
    table.add_row("processed", f"{result.events_processed:,} (with the engine's own XP awards)")
    table.add_row("claims", f"{result.claims_filed} filed, {result.claims_approved} approved")
    console().print(table)
    sample = result.sample_players[0] if result.sample_players else "demo-001"
    console().print(f"Look around: GET /v1/players/{sample}, /v1/players/{sample}/challenges, "
                  "/v1/challenge-claims?status=pending")
