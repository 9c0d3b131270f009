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
import shlex
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from setlist import __version__
from setlist.arcfiles import Catalogue, display_path, shipped_dir
from setlist.arcs import arc_to_dict, json_schema
from setlist.charts import intensity_chart
from setlist.cliutil import (
    SetlistGroup,
    db_option,
    emit_json,
    json_option,
    session_time,
)
from setlist.models import Arc
from setlist.units import format_clock, format_duration, format_length

if TYPE_CHECKING:
    from setlist.library.index import Index


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


# -- library ---------------------------------------------------------------------


def _open_index(db: Path | None) -> Index:
    # Library modules load numpy, scipy and PyAV: imported on use, so `setlist arcs ...`
    # and `--help` stay instant.
    from setlist.library.index import Index

    return Index.open(db)


class TerminalProgress:
    """A progress bar on a terminal, plain periodic lines otherwise (logs, CI, pipes)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.label = ""
        self.total = 0
        self.done = 0
        self.next_line = 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        if not self.enabled or total == 0:
            return
        if sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label=label, file=sys.stderr)
            self.bar.__enter__()
        else:
            click.echo(f"{label}: {total} files", err=True)
            self.next_line = 0.1

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and self.total and self.done / self.total >= self.next_line:
            click.echo(f"{self.label}: {self.done}/{self.total}", err=True)
            self.next_line = round(self.done / self.total + 0.1, 1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@cli.group()
def library() -> None:
    """Scan, browse and annotate the local music library."""


@library.command("scan")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False))
@db_option
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="all cores",
    help="Worker processes for reading tags and analysing audio.",
)
@click.option("--no-analyze", is_flag=True, help="Read tags only; analyse audio later.")
@click.option("--strict", is_flag=True, help="Exit 3 if any file could not be read.")
@json_option
def library_scan(
    folders: tuple[Path, ...],
    db: Path | None,
    jobs: int,
    no_analyze: bool,
    strict: bool,
    as_json: bool,
) -> None:
    """Index the music in FOLDERS (incremental; bad files are reported, not fatal)."""
    from setlist.library.scan import scan

    with _open_index(db) as index:
        report = scan(
            list(folders),
            index,
            jobs=jobs,
            progress=TerminalProgress(enabled=not as_json),
            analyze=not no_analyze,
        )
        stats = index.stats()
    if as_json:
        emit_json({**report.to_dict(), "library": stats})
    else:
        _print_scan(report, stats)
    if strict and (report.failed or report.analysis_failed):
        sys.exit(3)


def _print_scan(report: Any, stats: dict[str, Any]) -> None:
    click.echo(
        f"scanned {report.seen} files in {report.seconds:.1f}s: {report.new} new, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.moved} moved, "
        f"{report.missing} now missing, {len(report.failed)} unreadable"
    )
    if report.analysed or report.analysis_failed:
        click.echo(
            f"analysed {_count(report.analysed, 'track')}, "
            f"{len(report.analysis_failed)} could not be used"
        )
    if report.analysis_pending:
        click.echo(
            f"{_count(report.analysis_pending, 'track')} awaiting analysis "
            "(scan without --no-analyze)"
        )
    for problem in [*report.failed, *report.analysis_failed, *report.skipped]:
        click.echo(f"warning: {problem.path}: {problem.reason}", err=True)
    click.echo()
    _print_stats(stats)


def _print_stats(stats: dict[str, Any]) -> None:
    click.echo(
        f"library {stats['db']}: {stats['ok']} tracks ({stats['hours']:.1f} h), "
        f"{stats['missing']} missing, {stats['failed']} unreadable, "
        f"{stats['analysed']} analysed, {stats['annotated']} annotated"
    )
    if stats["formats"]:
        click.echo("formats: " + ", ".join(f"{k or '?'} {v}" for k, v in stats["formats"].items()))
    hist = stats["intensity_histogram"]
    if any(hist):
        top = max(hist)
        click.echo("intensity:")
        for i, count in enumerate(hist):
            bar = "#" * round(30 * count / top) if top else ""
            click.echo(f"  {i / 10:.1f}-{(i + 1) / 10:.1f} {count:>6} {bar}")


@library.command("stats")
@db_option
@json_option
def library_stats(db: Path | None, as_json: bool) -> None:
    """Counts by format and status, hours of music and the intensity histogram."""
    with _open_index(db) as index:
        stats = index.stats()
        stats["problems"] = [{"path": p, "reason": r} for p, r in index.failures()]
    if as_json:
        emit_json(stats)
        return
    _print_stats(stats)
    for problem in stats["problems"]:
        click.echo(f"  unreadable: {problem['path']}: {problem['reason']}")


@library.command("list")
@click.argument("query", required=False, default="")
@db_option
@click.option("--missing/--no-missing", default=True, help="Include tracks whose file is gone.")
@json_option
def library_list(db: Path | None, query: str, missing: bool, as_json: bool) -> None:
    """List tracks matching QUERY (words, or field:value such as artist:Eno tag:calm)."""
    from setlist.library.query import parse_query

    terms = parse_query(query)
    with _open_index(db) as index:
        entries = index.search(terms, include_missing=missing)
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    for e in entries:
        click.echo(_entry_line(e))
    if not entries:
        click.echo(
            "no tracks match" if query else "the library is empty (setlist library scan DIR)"
        )


def _entry_line(e: Any) -> str:
    t = e.track
    f = t.features
    intensity = f"{f.intensity:.2f}" if f is not None else " -  "
    tempo = f"{f.tempo_bpm:5.0f}" if f is not None and f.tempo_bpm else "    -"
    mark = {"missing": " [missing]", "failed": " [unreadable]"}.get(e.status, "")
    who = f"{t.artist} - " if t.artist else ""
    return (
        f"{t.id:>6}  {intensity}  {tempo}  {format_length(t.duration):>6}  "
        f"{t.vocals:<8}  {who}{t.title}{mark}"
    )


@library.command("show")
@click.argument("track")
@db_option
@json_option
def library_show(db: Path | None, track: str, as_json: bool) -> None:
    """Everything known about one TRACK (its id, or a query matching one track)."""
    with _open_index(db) as index:
        entry = _one_entry(index, track)
    if as_json:
        emit_json(entry.to_dict())
        return
    data = entry.to_dict()
    for key in (
        "id",
        "title",
        "artist",
        "album",
        "album_artist",
        "genre",
        "year",
        "isrc",
        "language",
        "format",
        "status",
        "path",
        "tags",
        "vocals",
        "vocals_source",
        "intensity",
        "intensity_source",
        "tempo_bpm",
        "loudness_lufs",
        "replaygain_db",
        "error",
        "analysis_error",
    ):
        value = data[key]
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        click.echo(f"{key:<17}{value}")
    click.echo(f"{'duration':<17}{format_clock(entry.track.duration)}")
    f = entry.track.features
    if f is not None:
        click.echo(
            f"{'analysis':<17}LRA {f.loudness_range_lu:.1f} LU, peak {f.peak_dbfs:.1f} dBFS, "
            f"brightness {f.brightness_hz:.0f} Hz, {f.onset_rate:.2f} onsets/s, "
            f"voice {f.voice:.2f}, silence {f.lead_silence:.1f}s/{f.trail_silence:.1f}s"
        )
        blocks = " ▁▂▃▄▅▆▇█" if _can_encode("█") else " .:-=+*#%"
        line = "".join(
            blocks[min(8, round(v * 8))] for v in f.envelope[:: max(1, len(f.envelope) // 64)]
        )
        click.echo(f"{'envelope':<17}{line}")
        if f.edges is not None:
            click.echo(f"{'plays':<17}{_edges_line(f.edges, f.duration)}")
    a = entry.annotation
    if a is not None:
        click.echo(f"{'annotation':<17}{json.dumps(data['annotation'], ensure_ascii=False)}")


def _edges_line(e: Any, duration: float) -> str:
    """Where a track plays and why, in a therapist's words."""

    def at(x: float) -> str:
        return format_clock(x) if x >= 60 else f"{x:.1f}s"

    parts = [f"{at(e.cue_in)}-{at(e.cue_out)} of {format_clock(duration)}"]
    if e.intro >= 3:
        parts.append(f"quiet opening {e.intro:.0f}s")
    if e.outro >= 3:
        parts.append(f"fades out over {e.outro:.0f}s")
    parts.append(f"edges {e.head_lufs:.1f}/{e.tail_lufs:.1f} LUFS")
    line = ", ".join(parts)
    after = [g for g in e.gaps if g[0] >= e.cue_out - 0.5]
    if e.hidden > 0 and after:
        gap = after[0]
        line += (
            f"; ends at {at(e.cue_out)}: {gap[1] - gap[0]:.0f}s of silence, then "
            f"{format_duration(e.hidden)} more (a hidden track?) not played"
        )
    elif e.hidden > 0:
        line += f"; {format_duration(e.hidden)} before a silence at {at(e.cue_in)} not played"
    return line


def _one_entry(index: Index, ref: str) -> Any:
    from setlist.errors import LibraryError
    from setlist.library.query import parse_query

    terms = parse_query(f"id:{ref}" if ref.isdigit() else ref)
    entries = index.search(terms)
    if not entries:
        raise LibraryError(f"no track matches {ref!r}", hint="'setlist library list' shows ids")
    if len(entries) > 1:
        raise LibraryError(
            f"{len(entries)} tracks match {ref!r}; give an id or a narrower query",
            hint=f"'setlist library list {shlex.quote(ref)}' shows them",
        )
    return entries[0]


@library.command("annotate")
@click.argument("query")
@db_option
@click.option(
    "--intensity",
    type=click.FloatRange(0.0, 1.0),
    help="Intensity 0-1 to use instead of the analysis.",
)
@click.option(
    "--vocals",
    type=click.Choice(["none", "wordless", "lyrics"]),
    help="What voice the track holds (overrides the analysis).",
)
@click.option(
    "--tempo", type=click.FloatRange(20, 300), help="Tempo in BPM (overrides the analysis)."
)
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untags", multiple=True, help="Remove a tag (repeatable).")
@click.option("--never/--allow", default=None, help="Never (or again) use the track in a session.")
@click.option("--note", help="A free-text note kept with the track.")
@click.option(
    "--cue-in",
    callback=session_time,
    help="Where the track starts playing in its file (4.5s, 0:12), instead of the analysis.",
)
@click.option(
    "--cue-out",
    callback=session_time,
    help="Where it stops (3:12, 192s): e.g. before a hidden track the analysis missed.",
)
@click.option("--clear", is_flag=True, help="Remove the tracks' annotations first.")
@click.option("--all", "all_matches", is_flag=True, help="Annotate every track the query matches.")
def library_annotate(
    db: Path | None,
    query: str,
    intensity: float | None,
    vocals: str | None,
    tempo: float | None,
    tags: tuple[str, ...],
    untags: tuple[str, ...],
    never: bool | None,
    note: str | None,
    cue_in: float | None,
    cue_out: float | None,
    clear: bool,
    all_matches: bool,
) -> None:
    """Correct the analysis of the tracks QUERY matches (an id, words or field:value)."""
    from setlist.errors import LibraryError
    from setlist.library.query import parse_query
    from setlist.models import Annotation

    change: dict[str, Any] = {}
    if intensity is not None:
        change["intensity"] = intensity
    if vocals is not None:
        change["vocals"] = vocals
    if tempo is not None:
        change["tempo_bpm"] = tempo
    if never is not None:
        change["never"] = never
    if note is not None:
        change["note"] = note
    if cue_in is not None:
        change["cue_in"] = cue_in
    if cue_out is not None:
        change["cue_out"] = cue_out
    if cue_in is not None and cue_out is not None and cue_out <= cue_in:
        raise click.BadParameter("--cue-out must come after --cue-in")
    if tags:
        change["tags"] = tuple(t.strip().casefold() for t in tags)
    if untags:
        change["untags"] = tuple(t.strip().casefold() for t in untags)
    if not change and not clear:
        raise click.UsageError("nothing to change: give --intensity, --vocals, --tag, --never, ...")
    with _open_index(db) as index:
        terms = parse_query(f"id:{query}" if query.isdigit() else query)
        entries = index.search(terms)
        if not entries:
            raise LibraryError(f"no track matches {query!r}")
        if len(entries) > 1 and not all_matches:
            raise LibraryError(
                f"{len(entries)} tracks match {query!r}; add --all to annotate them all",
                hint="or narrow the query; 'setlist library list QUERY' shows the matches",
            )
        ids = [e.track.id for e in entries]
        if clear:
            index.replace_annotations([(i, Annotation()) for i in ids])
        if change:
            index.annotate(ids, change)
        for entry in index.entries_by_id(ids):
            click.echo(_entry_line(entry))
    click.echo(f"annotated {_count(len(ids), 'track')}", err=True)


@library.group("annotations")
def library_annotations() -> None:
    """Export and import annotations as a YAML file."""


@library_annotations.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
def annotations_export(db: Path | None, file: Path) -> None:
    """Write every annotation to FILE (atomically)."""
    from setlist.library.annotations import export_annotations

    with _open_index(db) as index:
        count = export_annotations(index, file)
    click.echo(f"exported {count} annotations to {display_path(file)}")


@library_annotations.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@db_option
def annotations_import(db: Path | None, file: Path) -> None:
    """Apply the annotations in FILE (all or nothing); unmatched entries are listed."""
    from setlist.library.annotations import import_annotations

    with _open_index(db) as index:
        result = import_annotations(index, file)
    click.echo(f"imported {result.applied} annotations from {display_path(file)}")
    for label in result.unmatched:
        click.echo(f"warning: no track matches {label}", err=True)


# -- build and show ----------------------------------------------------------------
FORMAT_CHOICES = ("setlist", "m3u8", "xspf", "html", "svg")


@cli.command("build")
@click.argument("arc")
@db_option
@click.option(
    "--seed", type=click.IntRange(min=0), help="Seed; the same seed rebuilds the same plan."
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Listener profile (YAML); give two for couples work.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=1.0),
    help="Stretch or shrink the arc to this many minutes (flexible phases absorb it).",
)
@click.option("--out", "name", help="Output name (default: ARC-DATE, never overwriting).")
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("playlists"),
    show_default=True,
    help="Folder for the outputs.",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(FORMAT_CHOICES),
    help="Output formats (repeatable; default: all).",
)
@click.option(
    "--source",
    type=click.Choice(["local", "spotify", "all"]),
    default="all",
    show_default=True,
    help="Which tracks in the index to plan with.",
)
@click.option(
    "--artist-gap",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Other tracks that must play before an artist is heard again.",
)
@click.option("--explain", is_flag=True, help="Show why each track was chosen.")
@click.option("--dry-run", is_flag=True, help="Plan and print; write no files.")
@json_option
def build(
    arc: str,
    db: Path | None,
    seed: int | None,
    profiles: tuple[Path, ...],
    minutes: float | None,
    name: str | None,
    out_dir: Path,
    formats: tuple[str, ...],
    source: str,
    artist_gap: int,
    explain: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Plan a session for ARC (a name or a path) from the library and write it out."""
    from setlist.session import BuildRequest, build_session

    result = build_session(
        BuildRequest(
            arc=arc,
            db=db,
            seed=seed,
            profiles=profiles,
            minutes=minutes,
            out_dir=out_dir,
            name=name,
            formats=formats,
            source=None if source == "all" else source,
            write=not dry_run,
            artist_gap=artist_gap,
        )
    )
    s = result.setlist
    if as_json:
        from setlist.exports import setlist_to_dict

        emit_json({**setlist_to_dict(s), "files": [str(f) for f in result.files]})
        return
    _print_setlist(s, explain=explain)
    m = s.metrics
    click.echo()
    click.echo(
        f"planned {len(s.entries)} tracks from {result.candidates} candidates "
        f"in {format_clock(s.length)} (seed {s.seed})"
    )
    worst = (
        f" before '{s.entries[m.worst_transition_index].track.title}' at "
        f"{format_clock(s.entries[m.worst_transition_index].start)}"
        if m.worst_transition_index > 0
        else ""
    )
    click.echo(f"fit error (RMSE)   {m.fit_rmse:.3f}")
    click.echo(f"worst transition   {m.worst_transition:.3f}{worst}")
    click.echo(
        f"timing error       {m.timing_error:.1f}s "
        f"(phase boundaries within {m.boundary_error:.0f}s)"
    )
    click.echo(f"violations         {len(m.violations) or 'none'}")
    for v in m.violations:
        click.echo(f"  - {v}")
    for note in s.notes:
        click.echo(f"note: {note}")
    for f in result.files:
        click.echo(f"wrote {display_path(f)}")


def _print_setlist(s: Any, *, explain: bool = False) -> None:
    """The timeline: clock, phase, length, target -> realised intensity, track."""
    phase = None
    for e in s.entries:
        if e.phase != phase:
            phase = e.phase
            span = next(p for p in s.phases if p.name == phase)
            click.echo(f"-- {phase} ({format_clock(span.start)}-{format_clock(span.end)})")
        who = f"{e.track.artist} - " if e.track.artist else ""
        cut = " (faded early)" if e.cut else ""
        click.echo(
            f"{format_clock(e.start)}  {format_length(e.length):>6}  "
            f"{e.target:.2f}->{e.realised:.2f}  {who}{e.track.title}{cut}"
        )
        if explain:
            parts = ", ".join(f"{p.name} {p.cost:+.2f}" for p in e.penalties) or "no cost"
            click.echo(f"{'':>10}why: cost {e.cost:.2f} = {parts}")


@cli.command("show")
@click.argument("playlist", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--explain", is_flag=True, help="Show why each track was chosen.")
@json_option
def show(playlist: Path, explain: bool, as_json: bool) -> None:
    """Print a built session (NAME.setlist.yaml) as a timeline."""
    from setlist.exports import load_setlist, setlist_to_dict

    corrected: list[str] = []
    s = load_setlist(playlist, corrected)
    for line in corrected:  # hand-edited levels: what show, render and play will use
        click.echo(f"setlist: warning: {line}", err=True)
    if as_json:
        emit_json(setlist_to_dict(s))
        return
    click.echo(f"{s.arc.name}: {format_clock(s.length)}, {len(s.entries)} tracks, seed {s.seed}")
    _print_setlist(s, explain=explain)


@cli.command("demo-library")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--tracks", type=click.IntRange(min=1), default=60, show_default=True, help="How many tracks."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed; the same seed gives the same library.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: one per core).",
)
@click.option("--force", is_flag=True, help="Rewrite files that are already up to date.")
def demo_library(folder: Path, tracks: int, seed: int, jobs: int | None, force: bool) -> None:
    """Synthesise a royalty-free demo library into FOLDER (several formats, real tags).

    Files already there from the same seed are kept, so running it again is quick.
    """
    from setlist.library.demo import generate_demo_library

    progress = TerminalProgress()
    progress.start("synthesising", tracks)
    try:
        paths = generate_demo_library(
            folder,
            tracks=tracks,
            seed=seed,
            jobs=jobs,
            force=force,
            progress=lambda done, total: progress.advance(),
        )
    finally:
        progress.finish()
    click.echo(f"wrote {len(paths)} tracks to {display_path(folder)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _register() -> None:
    """Commands that live in their own modules (playback, render, Spotify)."""
    from setlist.cli_play import control, log, play
    from setlist.cli_render import render
    from setlist.cli_spotify import spotify

    for command in (play, control, log, render, spotify):
        cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="setlist")
