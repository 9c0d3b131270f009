"""A planned session on disk: the re-loadable setlist file, playlists, sheet and plot.

Pure renderers (`setlist_to_dict`, `setlist_yaml`, `m3u8_text`, `xspf_text`,
`sheet_html`, `plot_svg`) turn a `Setlist` into text and `parse_setlist` /
`setlist_from_dict` turn data back into one; only `load_setlist` and `write_outputs`
touch the filesystem. The setlist file is the whole plan (arc included), so `setlist
show` and `setlist play` need neither the library nor the template it came from, and a
file someone edited by hand is checked with `file:line:column` positions like an arc.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import numpy as np
import yaml

from setlist.errors import Problem, SetlistFileError
from setlist.fsutil import display_path, read_data_file, write_together
from setlist.levels import check_setlist
from setlist.models import (
    Arc,
    Curve,
    DurationBounds,
    Features,
    Keyframe,
    Penalty,
    Phase,
    PhaseSpan,
    PlanMetrics,
    Setlist,
    SetlistEntry,
    TagRule,
    TempoRange,
    Track,
    Vocals,
)
from setlist.units import format_clock, format_length
from setlist.yamlsrc import Mark, Node, parse_yaml
from setlist.yamlsrc import join_path as _join
from setlist.yamlsrc import show_value as _show
from setlist.yamlsrc import suggest as _suggest

#: The setlist file format this module writes and reads.
FORMAT_VERSION = 1
#: Output formats `write_outputs` knows, in the order `setlist build` writes them.
FORMATS = ("setlist", "m3u8", "xspf", "html", "svg")
SUFFIXES = {
    "setlist": ".setlist.yaml",
    "m3u8": ".m3u8",
    "xspf": ".xspf",
    "html": ".html",
    "svg": ".svg",
}
XSPF_NS = "http://xspf.org/ns/0/"
SVG_NS = "http://www.w3.org/2000/svg"

_HINT = "the file is written by 'setlist build'; fix the line above or build the session again"
_T = TypeVar("_T")


# --- the setlist file: model -> data --------------------------------------------------


def setlist_to_dict(setlist: Setlist) -> dict[str, Any]:
    """The whole plan as plain data (YAML- and JSON-ready); `setlist_from_dict` inverts it.

    Seconds are exact floats; `clock`/`until`/`start`/`length` beside them are derived
    for people reading the file and ignored when it is loaded.
    """
    s = setlist
    m = s.metrics
    return {
        "version": FORMAT_VERSION,
        "arc": _arc_data(s.arc),
        "seed": int(s.seed),
        "created": s.created,
        "library": s.library,
        "loudness_target": float(s.loudness_target),
        "profiles": list(s.profiles),
        "max_volume_db": _opt(s.max_volume_db),
        "notes": list(s.notes),
        "length": float(s.length),
        "metrics": {
            "fit_rmse": float(m.fit_rmse),
            "worst_transition": float(m.worst_transition),
            "worst_transition_index": int(m.worst_transition_index),
            "timing_error": float(m.timing_error),
            "boundary_error": float(m.boundary_error),
            "violations": list(m.violations),
        },
        "phases": [
            {
                "name": p.name,
                "planned_start": float(p.planned_start),
                "planned_end": float(p.planned_end),
                "start": float(p.start),
                "end": float(p.end),
            }
            for p in s.phases
        ],
        "entries": [_entry_data(e) for e in s.entries],
    }


def _arc_data(arc: Arc) -> dict[str, Any]:
    phases = []
    for phase, start in zip(arc.phases, arc.starts, strict=True):
        b = phase.bounds
        phases.append(
            {
                "name": phase.name,
                "start": float(start),
                "duration": float(phase.duration),
                "bounds": None
                if b is None
                else {
                    "min": float(b.minimum),
                    "nominal": float(b.nominal),
                    "max": None if math.isinf(b.maximum) else float(b.maximum),
                },
                "crossfade": float(phase.crossfade),
                "volume_db": float(phase.volume_db),
                "vocals": phase.vocals.value,
                "tempo": None
                if phase.tempo is None
                else {"low": float(phase.tempo.low), "high": float(phase.tempo.high)},
                "tags": {"prefer": list(phase.tags.prefer), "avoid": list(phase.tags.avoid)},
                "notes": phase.notes,
                "intensity": _keyframes_data(phase),
            }
        )
    return {
        "name": arc.name,
        "origin": arc.origin,
        "description": arc.description,
        "length": arc.length,
        "dose_at": float(arc.dose_at),
        "tolerance": float(arc.tolerance),
        "phases": phases,
    }


def _keyframes_data(phase: Phase) -> list[dict[str, Any]]:
    """Keyframes at absolute seconds into the phase, keeping how each was written.

    A keyframe written as a share of the phase (`fraction`) or without a time (`spread`)
    moves when the phase is stretched, so that is kept for an exact rebuild; `at` is
    where it falls at this phase's duration either way.
    """
    xs, _ = phase.intensity.knots(phase.duration)
    out = []
    for k, x in zip(phase.intensity.keyframes, xs, strict=True):
        at = k.seconds if k.seconds is not None else float(x) * phase.duration
        item: dict[str, Any] = {"at": float(at), "value": float(k.value)}
        if k.fraction is not None:
            item["fraction"] = float(k.fraction)
        elif k.seconds is None:
            item["spread"] = True
        out.append(item)
    return out


def _entry_data(e: SetlistEntry) -> dict[str, Any]:
    return {
        "clock": format_clock(e.start),
        "until": format_clock(e.end),
        "phase": e.phase,
        "start": float(e.start),
        "length": float(e.length),
        "offset": float(e.offset),
        "fade_in": float(e.fade_in),
        "fade_out": float(e.fade_out),
        "gain_db": float(e.gain_db),
        "volume_db": float(e.volume_db),
        "target": float(e.target),
        "realised": float(e.realised),
        "cut": bool(e.cut),
        "ramp": [[float(x), float(y)] for x, y in e.ramp],
        "penalties": [
            {"name": p.name, "cost": float(p.cost), "detail": p.detail} for p in e.penalties
        ],
        "track": _track_data(e.track),
    }


def _opt(value: float | None, kind: type[float] | type[int] = float) -> Any:
    return None if value is None else kind(value)


def _track_data(t: Track) -> dict[str, Any]:
    f = t.features
    return {
        "id": int(t.id),
        "uri": t.uri,
        "title": t.title,
        "artist": t.artist,
        "album": t.album,
        "album_artist": t.album_artist,
        "genre": t.genre,
        "source": t.source,
        "duration": float(t.duration),
        "track_number": _opt(t.track_number, int),
        "disc_number": _opt(t.disc_number, int),
        "year": _opt(t.year, int),
        "isrc": t.isrc,
        "bpm": _opt(t.bpm),
        "language": t.language,
        "vocals": t.vocals,
        "tags": list(t.tags),
        "features": None
        if f is None
        else {
            "duration": float(f.duration),
            "loudness_lufs": float(f.loudness_lufs),
            "loudness_range_lu": float(f.loudness_range_lu),
            "peak_dbfs": float(f.peak_dbfs),
            "intensity": float(f.intensity),
            "tempo_bpm": _opt(f.tempo_bpm),
            "tempo_confidence": float(f.tempo_confidence),
            "lead_silence": float(f.lead_silence),
            "trail_silence": float(f.trail_silence),
            "brightness_hz": float(f.brightness_hz),
            "onset_rate": float(f.onset_rate),
            "voice": float(f.voice),
            "version": int(f.version),
            "envelope_step": float(f.envelope_step),
            "envelope": [float(v) for v in f.envelope],
        },
    }


class _Dumper(yaml.SafeDumper):
    """SafeDumper with house style: short scalar lists and small records inline, and
    multi-line text as literal blocks, so the file stays readable at a glance."""


def _short(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= 40 and "\n" not in value
    return value is None or isinstance(value, bool | int | float)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(_short(v) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flow = len(data) <= 3 and all(_short(v) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Literal blocks for printable multi-line text (the emitter falls back to quotes when a
    # block cannot hold it exactly). Anything else unprintable is double-quoted, the one
    # style that escapes every character: PyYAML's single quotes fold U+0085/U+2028.
    style = None
    if "\n" in data and all(c == "\n" or c.isprintable() for c in data):
        style = "|"
    elif not data.isprintable():
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(str, _represent_str)


def setlist_yaml(setlist: Setlist) -> str:
    """The text of `NAME.setlist.yaml`: a header comment, then `setlist_to_dict` as YAML.

    Floats are written with `repr`, so loading gives back exactly the same setlist.
    """
    s = setlist
    built = f", built {s.created}" if s.created else ""
    header = [
        f"setlist session plan: {s.arc.name}{built} (seed {s.seed}).",
        "Open with 'setlist show FILE' or 'setlist play FILE'. Times are seconds from the",
        "start of the music; the h:mm:ss clocks beside them are only for reading.",
    ]
    comment = "".join(f"# {_one_line(line)}\n" for line in header)
    body = yaml.dump(  # a SafeDumper subclass: only plain data can be written
        setlist_to_dict(s),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return comment + body


# --- the setlist file: data -> model --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    """One key a mapping in the file may hold: how its value is read, and if it must be."""

    kind: str
    required: bool = False


_INFO = _Key("info")  # derived, written for readers, ignored on load


class _Invalid(Exception):
    """One located problem; stops reading the record it was found in."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _fail(mark: Mark, path: str, message: str) -> NoReturn:
    raise _Invalid(Problem(mark.origin, mark.line, mark.column, path, message))


_NONFINITE = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


def _number(node: Node, path: str) -> float:
    v = node.value
    if isinstance(v, str) and v.lower() in _NONFINITE:  # how YAML writes inf and nan
        return _NONFINITE[v.lower()]
    if isinstance(v, bool) or not isinstance(v, int | float):
        _fail(node.mark, path, f"{_show(v)}: expected a number")
    return float(v)


def _convert(node: Node, path: str, kind: str) -> Any:
    v = node.value
    if kind in ("opt_float", "opt_int", "opt_map") and v is None:
        return None
    if kind in ("float", "opt_float"):
        return _number(node, path)
    if kind == "nonneg":
        x = _number(node, path)
        if not x >= 0:
            _fail(node.mark, path, f"{_show(v)}: cannot be negative")
        return x
    if kind == "positive":
        x = _number(node, path)
        if not x > 0:
            _fail(node.mark, path, f"{_show(v)}: must be greater than zero")
        return x
    if kind in ("int", "opt_int"):
        if isinstance(v, bool) or not isinstance(v, int):
            _fail(node.mark, path, f"{_show(v)}: expected a whole number")
        return v
    if kind == "str":
        if not isinstance(v, str):
            _fail(node.mark, path, f"{_show(v)}: expected text")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            _fail(node.mark, path, f"{_show(v)}: expected true or false")
        return v
    if kind in ("strs", "floats"):
        if not isinstance(v, list):
            _fail(node.mark, path, f"{_show(v)}: expected a list")
        item = "str" if kind == "strs" else "float"
        return tuple(_convert(n, _join(path, i), item) for i, n in enumerate(v))
    if kind == "pairs":
        if not isinstance(v, list):
            _fail(node.mark, path, f"{_show(v)}: expected a list of [seconds, dB] pairs")
        out = []
        for i, n in enumerate(v):
            pair = _convert(n, _join(path, i), "floats")
            if len(pair) != 2 or not all(math.isfinite(x) for x in pair):
                _fail(n.mark, _join(path, i), "expected [seconds, dB], two finite numbers")
            out.append((pair[0], pair[1]))
        return tuple(out)
    if kind == "list":
        if not isinstance(v, list):
            _fail(node.mark, path, f"{_show(v)}: expected a list")
        return node
    if kind in ("map", "opt_map"):
        if not isinstance(v, dict):
            _fail(node.mark, path, f"{_show(v)}: expected a mapping")
        return node
    raise AssertionError(f"unknown kind {kind}")


def _read(node: Node, path: str, spec: dict[str, _Key]) -> dict[str, Any]:
    """The mapping's values, converted by `spec`; nested records come back as Nodes."""
    if not isinstance(node.value, dict):
        keys = ", ".join(k for k, key in spec.items() if key.required)
        _fail(node.mark, path, f"{_show(node.value)}: expected a mapping with {keys}")
    for key, child in node.value.items():
        if key not in spec:
            guess = _suggest(key, spec)
            tail = f"did you mean '{guess}'?" if guess else f"expected one of: {', '.join(spec)}"
            _fail(child.key_mark or child.mark, _join(path, key), f"unknown key ({tail})")
    out: dict[str, Any] = {}
    for key, k in spec.items():
        child = node.value.get(key)
        if child is None:
            if k.required:
                _fail(node.mark, _join(path, key), f"missing required key '{key}'")
            continue
        if k is not _INFO:
            out[key] = _convert(child, _join(path, key), k.kind)
    return out


def _build(make: Callable[..., _T], node: Node, path: str, **kwargs: Any) -> _T:
    """A model from read values; its own validation becomes a located problem."""
    try:
        return make(**kwargs)
    except ValueError as exc:
        _fail(node.mark, path, str(exc))


_TOP = {
    "version": _Key("int", True),
    "arc": _Key("map", True),
    "seed": _Key("int"),
    "created": _Key("str"),
    "library": _Key("str"),
    "loudness_target": _Key("float"),
    "profiles": _Key("strs"),
    "max_volume_db": _Key("opt_float"),
    "notes": _Key("strs"),
    "length": _INFO,
    "metrics": _Key("map", True),
    "phases": _Key("list", True),
    "entries": _Key("list", True),
}
_ARC = {
    "name": _Key("str", True),
    "origin": _Key("str"),
    "description": _Key("str"),
    "length": _INFO,
    "dose_at": _Key("nonneg"),
    "tolerance": _Key("nonneg"),
    "phases": _Key("list", True),
}
_PHASE = {
    "name": _Key("str", True),
    "start": _INFO,
    "duration": _Key("positive", True),
    "bounds": _Key("opt_map"),
    "crossfade": _Key("nonneg"),
    "volume_db": _Key("float"),
    "vocals": _Key("str"),
    "tempo": _Key("opt_map"),
    "tags": _Key("map"),
    "notes": _Key("str"),
    "intensity": _Key("list", True),
}
_BOUNDS = {
    "min": _Key("positive", True),
    "nominal": _Key("positive", True),
    "max": _Key("opt_float", True),
}
_TEMPO = {"low": _Key("positive", True), "high": _Key("positive", True)}
_TAGS = {"prefer": _Key("strs"), "avoid": _Key("strs")}
_KEYFRAME = {
    "at": _Key("nonneg", True),
    "value": _Key("float", True),
    "fraction": _Key("float"),
    "spread": _Key("bool"),
}
_METRICS = {
    "fit_rmse": _Key("float", True),
    "worst_transition": _Key("float", True),
    "worst_transition_index": _Key("int", True),
    "timing_error": _Key("float", True),
    "boundary_error": _Key("float", True),
    "violations": _Key("strs"),
}
_SPAN = {
    "name": _Key("str", True),
    "planned_start": _Key("float", True),
    "planned_end": _Key("float", True),
    "start": _Key("float", True),
    "end": _Key("float", True),
}
_ENTRY = {
    "clock": _INFO,
    "until": _INFO,
    "phase": _Key("str", True),
    "start": _Key("nonneg", True),
    "length": _Key("positive", True),
    "offset": _Key("nonneg"),
    "fade_in": _Key("nonneg"),
    "fade_out": _Key("nonneg"),
    "gain_db": _Key("float"),
    "volume_db": _Key("float"),
    "target": _Key("float"),
    "realised": _Key("float"),
    "cut": _Key("bool"),
    "penalties": _Key("list"),
    "ramp": _Key("pairs"),
    "track": _Key("map", True),
}
_PENALTY = {"name": _Key("str", True), "cost": _Key("float", True), "detail": _Key("str")}
_TRACK = {
    "id": _Key("int", True),
    "uri": _Key("str", True),
    "title": _Key("str", True),
    "artist": _Key("str"),
    "album": _Key("str"),
    "album_artist": _Key("str"),
    "genre": _Key("str"),
    "source": _Key("str"),
    "duration": _Key("nonneg", True),
    "track_number": _Key("opt_int"),
    "disc_number": _Key("opt_int"),
    "year": _Key("opt_int"),
    "isrc": _Key("str"),
    "bpm": _Key("opt_float"),
    "language": _Key("str"),
    "vocals": _Key("str"),
    "tags": _Key("strs"),
    "features": _Key("opt_map"),
}
_FEATURES = {
    "duration": _Key("nonneg", True),
    "loudness_lufs": _Key("float", True),
    "loudness_range_lu": _Key("float", True),
    "peak_dbfs": _Key("float", True),
    "intensity": _Key("float", True),
    "tempo_bpm": _Key("opt_float", True),
    "tempo_confidence": _Key("float", True),
    "lead_silence": _Key("float", True),
    "trail_silence": _Key("float", True),
    "brightness_hz": _Key("float", True),
    "onset_rate": _Key("float", True),
    "voice": _Key("float", True),
    "version": _Key("int", True),
    "envelope_step": _Key("positive", True),
    "envelope": _Key("floats", True),
}


def _read_arc(node: Node, path: str) -> Arc:
    v = _read(node, path, _ARC)
    phases_node = v.pop("phases")
    phases = tuple(
        _read_phase(n, _join(_join(path, "phases"), i)) for i, n in enumerate(phases_node.value)
    )
    return _build(Arc, node, path, phases=phases, **v)


def _read_phase(node: Node, path: str) -> Phase:
    v = _read(node, path, _PHASE)
    bounds = tempo = None
    if v.get("bounds") is not None:
        b = _read(v["bounds"], _join(path, "bounds"), _BOUNDS)
        bounds = _build(
            DurationBounds,
            v["bounds"],
            _join(path, "bounds"),
            minimum=b["min"],
            nominal=b["nominal"],
            maximum=math.inf if b["max"] is None else b["max"],
        )
    if v.get("tempo") is not None:
        t = _read(v["tempo"], _join(path, "tempo"), _TEMPO)
        tempo = _build(TempoRange, v["tempo"], _join(path, "tempo"), **t)
    tags = TagRule()
    if "tags" in v:
        tpath = _join(path, "tags")
        tags = _build(TagRule, v["tags"], tpath, **_read(v["tags"], tpath, _TAGS))
    vocals = Vocals.ALLOW
    if "vocals" in v:
        choices = [c.value for c in Vocals]
        if v["vocals"] not in choices:
            mark = node.value["vocals"].mark
            _fail(mark, _join(path, "vocals"), f"{_show(v['vocals'])}: expected one of {choices}")
        vocals = Vocals(v["vocals"])
    kpath = _join(path, "intensity")
    knodes = v["intensity"].value
    keyframes = tuple(_read_keyframe(n, _join(kpath, i)) for i, n in enumerate(knodes))
    if not keyframes:
        _fail(v["intensity"].mark, kpath, "an intensity curve needs at least one keyframe")
    phase = _build(
        Phase,
        node,
        path,
        name=v["name"],
        duration=v["duration"],
        intensity=Curve(tuple(k for k, _ in keyframes)),
        bounds=bounds,
        tempo=tempo,
        vocals=vocals,
        tags=tags,
        **{k: v[k] for k in ("crossfade", "volume_db", "notes") if k in v},
    )
    # `at` is derived for spread and fractional keyframes; an edited one must not be
    # ignored silently, so it has to agree with where the keyframe really falls.
    xs, _ = phase.intensity.knots(phase.duration)
    for i, ((_, at), x) in enumerate(zip(keyframes, xs, strict=True)):
        where = float(x) * phase.duration
        if abs(at - where) > 1e-6 * max(1.0, phase.duration):
            mark = knodes[i].value["at"].mark
            _fail(
                mark,
                _join(_join(kpath, i), "at"),
                f"{at:g}s, but this keyframe falls at {where:g}s (it is placed by "
                "'fraction' or 'spread'; remove that key to pin it where 'at' says)",
            )
    return phase


def _read_keyframe(node: Node, path: str) -> tuple[Keyframe, float]:
    v = _read(node, path, _KEYFRAME)
    spread, fraction = v.get("spread", False), v.get("fraction")
    if spread and fraction is not None:
        _fail(node.mark, path, "a keyframe is either spread or at a fraction, not both")
    if spread:
        k = _build(Keyframe, node, path, value=v["value"])
    elif fraction is not None:
        k = _build(Keyframe, node, path, value=v["value"], fraction=fraction)
    else:
        k = _build(Keyframe, node, path, value=v["value"], seconds=v["at"])
    return k, v["at"]


def _read_entry(node: Node, path: str) -> SetlistEntry:
    v = _read(node, path, _ENTRY)
    tnode = v.pop("track")
    tpath = _join(path, "track")
    t = _read(tnode, tpath, _TRACK)
    features = None
    if t.get("features") is not None:
        fnode = t["features"]
        f = _read(fnode, _join(tpath, "features"), _FEATURES)
        features = _build(Features, fnode, _join(tpath, "features"), **f)
    t["features"] = features
    track = _build(Track, tnode, tpath, **t)
    penalties: tuple[Penalty, ...] = ()
    if "penalties" in v:
        ppath = _join(path, "penalties")
        penalties = tuple(
            _build(Penalty, n, _join(ppath, i), **_read(n, _join(ppath, i), _PENALTY))
            for i, n in enumerate(v.pop("penalties").value)
        )
    return _build(SetlistEntry, node, path, track=track, penalties=penalties, **v)


def _check_plan(
    arc: Arc, spans: list[PhaseSpan], entries: list[SetlistEntry], top: dict[str, Any]
) -> Iterable[Problem]:
    """What a player relies on beyond each record: known phases, order, no repeats."""
    names = [p.name for p in arc.phases]
    pnode, enodes = top["phases"], top["entries"].value
    if [s.name for s in spans] != names:
        m = pnode.mark
        yield Problem(
            m.origin, m.line, m.column, "phases", f"expected one span per arc phase: {names}"
        )
    first: dict[int, int] = {}
    for i, e in enumerate(entries):
        fields = enodes[i].value
        if e.phase not in names:
            m = fields["phase"].mark
            yield Problem(
                m.origin,
                m.line,
                m.column,
                f"entries[{i}].phase",
                f"{e.phase!r} is not a phase of the arc ({', '.join(names)})",
            )
        if i and e.start < entries[i - 1].start:
            m = fields["start"].mark
            yield Problem(
                m.origin,
                m.line,
                m.column,
                f"entries[{i}].start",
                f"{e.start:g}s is before the previous entry's start; entries run in order",
            )
        if e.track.id in first:
            m = fields["track"].value["id"].mark
            yield Problem(
                m.origin,
                m.line,
                m.column,
                f"entries[{i}].track.id",
                f"track {e.track.id} already plays at entries[{first[e.track.id]}]",
            )
        first.setdefault(e.track.id, i)


def parse_setlist(root: Node) -> Setlist:
    """The setlist in a parsed file, or `SetlistFileError` listing every located problem."""
    try:
        top = _read(root, "", _TOP)
    except _Invalid as exc:
        raise SetlistFileError([exc.problem], hint=_HINT) from None
    if top["version"] != FORMAT_VERSION:
        m = root.value["version"].mark
        raise SetlistFileError(
            [
                Problem(
                    m.origin,
                    m.line,
                    m.column,
                    "version",
                    f"unsupported version {top['version']} (this setlist reads version "
                    f"{FORMAT_VERSION})",
                )
            ],
            hint="build the session again with this version of setlist",
        )
    problems: list[Problem] = []

    def attempt(read: Callable[[Node, str], _T], node: Node, path: str) -> _T | None:
        try:
            return read(node, path)
        except _Invalid as exc:
            problems.append(exc.problem)
            return None

    def metrics(node: Node, path: str) -> PlanMetrics:
        return _build(PlanMetrics, node, path, **_read(node, path, _METRICS))

    def span(node: Node, path: str) -> PhaseSpan:
        return _build(PhaseSpan, node, path, **_read(node, path, _SPAN))

    arc = attempt(_read_arc, top["arc"], "arc")
    plan_metrics = attempt(metrics, top["metrics"], "metrics")
    spans = [attempt(span, n, f"phases[{i}]") for i, n in enumerate(top["phases"].value)]
    entries = [attempt(_read_entry, n, f"entries[{i}]") for i, n in enumerate(top["entries"].value)]
    if problems:
        raise SetlistFileError(problems, hint=_HINT)
    assert arc is not None and plan_metrics is not None
    good_spans = [s for s in spans if s is not None]
    good_entries = [e for e in entries if e is not None]
    problems.extend(_check_plan(arc, good_spans, good_entries, top))
    if problems:
        raise SetlistFileError(problems, hint=_HINT)
    keys = ("seed", "created", "library", "loudness_target", "max_volume_db")
    scalars = {k: top[k] for k in keys if k in top}
    try:
        return Setlist(
            arc=arc,
            entries=tuple(good_entries),
            phases=tuple(good_spans),
            metrics=plan_metrics,
            profiles=top.get("profiles", ()),
            notes=top.get("notes", ()),
            **scalars,
        )
    except ValueError as exc:
        m = top["entries"].mark
        raise SetlistFileError(
            [Problem(m.origin, m.line, m.column, "entries", str(exc))], hint=_HINT
        ) from None


def _as_node(value: Any, mark: Mark) -> Node:
    if isinstance(value, dict):
        return Node({str(k): _as_node(v, mark) for k, v in value.items()}, mark, mark)
    if isinstance(value, list | tuple):
        return Node([_as_node(v, mark) for v in value], mark)
    return Node(value, mark)


def setlist_from_dict(data: Any, origin: str = "<data>") -> Setlist:
    """The setlist in plain data (e.g. `setlist_to_dict` output or JSON).

    Plain data has no positions, so problems point at `origin:1:1` with their key path.
    """
    return parse_setlist(_as_node(data, Mark(origin, 1, 1)))


def load_setlist(path: Path, corrections: list[str] | None = None) -> Setlist:
    """Read `NAME.setlist.yaml`; any failure is a `SetlistFileError` naming the file.

    Levels are brought within the plan's own limits as the file is read (`levels`), so a
    hand-edited gain or volume never reaches a player; each correction is appended to
    `corrections` (one line each, naming the file and entry) for the caller to show.
    """
    text = read_data_file(
        path,
        SetlistFileError,
        kind="setlist file",
        missing_hint="'setlist build' writes NAME.setlist.yaml",
    )
    shown = display_path(path)
    setlist, notes = check_setlist(parse_setlist(parse_yaml(text, shown, SetlistFileError)))
    if corrections is not None:
        corrections.extend(f"{shown}: {note}" for note in notes)
    return setlist


# --- playlists ------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Text fit for one line of a playlist or comment: breaks become spaces, and other
    unprintable characters U+FFFD."""
    joined = " ".join(text.splitlines())
    return "".join(c if c.isprintable() else "\ufffd" for c in joined)


def _local_path(uri: str) -> bytes | None:
    """The path bytes a local track names (`file:///...` or a bare absolute path)."""
    if uri.startswith("file://"):
        rest = uri[len("file://") :]
        return urllib.parse.unquote_to_bytes(rest) if rest.startswith("/") else None
    if uri.startswith("/"):
        return os.fsencode(uri)
    return None


def _file_uri(raw: bytes) -> str:
    """A `file://` URI from path bytes, percent-encoded like the library index writes."""
    return "file://" + urllib.parse.quote(raw, safe="/")


def _location(uri: str) -> str:
    """What a playlist should open: a normalised file URI, or the URI as given."""
    raw = _local_path(uri)
    return uri if raw is None else _file_uri(raw)


def _relative(raw: bytes, base: bytes) -> bytes | None:
    """`raw` relative to `base`, or None when they share nothing below the root."""
    try:
        common = os.path.commonpath([raw, base])
        if not common.strip(os.sep.encode()):  # only the root in common
            return None
        return os.path.relpath(raw, base)
    except ValueError:  # different drives, mixed relative/absolute
        return None


def _m3u_location(uri: str, base: bytes | None) -> str:
    raw = _local_path(uri)
    if raw is None:
        return _one_line(uri)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _file_uri(raw)  # M3U8 is UTF-8: the URI keeps the bytes exact
    if "\n" in text or "\r" in text:
        return _file_uri(raw)
    rel = _relative(raw, base) if base is not None else None
    if rel is None:
        return text
    rtext = rel.decode("utf-8", errors="strict")
    return "./" + rtext if rtext.startswith("#") else rtext  # '#' would read as a comment


def _label(e: SetlistEntry) -> str:
    t = e.track
    return _one_line(f"{t.artist} - {t.title}" if t.artist else t.title)


def _session_date(s: Setlist) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(s.created) if s.created else None
    except ValueError:
        return None


def _playlist_title(s: Setlist) -> str:
    when = _session_date(s)
    return f"{s.arc.name} {when.date().isoformat()}" if when else s.arc.name


def m3u8_text(setlist: Setlist, playlist_dir: Path | str | None = None) -> str:
    """An extended M3U (UTF-8) any player opens: the tracks in order, whole.

    Local files are written relative to `playlist_dir` (so a folder holding music and
    playlists can move) unless they share only the filesystem root with it; a path that
    is not UTF-8 is written as its `file://` URI. `#EXTINF` gives the planned play
    length and `#EXTGRP` the phase; fades and cuts need `setlist play`.
    """
    base = None if playlist_dir is None else os.fsencode(os.path.abspath(playlist_dir))  # noqa: PTH100
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(_playlist_title(setlist))}"]
    for e in setlist.entries:
        lines.append(f"#EXTINF:{round(e.length)},{_label(e)}")
        lines.append(f"#EXTGRP:{_one_line(e.phase)}")
        lines.append(_m3u_location(e.track.uri, base))
    return "\n".join(lines) + "\n"


_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    """Text XML 1.0 can hold: control characters and lone surrogates become U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def _sub(parent: ET.Element, tag: str, text: str) -> None:
    if text:
        ET.SubElement(parent, tag).text = _xml_safe(text)


def xspf_text(setlist: Setlist) -> str:
    """An XSPF 1 playlist; durations are the planned play lengths in milliseconds."""
    s = setlist
    root = ET.Element("playlist", {"version": "1", "xmlns": XSPF_NS})
    _sub(root, "title", _playlist_title(s))
    _sub(root, "creator", "setlist")
    _sub(root, "annotation", s.arc.description)
    when = _session_date(s)
    if when is not None:
        _sub(root, "date", when.isoformat())
    track_list = ET.SubElement(root, "trackList")
    for e in s.entries:
        t = e.track
        el = ET.SubElement(track_list, "track")
        _sub(el, "location", _location(t.uri))
        _sub(el, "title", t.title)
        _sub(el, "creator", t.artist)
        cut = ", faded early" if e.cut else ""
        _sub(el, "annotation", f"{e.phase} phase, from {format_clock(e.start)}{cut}")
        _sub(el, "album", t.album)
        if t.track_number is not None and t.track_number > 0:
            _sub(el, "trackNum", str(t.track_number))
        _sub(el, "duration", str(max(0, round(e.length * 1000))))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


# --- the plot -------------------------------------------------------------------------

_PHASE_COLOURS = {
    "onset": "#dbe9f6",
    "peak": "#f6dcd3",
    "return": "#e2efd7",
    "integration": "#ece1f3",
}
_OTHER_COLOURS = ("#f5ecd0", "#d8eeee", "#eedbe6", "#e4e4e4")
#: A plot never samples more points than this, however long the session.
MAX_PLOT_POINTS = 3000
TARGET_COLOUR = "#1f4e79"
REALISED_COLOUR = "#d9541e"


def _phase_colour(name: str, i: int) -> str:
    return _PHASE_COLOURS.get(name.casefold(), _OTHER_COLOURS[i % len(_OTHER_COLOURS)])


def _esc(text: str) -> str:
    return html.escape(_xml_safe(text), quote=True)


def _tick_step(total: float) -> float:
    for minutes in (5, 10, 15, 20, 30, 60, 120, 180, 360):
        if total / (minutes * 60) <= 10:
            return minutes * 60.0
    return 720 * 60.0


def plot_svg(setlist: Setlist, width: int = 900, height: int = 300) -> str:
    """Target vs realised intensity over the session as a standalone, inlinable SVG.

    Phase bands follow the arc's plan (the time the target curve is drawn in); thin
    lines mark where each track starts, so a jump in the realised curve can be traced
    to a transition.
    """
    if width < 200 or height < 120:
        raise ValueError("the plot needs at least 200x120 pixels")
    s, arc = setlist, setlist.arc
    total = max(s.length, arc.length)
    left, right, top, bottom = 40.0, 12.0, 30.0, 28.0
    pw, ph = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + t / total * pw

    def y(v: float) -> float:
        return top + (1.0 - min(1.0, max(0.0, v))) * ph

    out = [
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img">',
        f"<title>{_esc(f'{arc.name}: target and realised intensity')}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        '<g class="phases">',
    ]
    for i, (phase, start, end) in enumerate(zip(arc.phases, arc.starts, arc.ends, strict=True)):
        x0, x1 = x(float(start)), x(float(end))
        out.append(
            f'<rect x="{x0:.1f}" y="{top:.1f}" width="{x1 - x0:.1f}" height="{ph:.1f}" '
            f'fill="{_phase_colour(phase.name, i)}"/>'
        )
        if x1 - x0 >= 7 * len(phase.name) + 6:
            out.append(
                f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 13:.1f}" text-anchor="middle" '
                f'fill="#444444">{_esc(phase.name)}</text>'
            )
    out.append("</g>")
    out.append('<g class="axes" stroke="#bbbbbb" stroke-width="0.6">')
    labels = []
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{left:.1f}" y1="{y(v):.1f}" x2="{left + pw:.1f}" y2="{y(v):.1f}"/>')
        labels.append(f'<text x="{left - 5:.1f}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    step = _tick_step(total)
    for t in np.arange(0.0, total + 1e-6, step):
        tx = x(float(t))
        out.append(
            f'<line x1="{tx:.1f}" y1="{top + ph:.1f}" x2="{tx:.1f}" y2="{top + ph + 4:.1f}"/>'
        )
        minutes = round(float(t) / 60)
        labels.append(
            f'<text x="{tx:.1f}" y="{top + ph + 16:.1f}" text-anchor="middle">'
            f"{minutes // 60}:{minutes % 60:02d}</text>"
        )
    out.append("</g>")
    out.append('<g class="labels" fill="#444444">' + "".join(labels) + "</g>")
    out.append('<g class="tracks" stroke="#555555" stroke-width="0.6" stroke-opacity="0.45">')
    for e in s.entries[1:]:
        ex = x(e.start)
        out.append(f'<line x1="{ex:.1f}" y1="{top:.1f}" x2="{ex:.1f}" y2="{top + ph:.1f}"/>')
    out.append("</g>")
    if arc.dose_at > 0:
        dx = x(arc.dose_at)
        out.append(
            f'<g class="dose"><line x1="{dx:.1f}" y1="{top:.1f}" x2="{dx:.1f}" '
            f'y2="{top + ph:.1f}" stroke="#2a7a2a" stroke-width="1.2" stroke-dasharray="2 3"/>'
            f'<text x="{dx + 3:.1f}" y="{top + ph - 4:.1f}" fill="#2a7a2a">dose</text></g>'
        )
    n = max(2, min(math.ceil(total / 10.0), MAX_PLOT_POINTS) + 1)  # ~10 s apart
    times = np.linspace(0.0, total, n)
    curves = (
        ("target", np.asarray(arc.intensity_at(times)), TARGET_COLOUR, ' stroke-dasharray="6 4"'),
        ("realised", s.realised_at(times), REALISED_COLOUR, ""),
    )
    for name, values, colour, dash in curves:
        points = " ".join(
            f"{x(float(t)):.1f},{y(float(v)):.1f}" for t, v in zip(times, values, strict=True)
        )
        out.append(
            f'<polyline class="{name}" fill="none" stroke="{colour}" stroke-width="1.8"{dash} '
            f'points="{points}"/>'
        )
    lx = left + pw - 170
    out.append(
        f'<g class="legend"><line x1="{lx:.1f}" y1="12" x2="{lx + 24:.1f}" y2="12" '
        f'stroke="{TARGET_COLOUR}" stroke-width="1.8" stroke-dasharray="6 4"/>'
        f'<text x="{lx + 29:.1f}" y="16">target</text>'
        f'<line x1="{lx + 85:.1f}" y1="12" x2="{lx + 109:.1f}" y2="12" '
        f'stroke="{REALISED_COLOUR}" stroke-width="1.8"/>'
        f'<text x="{lx + 114:.1f}" y="16">realised</text></g>'
    )
    out.append(f'<text x="{left:.1f}" y="16" fill="#222222">intensity</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the session sheet ----------------------------------------------------------------

_CSS = """
body { font-family: Georgia, 'Times New Roman', serif; color: #111; margin: 2em auto;
  max-width: 60em; padding: 0 1em; font-size: 11pt; line-height: 1.35; }
h1 { font-size: 1.6em; margin: 0 0 0.2em; }
h2 { font-size: 1.15em; margin: 1.4em 0 0.4em; border-bottom: 1px solid #999; }
.description { margin: 0 0 0.8em; font-style: italic; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; margin: 0; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.2em 0.4em; text-align: left;
  vertical-align: top; }
th { border-bottom: 2px solid #666; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.phase-start td { border-top: 2px solid #888; }
.album { color: #555; font-size: 0.9em; }
.cut { font-weight: bold; }
figure { margin: 0.5em 0; }
figure svg { width: 100%; height: auto; }
.lines div { border-bottom: 1px solid #999; height: 2.2em; }
@media print {
  @page { margin: 14mm; }
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; }
  h2 { break-after: avoid; }
  tr, figure { break-inside: avoid; }
  thead { display: table-header-group; }
  section.notes { break-before: page; }
}
"""


def _db(value: float) -> str:
    return f"{value:+.1f}".replace("-", "\u2212") + " dB"


def _curve_summary(phase: Phase) -> str:
    return " \u2192 ".join(f"{k.value:.2f}" for k in phase.intensity.keyframes)


def sheet_html(setlist: Setlist) -> str:
    """A printable session sheet: the plan at a glance plus room for the therapist's notes.

    Self-contained (inline CSS and SVG, no scripts or links) so it prints and archives
    as one file; listener profiles appear only by file stem.
    """
    s, arc, m = setlist, setlist.arc, setlist.metrics
    when = _session_date(s)
    facts = [
        ("Date", when.strftime("%Y-%m-%d %H:%M") if when else s.created),
        ("Length", f"{format_clock(s.length)} (arc {format_clock(arc.length)})"),
        ("Tracks", str(len(s.entries))),
        ("Dose at", format_clock(arc.dose_at)),
        ("Seed", str(s.seed)),
        ("Loudness", f"{s.loudness_target:g} LUFS"),
        ("Listener profiles", ", ".join(s.profiles)),
        ("Library", s.library),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_esc(f'Session sheet: {_playlist_title(s)}')}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_esc(arc.name)}</h1>",
    ]
    if arc.description:
        parts.append(f'<p class="description">{_esc(arc.description)}</p>')
    parts.append('<dl class="facts">')
    parts += [f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts if v]
    parts += ["</dl>", "</header>"]
    parts += [
        "<section>",
        "<h2>Intensity</h2>",
        f"<figure>{plot_svg(s)}</figure>",
        "</section>",
    ]
    phases = {p.name: p for p in arc.phases}
    parts += [
        "<section>",
        "<h2>Phases</h2>",
        "<table><thead><tr><th>Phase</th><th>Planned</th><th>Realised</th><th>Off by</th>"
        "<th>Target</th><th>Notes</th></tr></thead><tbody>",
    ]
    for span in s.phases:
        phase = phases.get(span.name)
        parts.append(
            "<tr>"
            f"<td>{_esc(span.name)}</td>"
            f'<td class="num">{format_clock(span.planned_start)}\u2013'
            f"{format_clock(span.planned_end)}</td>"
            f'<td class="num">{format_clock(span.start)}\u2013{format_clock(span.end)}</td>'
            f'<td class="num">{span.error:+.0f}s</td>'
            f'<td class="num">{_esc(_curve_summary(phase)) if phase else ""}</td>'
            f"<td>{_esc(phase.notes) if phase else ''}</td>"
            "</tr>"
        )
    parts += ["</tbody></table>", "</section>"]
    parts += [
        "<section>",
        "<h2>Tracks</h2>",
        "<table><thead><tr><th>#</th><th>Start</th><th>Phase</th><th>Track</th>"
        "<th>Plays</th><th>Fade in/out</th><th>Level</th><th>Intensity</th><th></th>"
        "</tr></thead><tbody>",
    ]
    previous = None
    for i, e in enumerate(s.entries, 1):
        t = e.track
        who = f"{t.artist} \u2013 {t.title}" if t.artist else t.title
        album = f'<br><span class="album">{_esc(t.album)}</span>' if t.album else ""
        level = _db(e.gain_db) + (f" \u00b7 vol {_db(e.volume_db)}" if e.volume_db else "")
        cut = '<span class="cut" title="faded out before the track ends">cut</span>'
        row_class = ' class="phase-start"' if e.phase != previous else ""
        previous = e.phase
        parts.append(
            f"<tr{row_class}>"
            f'<td class="num">{i}</td>'
            f'<td class="num">{format_clock(e.start)}</td>'
            f"<td>{_esc(e.phase)}</td>"
            f"<td>{_esc(who)}{album}</td>"
            f'<td class="num">{format_length(e.length)}</td>'
            f'<td class="num">{e.fade_in:.0f}s / {e.fade_out:.0f}s</td>'
            f'<td class="num">{_esc(level)}</td>'
            f'<td class="num">{e.target:.2f} \u2192 {e.realised:.2f}</td>'
            f"<td>{cut if e.cut else ''}</td>"
            "</tr>"
        )
    parts += ["</tbody></table>", "</section>"]
    worst = ""
    if 0 < m.worst_transition_index < len(s.entries):
        worst = f" (into track {m.worst_transition_index + 1})"
    quality = [
        f"Fit error (RMSE): {m.fit_rmse:.3f}",
        f"Worst transition: {m.worst_transition:.3f}{worst}",
        f"Timing error: {m.timing_error:.1f}s; phase boundaries within {m.boundary_error:.0f}s",
        *m.violations,
        *s.notes,
    ]
    parts += ["<section>", "<h2>Plan</h2>", "<ul>"]
    parts += [f"<li>{_esc(line)}</li>" for line in quality]
    parts += ["</ul>", "</section>"]
    parts += [
        '<section class="notes">',
        "<h2>Notes</h2>",
        '<div class="lines">' + "<div></div>" * 16 + "</div>",
        "</section>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# --- writing ----------------------------------------------------------------------------


def _render(fmt: str, setlist: Setlist, out_dir: Path) -> str:
    if fmt == "setlist":
        return setlist_yaml(setlist)
    if fmt == "m3u8":
        return m3u8_text(setlist, out_dir)
    if fmt == "xspf":
        return xspf_text(setlist)
    if fmt == "html":
        return sheet_html(setlist)
    return plot_svg(setlist)


def write_outputs(
    setlist: Setlist, out_dir: Path, name: str, formats: Iterable[str] = FORMATS
) -> list[Path]:
    """Write `NAME.<suffix>` for each format into `out_dir` (created as needed).

    Everything is rendered before anything is written, and each file is replaced
    atomically, so a failure leaves no file half-written. Returns the paths written.
    """
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in SUFFIXES]
    if unknown:
        raise ValueError(
            f"unknown output format {', '.join(map(repr, unknown))} "
            f"(expected one of: {', '.join(FORMATS)})"
        )
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise ValueError(f"{name!r} is not a file name")
    folder = Path(out_dir).absolute()
    rendered = [(folder / f"{name}{SUFFIXES[f]}", _render(f, setlist, folder)) for f in wanted]
    # All or nothing: a full disk part-way leaves none of them (a playlist without its
    # setlist, or a setlist without its sheet, would look like a finished build).
    write_together([(path, text.encode("utf-8")) for path, text in rendered])
    return [path for path, _ in rendered]
