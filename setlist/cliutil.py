"""What every `setlist` command module shares: the error boundary and common options.

Kept apart from `cli.py` so command groups in their own modules (playback, render,
Spotify) use the same boundary without importing the whole CLI (which imports them).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from setlist.errors import SetlistError

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status for a closed output pipe (128 + SIGPIPE), as a shell reports it.
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130


class SetlistGroup(click.Group):
    """A group whose `invoke` is the single error boundary for every subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SetlistError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            for line in exc.lines():
                click.echo(f"setlist: {line}", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("setlist: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except OSError as exc:  # a full disk or a read-only folder anywhere: one line
            if ctx.find_root().params.get("debug"):
                raise
            from setlist.fsutil import output_error

            where = Path(os.fsdecode(exc.filename)) if exc.filename else Path()
            click.echo(f"setlist: {output_error(where, exc, tail='').message}", err=True)
            ctx.exit(1)


def _silence_stdout() -> None:
    """After the reader went away, point stdout at /dev/null so the exit flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def db_option(f: F) -> F:
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="SETLIST_DB",
        help="Library index file (default: the platform data folder; env SETLIST_DB).",
    )(f)


def session_time(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback: a session time (`12:30`, `1:05:00`, `20m`, `90s`) in seconds."""
    if value is None:
        return None
    from setlist.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a session time: it is not a time like 12:30 (MM:SS), "
            "1:05:00, 20m or 90s"
        ) from None


def fade_shape_option(f: F) -> F:
    """`--fade-shape`, the same choice of crossfade curves for live play and render."""
    from setlist.timeline import FadeShape

    return click.option(
        "--fade-shape",
        type=click.Choice([s.value for s in FadeShape]),
        default=FadeShape.EQUAL_POWER.value,
        show_default=True,
        help="Crossfade curve (live play and render use the same curves).",
    )(f)
