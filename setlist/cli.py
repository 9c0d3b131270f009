"""The `setlist` command line: a thin shell over the library.

Commands parse options, call one library function and format the result (`--json`
wherever something is listed). One error boundary in `SetlistGroup.invoke` turns a
`SetlistError` into one line per problem on stderr and a non-zero exit; `--debug` shows
the traceback instead. Ctrl-C and a closed pipe end quietly.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from setlist import __version__
from setlist.arcfiles import Catalogue, display_path, shipped_dir
from setlist.arcs import arc_to_dict, json_schema
from setlist.charts import intensity_chart
from setlist.errors import SetlistError
from setlist.models import Arc
from setlist.units import format_clock, format_duration

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


@click.group(cls=SetlistGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="setlist", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Music arcs for psychedelic-assisted therapy sessions.

    Pick an arc template (the session's phases with their timing and target intensity),
    fit music to it and play it in the session room.
    """
    ctx.obj = Catalogue.default()


# -- arcs ------------------------------------------------------------------------
@cli.group()
def arcs() -> None:
    """List, show and validate arc templates."""


@arcs.command("list")
@json_option
@click.pass_obj
def arcs_list(catalogue: Catalogue, as_json: bool) -> None:
    """List the arc templates on the search path."""
    rows = []
    for path in catalogue.files():
        arc, problems = catalogue.check(path)
        errors = [str(p) for p in problems if p.severity == "error"]
        rows.append(
            {
                "name": arc.name if arc else path.stem,
                "path": display_path(path),
                "length": arc.length if arc else None,
                "phases": [p.name for p in arc.phases] if arc else [],
                "description": arc.description if arc else "",
                "errors": errors,
            }
        )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no arc templates found (folders searched: " + _dirs(catalogue) + ")")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        if r["errors"]:
            click.echo(f"{r['name']:<{width}}  INVALID  {r['errors'][0]}")
            continue
        summary = _one_line(r["description"])
        click.echo(f"{r['name']:<{width}}  {format_duration(r['length']):>7}  {summary}")


def _dirs(catalogue: Catalogue) -> str:
    return ", ".join(display_path(d) for d in catalogue.dirs) or display_path(shipped_dir())


def _one_line(text: str, limit: int = 72) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@arcs.command("show")
@click.argument("arc")
@click.option(
    "--start",
    "start_at",
    metavar="HH:MM",
    help="Show wall-clock times for a session starting at HH:MM.",
)
@click.option("--width", default=64, show_default=True, help="Chart width in columns.")
@json_option
@click.pass_obj
def arcs_show(
    catalogue: Catalogue, arc: str, start_at: str | None, width: int, as_json: bool
) -> None:
    """Show an arc (NAME or PATH) as a timeline and intensity chart."""
    loaded = catalogue.load(arc)
    if as_json:
        emit_json(arc_to_dict(loaded))
        return
    offset = _parse_clock(start_at) if start_at else None
    for line in _timeline(loaded, offset):
        click.echo(line)
    click.echo()
    ascii_only = not _can_encode("█│")
    for line in intensity_chart(loaded, width=width, ascii=ascii_only):
        click.echo(line)


def _parse_clock(text: str) -> float:
    try:
        t = dt.datetime.strptime(text.strip(), "%H:%M")
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time like 14:30", param_hint="--start"
        ) from None
    return t.hour * 3600.0 + t.minute * 60.0


def _can_encode(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _timeline(arc: Arc, offset: float | None) -> list[str]:
    def at(seconds: float) -> str:
        if offset is None:
            return format_clock(seconds)
        wall = (offset + seconds) % 86400
        return f"{int(wall // 3600):02d}:{int(wall % 3600 // 60):02d}"

    lines = [f"{arc.name}  ({display_path(Path(arc.origin)) if arc.origin else 'arc'})"]
    if arc.description:
        lines.extend(textwrap.wrap(arc.description, 96))
    dose = f"  dose at {at(arc.dose_at)}" if arc.dose_at or offset is not None else ""
    lines.append(
        f"length {format_duration(arc.length)}{dose}  "
        f"boundary tolerance {format_duration(arc.tolerance)}"
    )
    lines.append("")
    table = [["phase", "start", "end", "length", "intensity", "tempo", "vocals", "xfade", "volume"]]
    notes: dict[int, str] = {}
    for phase, start, end in zip(arc.phases, arc.starts, arc.ends, strict=True):
        _, ys = phase.intensity.knots(phase.duration)
        length = format_duration(phase.duration)
        if phase.flexible and phase.bounds is not None:
            hi = phase.bounds.maximum
            top = "∞" if hi == float("inf") else format_duration(hi)
            length += f" ({format_duration(phase.bounds.minimum)}-{top})"
        table.append(
            [
                phase.name,
                at(start),
                at(end),
                length,
                "→".join(f"{y:.2f}".rstrip("0").rstrip(".") for y in ys),
                f"{phase.tempo.low:g}-{phase.tempo.high:g}" if phase.tempo else "any",
                phase.vocals.value,
                format_duration(phase.crossfade),
                f"{phase.volume_db:+.1f}dB",
            ]
        )
        if phase.notes:
            notes[len(table) - 1] = phase.notes
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    right = {1, 2, 7, 8}
    for i, row in enumerate(table):
        cells = [
            cell.rjust(widths[c]) if c in right else cell.ljust(widths[c])
            for c, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if i in notes:
            indent = " " * (widths[0] + 2)
            lines.extend(
                textwrap.wrap(notes[i], 96, initial_indent=indent, subsequent_indent=indent)
            )
    if not _can_encode("→…∞"):
        lines = [s.replace("→", "->").replace("…", "...").replace("∞", "inf") for s in lines]
    return lines


@arcs.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="Print only problems, not valid files.")
@click.pass_obj
def arcs_validate(catalogue: Catalogue, paths: tuple[Path, ...], quiet: bool) -> None:
    """Check arc template files; one line per problem, exit 2 if any is invalid."""
    failed = False
    for path in paths:
        arc, problems = catalogue.check(path)
        for problem in problems:
            click.echo(str(problem))
        if arc is None:
            failed = True
        elif not quiet:
            click.echo(
                f"{display_path(path)}: ok ({arc.name}, {format_duration(arc.length)}, "
                f"{len(arc.phases)} phases)"
            )
    if failed:
        sys.exit(2)


@arcs.command("schema")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file (atomically) instead of printing it.",
)
def arcs_schema(output: Path | None) -> None:
    """Print the JSON Schema for arc files (for editors' YAML language servers)."""
    from setlist.fsutil import atomic_write_text

    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text)


def schema_text() -> str:
    """The schema exactly as `arcs/schema.json` stores it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="setlist")
