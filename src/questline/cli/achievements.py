"""``questline achievements …``: award achievements to players who already qualify."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from questline.cli.terminal import err
from questline.cli.terminal import out as console
from questline.kit.db import unit_of_work
from questline.kit.errors import ProblemError
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings

app = typer.Typer(help="Achievements.", no_args_is_help=True)


@app.command("backfill")
def backfill(
    app_id: Annotated[str, typer.Option("--app", help="the app")],
    keys: Annotated[list[str] | None, typer.Option("--key", help="only this achievement (repeatable)")] = None,
) -> None:
    """Award achievements to players who already meet them, from their stored stats, levels and metrics.

    Runs a page of players per transaction (safe next to a running engine: an achievement is
    unlocked, announced and paid once whoever gets there first). Criteria on event fields
    cannot hold here. The engine also does this by itself for new and edited achievements
    (the ``achievements.backfill`` job).
    """
    from questline.achievements.tasks import run_backfill
    from questline.mechanics import install
    from questline.tenancy import service as tenancy

    async def main() -> tuple[int, int]:
        runtime = Runtime.build(Settings())
        install(runtime)
        try:
            async with unit_of_work(runtime.read_sessions) as session:
                await tenancy.get_app(session, app_id)
            with Progress(TextColumn("backfilling"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[unlocked]} unlocked"), TimeRemainingColumn(),
                          console=err()) as progress:
                task = progress.add_task("players", total=None, unlocked=0)
                unlocked = 0

                def advance(players: int, found: int) -> None:
                    nonlocal unlocked
                    unlocked += found
                    progress.update(task, advance=players, unlocked=unlocked)

                return await run_backfill(runtime, app_id, keys or None, advance,
                                          on_start=lambda total: progress.update(task, total=total))
        finally:
            await runtime.close()

    try:
        players, unlocked = asyncio.run(main())
    except ProblemError as exc:
        err().print(f"[red]error[/red] ({exc.code}): {exc.detail}")
        raise typer.Exit(1) from exc
    console().print(f"evaluated {players} players; unlocked {unlocked} achievements")
