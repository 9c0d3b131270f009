"""`setlist render`: a built session mixed offline to one FLAC, WAV or Ogg file.

Registered on the main group by `setlist.cli` (`cli.add_command(render)`); errors are
`SetlistError`s, printed as one line each by the group's error boundary. A render with a
missing or broken file fails (exit 1) naming every such file, because a session file with
silent holes would otherwise be trusted and played; `--allow-missing` renders anyway,
leaves those stretches silent and lists them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from setlist.cliutil import fade_shape_option, session_time
from setlist.errors import PlaybackError
from setlist.units import format_clock


class _RenderProgress:
    """A progress bar in session time on a terminal, a line per 10 % otherwise."""

    def __init__(self, total: float, label: str) -> None:
        self.total, self.label = total, label
        self.bar: Any = None
        self.shown = 0
        self.next_line = 0.1
        if sys.stderr.isatty():
            self.bar = click.progressbar(
                length=max(1, round(total)),
                label=label,
                file=sys.stderr,
                item_show_func=lambda _: None,
            )
            self.bar.__enter__()
        else:
            click.echo(f"{label}: {format_clock(total)} of audio", err=True)

    def __call__(self, done: float, total: float) -> None:
        if self.bar is not None:
            step = round(done) - self.shown
            if step > 0:
                self.bar.update(step)
                self.shown += step
        elif total > 0 and done / total >= self.next_line - 1e-9:
            click.echo(f"{self.label}: {format_clock(done)} / {format_clock(total)}", err=True)
            self.next_line = round(done / total + 0.1, 1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command("render")
@click.argument("playlist", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Audio file to write: .flac, .wav or .ogg.",
)
@click.option("--start", metavar="MM:SS", callback=session_time, help="Session time to start from.")
@click.option("--end", metavar="MM:SS", callback=session_time, help="Session time to stop at.")
@click.option(
    "--rate",
    type=click.IntRange(8000, 192000),
    default=44100,
    show_default=True,
    help="Sample rate in Hz.",
)
@fade_shape_option
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Render even if files are missing or broken, leaving their time silent.",
)
def render(
    playlist: Path,
    output: Path,
    start: float | None,
    end: float | None,
    rate: int,
    fade_shape: str,
    allow_missing: bool,
) -> None:
    """Mix a built session (NAME.setlist.yaml) offline into one audio file.

    The same timeline and fade curves as live play, rendered faster than real time:
    for a room without a laptop, or to hear the transitions before the session.
    """
    from setlist.exports import load_setlist
    from setlist.fsutil import display_path
    from setlist.players.render import FORMATS, check_sources
    from setlist.players.render import render as render_timeline
    from setlist.timeline import FadeShape, Timeline

    if output.suffix.lower() not in FORMATS:
        raise click.BadParameter(
            f"{output.name}: name the output .flac, .wav or .ogg", param_hint="-o"
        )
    start = start or 0.0
    corrected: list[str] = []
    setlist = load_setlist(playlist, corrected)
    for line in corrected:  # hand-edited levels are rendered as corrected, each named
        click.echo(f"setlist: warning: {line}", err=True)
    timeline = Timeline.from_setlist(setlist, shape=FadeShape(fade_shape))
    length = timeline.length
    if start >= length:
        raise PlaybackError(
            f"--start {format_clock(start)} is past the end of the session ({format_clock(length)})"
        )
    if end is not None and end <= start:
        raise PlaybackError(f"--end {format_clock(end)} is not after --start {format_clock(start)}")

    faults = check_sources(timeline, start, end)
    for fault in faults:
        prefix = "warning: " if allow_missing else ""
        click.echo(f"setlist: {prefix}{fault.reason}", err=True)
    if faults and not allow_missing:
        raise PlaybackError(
            f"cannot render: {len(faults)} of {len(timeline.cues)} tracks cannot be played",
            hint="fix or replace the files, or pass --allow-missing to render their time "
            "as silence",
        )

    stop = length if end is None else min(end, length)
    progress = _RenderProgress(stop - start, f"rendering {output.name}")
    try:
        report = render_timeline(
            timeline,
            output,
            rate=rate,
            start=start,
            end=stop,
            allow_faults=allow_missing,
            progress=progress,
        )
    finally:
        progress.finish()

    reported = {(f.key, f.reason) for f in faults}
    for fault in report.faults:
        if (fault.key, fault.reason) not in reported:
            click.echo(f"setlist: warning: {fault.reason}", err=True)
    titles = {c.key: c.track.title for c in timeline.cues}
    for key, a, b in report.gaps:
        click.echo(
            f"setlist: warning: silent {format_clock(a)}-{format_clock(b)} where "
            f"{titles.get(key, key)!r} should play",
            err=True,
        )
    peak = f"peak {report.peak_db:.1f} dBFS" if report.peak_db > -200 else "silent"
    if report.limited:
        peak += f", {report.limited} samples softened above -2 dBFS, none past -1 dBFS"
    click.echo(
        f"rendered {format_clock(report.seconds)} to {display_path(output)} "
        f"({peak}; {len(report.files)} files; {report.speed:.0f}x real time)"
    )
