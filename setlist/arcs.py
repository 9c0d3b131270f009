"""Arc templates: the declarative field table, validation with positions, and JSON Schema.

Pure: works on located YAML nodes (`setlist.yamlsrc`) and takes an injected resolver for
`extends`, so file lookup stays in `setlist.arcfiles`. One table of fields drives both the
validator and the generated `arcs/schema.json`, so editors and `setlist arcs validate`
can never disagree about what a key means.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from setlist.errors import ArcError, Problem
from setlist.models import (
    CANONICAL_PHASES,
    Arc,
    Curve,
    DurationBounds,
    Keyframe,
    Phase,
    TagRule,
    TempoRange,
    Vocals,
    distribute,
)
from setlist.units import (
    DURATION_PATTERN,
    PERCENT_PATTERN,
    TEMPO_PATTERN,
    VOLUME_PATTERN,
    format_duration,
    parse_duration,
    parse_percent,
    parse_tempo,
    parse_volume,
)
from setlist.yamlsrc import Mark, Node
from setlist.yamlsrc import join_path as _join
from setlist.yamlsrc import show_value as _show
from setlist.yamlsrc import suggest as _suggest

#: Given an `extends` value and the origin that wrote it, return the parent's root node.
Resolver = Callable[[str, str], Node]

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
_NAME = re.compile(NAME_PATTERN)
DEFAULT_CROSSFADE = 8.0
DEFAULT_TOLERANCE = 30.0
TEMPO_LIMITS = (20.0, 250.0)
VOLUME_FLOOR_DB = -40.0


@dataclass(frozen=True, slots=True)
class Field:
    """One key an arc file may hold: its value kind, whether it must be there, and why."""

    kind: str
    help: str
    required: bool = False


_SESSION_DEFAULTS = {
    "crossfade": Field(
        "crossfade", "Default crossfade between tracks, e.g. '8s' (phases may override)."
    ),
    "volume": Field(
        "volume",
        "Default level relative to the loudness-normalised track: '-3dB', '70%' or 0.7 "
        "(amplitude; 50% = -6 dB). Never above 0 dB.",
    ),
    "vocals": Field("vocals", "Default vocals policy: none, allow or prefer."),
    "tempo": Field("tempo", "Default tempo range in BPM, e.g. '60-80'."),
    "tags": Field(
        "tags",
        "Default tags to prefer and avoid; a phase's 'avoid' adds to these, its 'prefer' "
        "replaces them.",
    ),
}

ARC_FIELDS: dict[str, Field] = {
    "name": Field("name", "Identifier: lowercase words joined by '-', e.g. 'ketamine-im'.", True),
    "description": Field("text", "What the arc is for, shown in 'setlist arcs list'."),
    "extends": Field(
        "ref", "Another template (name or path) to start from; keys here override it."
    ),
    "length": Field(
        "duration",
        "Whole session length; fixed phases must add up to it, flexible ones stretch to it.",
    ),
    "dose_at": Field(
        "duration", "When the medicine is given, from the start of the music (default 0)."
    ),
    "tolerance": Field(
        "duration", "How far a phase boundary may land from its planned time (default 30s)."
    ),
    **_SESSION_DEFAULTS,
    "phases": Field("phases", "The phases in order (onset, peak, return, integration, ...)."),
}

PHASE_FIELDS: dict[str, Field] = {
    "name": Field(
        "text", "onset, peak, return, integration, or a custom name (e.g. reconnection).", True
    ),
    "duration": Field(
        "phase_duration",
        "How long the phase lasts: '12m', '1h15m', or bounds {min, max, nominal}.",
        True,
    ),
    "intensity": Field(
        "intensity",
        "Target intensity 0-1: a number, [start, end], or keyframes [{at: '5m', value: 0.4}].",
        True,
    ),
    **_SESSION_DEFAULTS,
    "notes": Field("text", "Notes for the therapist, printed on the session sheet."),
}

BOUNDS_FIELDS: dict[str, Field] = {
    "min": Field("duration", "Shortest the phase may become."),
    "max": Field("duration", "Longest the phase may become."),
    "nominal": Field("duration", "Planned length (default: midway between min and max)."),
}

TAGS_FIELDS: dict[str, Field] = {
    "prefer": Field("tag_list", "Tags that make a track more welcome."),
    "avoid": Field("tag_list", "Tags a track must not have."),
}

KEYFRAME_FIELDS: dict[str, Field] = {
    "at": Field(
        "offset",
        "Time within the phase: a duration ('5m') or a share ('40%'); omitted = spread evenly.",
    ),
    "value": Field("unit", "Intensity 0-1 at that time.", True),
}


class _Checker:
    """Walks located nodes, building models and collecting every problem on the way."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    # -- reporting ---------------------------------------------------------
    def error(self, mark: Mark | None, path: str, message: str, severity: str = "error") -> None:
        m = mark or Mark("<arc>", 1, 1)
        self.problems.append(Problem(m.origin, m.line, m.column, path, message, severity))

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    # -- structure ---------------------------------------------------------
    def mapping(self, node: Node, spec: dict[str, Field], path: str) -> dict[str, Node] | None:
        if not isinstance(node.value, dict):
            keys = ", ".join(spec)
            self.error(node.mark, path, f"expected a mapping with keys: {keys}")
            return None
        known = {}
        for key, child in node.value.items():
            if key in spec:
                known[key] = child
                continue
            guess = _suggest(key, list(spec))
            tail = f"did you mean '{guess}'?" if guess else f"expected one of: {', '.join(spec)}"
            self.error(child.key_mark or child.mark, _join(path, key), f"unknown key ({tail})")
        for key, field in spec.items():
            if field.required and key not in node.value:
                self.error(node.mark, _join(path, key), f"missing required key '{key}'")
        return known

    def convert(self, node: Node, path: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(node.value)
        except ValueError as exc:
            self.error(node.mark, path, f"{_show(node.value)}: {exc}")
            return None

    # -- value kinds -------------------------------------------------------
    def duration(self, node: Node, path: str, *, positive: bool = True) -> float | None:
        seconds = self.convert(node, path, parse_duration)
        if seconds is not None and positive and seconds <= 0:
            self.error(node.mark, path, "must be longer than zero")
            return None
        return seconds

    def phase_duration(self, node: Node, path: str) -> DurationBounds | None:
        if not isinstance(node.value, dict):
            seconds = self.duration(node, path)
            return DurationBounds.fixed(seconds) if seconds is not None else None
        fields = self.mapping(node, BOUNDS_FIELDS, path)
        if fields is None:
            return None
        got = {k: self.duration(v, _join(path, k)) for k, v in fields.items()}
        if any(v is None for v in got.values()):
            return None
        if "min" not in got and "max" not in got:
            self.error(node.mark, path, "bounds need 'min', 'max' or both")
            return None
        # An absent max leaves the phase open-ended; an absent min keeps it from
        # shrinking below its plan; an absent nominal sits midway (or on the one bound).
        hi = got.get("max", math.inf)
        nominal = got.get("nominal")
        if nominal is None:
            nominal = (got["min"] + hi) / 2 if "min" in got and "max" in got else got.get("min", hi)
        lo = got.get("min", nominal)
        if not lo <= nominal <= hi:
            self.error(node.mark, path, "needs min <= nominal <= max")
            return None
        return DurationBounds(lo, nominal, hi)

    def unit(self, node: Node, path: str) -> float | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.error(node.mark, path, f"{_show(v)}: expected an intensity between 0 and 1")
            return None
        if not 0.0 <= v <= 1.0:
            self.error(node.mark, path, f"intensity {v:g} is outside 0-1")
            return None
        return float(v)

    def intensity(self, node: Node, path: str) -> Curve | None:
        v = node.value
        if not isinstance(v, list):
            value = self.unit(node, path)
            return Curve.constant(value) if value is not None else None
        if not v:
            self.error(node.mark, path, "an empty list has no intensity; give a number or values")
            return None
        keyframes: list[Keyframe] = []
        for i, item in enumerate(v):
            kpath = _join(path, i)
            if isinstance(item.value, dict):
                fields = self.mapping(item, KEYFRAME_FIELDS, kpath)
                if fields is None or "value" not in fields:
                    continue
                value = self.unit(fields["value"], _join(kpath, "value"))
                seconds = fraction = None
                at = fields.get("at")
                if at is not None:
                    if isinstance(at.value, str) and at.value.strip().endswith("%"):
                        fraction = self.convert(at, _join(kpath, "at"), parse_percent)
                    else:
                        seconds = self.duration(at, _join(kpath, "at"), positive=False)
                    if seconds is None and fraction is None:
                        continue
                if value is not None:
                    keyframes.append(Keyframe(value, seconds, fraction))
            else:
                value = self.unit(item, kpath)
                if value is not None:
                    keyframes.append(Keyframe(value))
        if len(keyframes) != len(v):
            return None
        return Curve(tuple(keyframes))

    def tempo(self, node: Node, path: str) -> TempoRange | None:
        v = node.value
        if isinstance(v, dict):
            fields = self.mapping(node, {"min": Field("bpm", ""), "max": Field("bpm", "")}, path)
            if fields is None or set(fields) != {"min", "max"}:
                if fields is not None:
                    self.error(node.mark, path, "a tempo range needs both 'min' and 'max'")
                return None
            v = [fields["min"].value, fields["max"].value]
        elif isinstance(v, list):
            v = [item.value for item in v]
        bounds = self.convert(Node(v, node.mark), path, parse_tempo)
        if bounds is None:
            return None
        low, high = bounds
        lo_lim, hi_lim = TEMPO_LIMITS
        if low > high:
            self.error(node.mark, path, f"tempo {low:g}-{high:g}: the lower bound comes first")
            return None
        if low < lo_lim or high > hi_lim:
            self.error(
                node.mark,
                path,
                f"tempo {low:g}-{high:g}: expected BPM within {lo_lim:g}-{hi_lim:g}",
            )
            return None
        return TempoRange(low, high)

    def vocals(self, node: Node, path: str) -> Vocals | None:
        choices = [v.value for v in Vocals]
        if node.value is False:  # a bare `no` or `false` reads as "no vocals"
            return Vocals.NONE
        if not isinstance(node.value, str) or node.value not in choices:
            guess = _suggest(str(node.value), choices)
            tail = f"; did you mean '{guess}'?" if guess else ""
            self.error(
                node.mark,
                path,
                f"{_show(node.value)} is not a vocals policy "
                f"(expected none, allow or prefer{tail})",
            )
            return None
        return Vocals(node.value)

    def tag_list(self, node: Node, path: str) -> tuple[str, ...] | None:
        items = node.value if isinstance(node.value, list) else [node]
        tags: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item.value, str) or not item.value.strip():
                where = _join(path, i) if isinstance(node.value, list) else path
                self.error(item.mark, where, f"{_show(item.value)}: expected a tag (a word)")
                return None
            tag = item.value.strip().casefold()
            if tag not in tags:
                tags.append(tag)
        return tuple(tags)

    def tags(self, node: Node, path: str) -> dict[str, tuple[str, ...]] | None:
        fields = self.mapping(node, TAGS_FIELDS, path)
        if fields is None:
            return None
        out = {k: self.tag_list(v, _join(path, k)) for k, v in fields.items()}
        if any(v is None for v in out.values()):
            return None
        return {k: v for k, v in out.items() if v is not None}

    def volume(self, node: Node, path: str) -> float | None:
        db = self.convert(node, path, parse_volume)
        if db is None:
            return None
        if db > 0:
            self.error(node.mark, path, f"{db:+.1f} dB would boost past the normalised level")
            return None
        if db < VOLUME_FLOOR_DB:
            self.error(node.mark, path, f"{db:.1f} dB is below {VOLUME_FLOOR_DB:g} dB (inaudible)")
            return None
        return db

    def text(self, node: Node, path: str) -> str | None:
        if not isinstance(node.value, str):
            self.error(node.mark, path, f"{_show(node.value)}: expected text")
            return None
        return node.value.strip()

    def name(self, node: Node, path: str) -> str | None:
        name = self.text(node, path)
        if name is not None and not _NAME.match(name):
            self.error(
                node.mark,
                path,
                f"{name!r}: expected lowercase words joined by '-', e.g. 'ketamine-im-high'",
            )
            return None
        return name

    # -- the settings a phase can inherit ---------------------------------
    def settings(self, fields: dict[str, Node], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in _SESSION_DEFAULTS:
            if key not in fields:
                continue
            node = fields[key]
            kpath = _join(path, key)
            if key == "crossfade":
                value = self.duration(node, kpath, positive=False)
            else:
                value = getattr(self, key)(node, kpath)
            if value is not None:
                out[key] = (value, node)
        return out

    # -- whole templates ---------------------------------------------------
    def arc(self, root: Node) -> Arc | None:
        fields = self.mapping(root, ARC_FIELDS, "")
        if fields is None:
            return None
        name = self.name(fields["name"], "name") if "name" in fields else None
        description = (
            self.text(fields["description"], "description") if "description" in fields else ""
        )
        length = self.duration(fields["length"], "length") if "length" in fields else None
        dose_at = (
            self.duration(fields["dose_at"], "dose_at", positive=False)
            if "dose_at" in fields
            else 0.0
        )
        tolerance = (
            self.duration(fields["tolerance"], "tolerance", positive=False)
            if "tolerance" in fields
            else DEFAULT_TOLERANCE
        )
        session = self.settings(fields, "")
        if "phases" not in fields:
            self.error(root.mark, "phases", "missing required key 'phases' (the list of phases)")
            return None
        phases_node = fields["phases"]
        if not isinstance(phases_node.value, list) or not phases_node.value:
            self.error(phases_node.mark, "phases", "expected a list of at least one phase")
            return None
        drafts = [
            self.phase_draft(node, _join("phases", i), session)
            for i, node in enumerate(phases_node.value)
        ]
        self.check_phase_names(drafts)
        if self.failed or name is None:
            return None
        bounds = [d["bounds"] for d in drafts]
        if length is None:
            durations = [b.nominal for b in bounds]
        else:
            try:
                durations = distribute(bounds, length)
            except ArcError as exc:
                fixed = all(b.is_fixed for b in bounds)
                hint = (
                    "make a phase flexible with duration: {min: ..., max: ...}, or fix the sums"
                    if fixed
                    else "widen the flexible phases' bounds or change 'length'"
                )
                self.error(fields["length"].mark, "length", f"{exc.message} ({hint})")
                return None
        phases = []
        for draft, duration in zip(drafts, durations, strict=True):
            phase = self.build_phase(draft, duration)
            if phase is not None:
                phases.append(phase)
        if self.failed:
            return None
        total = sum(durations)
        if dose_at is not None and dose_at >= total:
            self.error(
                fields["dose_at"].mark,
                "dose_at",
                f"{format_duration(dose_at)} is after the session ends ({format_duration(total)})",
            )
        shortest = min(durations)
        if tolerance is not None and tolerance >= shortest / 2:
            self.error(
                fields["tolerance"].mark,
                "tolerance",
                f"{format_duration(tolerance)} is not under half the shortest phase "
                f"({format_duration(shortest)}), so boundaries would mean nothing",
            )
        self.check_file_name(name, fields["name"])
        if self.failed or dose_at is None or tolerance is None:
            return None
        return Arc(
            name=name,
            phases=tuple(phases),
            description=description or "",
            dose_at=dose_at,
            tolerance=tolerance,
            origin=root.mark.origin,
        )

    def phase_draft(self, node: Node, path: str, session: dict[str, Any]) -> dict[str, Any]:
        draft: dict[str, Any] = {"path": path, "node": node, "ok": False}
        fields = self.mapping(node, PHASE_FIELDS, path)
        if fields is None:
            return draft
        draft["name"] = self.text(fields["name"], _join(path, "name")) if "name" in fields else None
        draft["name_node"] = fields.get("name")
        draft["bounds"] = (
            self.phase_duration(fields["duration"], _join(path, "duration"))
            if "duration" in fields
            else None
        )
        draft["intensity"] = (
            self.intensity(fields["intensity"], _join(path, "intensity"))
            if "intensity" in fields
            else None
        )
        draft["intensity_node"] = fields.get("intensity")
        own = self.settings(fields, path)
        merged = dict(session)
        merged.update(own)
        if "tags" in session and "tags" in own:
            avoid = session["tags"][0].get("avoid", ()) + own["tags"][0].get("avoid", ())
            prefer = own["tags"][0].get("prefer", session["tags"][0].get("prefer", ()))
            merged["tags"] = (
                {"prefer": prefer, "avoid": tuple(dict.fromkeys(avoid))},
                own["tags"][1],
            )
        draft["settings"] = merged
        draft["notes"] = (
            self.text(fields["notes"], _join(path, "notes")) if "notes" in fields else ""
        )
        draft["ok"] = all(draft[k] is not None for k in ("name", "bounds", "intensity", "notes"))
        return draft

    def check_file_name(self, name: str, node: Node) -> None:
        """Arcs are found by file name, so a different `name` would list one and find another."""
        origin = PurePath(node.mark.origin)
        if origin.suffix in (".yaml", ".yml") and origin.stem != name:
            self.error(
                node.mark,
                "name",
                f"{name!r} differs from the file name {origin.stem!r}, which is what "
                "'setlist arcs show' looks up; rename one to match",
                severity="warning",
            )

    def check_phase_names(self, drafts: list[dict[str, Any]]) -> None:
        seen: dict[str, int] = {}
        for draft in drafts:
            name, node = draft.get("name"), draft.get("name_node")
            if not name or node is None:
                continue
            key = name.casefold()
            if key in seen:
                self.error(
                    node.mark,
                    _join(draft["path"], "name"),
                    f"phase name {name!r} is used twice (first at line {seen[key]})",
                )
                continue
            seen[key] = node.mark.line
            if key not in CANONICAL_PHASES:
                guess = _suggest(key, CANONICAL_PHASES)
                if guess and difflib.SequenceMatcher(None, key, guess).ratio() >= 0.8:
                    self.error(
                        node.mark,
                        _join(draft["path"], "name"),
                        f"custom phase name {name!r}; did you mean '{guess}'?",
                        severity="warning",
                    )

    def build_phase(self, draft: dict[str, Any], duration: float) -> Phase | None:
        path = draft["path"]
        settings = draft["settings"]
        crossfade, cf_node = settings.get("crossfade", (DEFAULT_CROSSFADE, None))
        shortest = min(duration, draft["bounds"].minimum)
        if crossfade >= shortest / 2:
            self.error(
                cf_node.mark if cf_node else draft["node"].mark,
                _join(path, "crossfade"),
                f"a {format_duration(crossfade)} crossfade leaves no room in a "
                f"{format_duration(shortest)} phase (expected under half the phase)",
            )
            return None
        curve: Curve = draft["intensity"]
        bounds: DurationBounds = draft["bounds"]
        for seconds in {duration, bounds.minimum}:
            try:
                curve.knots(seconds)
            except ValueError as exc:
                self.error(draft["intensity_node"].mark, _join(path, "intensity"), str(exc))
                return None
        tags = settings.get("tags", ({}, None))[0]
        tempo = settings.get("tempo", (None, None))[0]
        try:
            tag_rule = TagRule(tags.get("prefer", ()), tags.get("avoid", ()))
        except ValueError as exc:
            node = settings["tags"][1]
            self.error(node.mark, _join(path, "tags"), str(exc))
            return None
        return Phase(
            name=draft["name"],
            duration=duration,
            intensity=curve,
            bounds=None if bounds.is_fixed else bounds,
            tempo=tempo,
            vocals=settings.get("vocals", (Vocals.ALLOW, None))[0],
            tags=tag_rule,
            crossfade=crossfade,
            volume_db=settings.get("volume", (0.0, None))[0],
            notes=draft["notes"],
        )


# -- extends ---------------------------------------------------------------
def _merge(parent: Node, child: Node) -> Node:
    """Child keys override the parent's; mappings merge key by key, lists are replaced."""
    if not (isinstance(parent.value, dict) and isinstance(child.value, dict)):
        return child
    merged = dict(parent.value)
    for key, node in child.value.items():
        merged[key] = _merge(parent.value[key], node) if key in parent.value else node
    return Node(merged, child.mark, child.key_mark)


def expand_extends(root: Node, resolve: Resolver | None, chain: tuple[str, ...] = ()) -> Node:
    """The template with its `extends` chain merged in (parents first).

    Raises `ArcError` at the `extends` key for unknown parents and cycles.
    """
    if not isinstance(root.value, dict) or "extends" not in root.value:
        return root
    ext = root.value["extends"]
    origin = root.mark.origin
    chain = (*chain, origin)
    where = ext.mark
    if not isinstance(ext.value, str) or not ext.value.strip():
        raise ArcError(
            [
                Problem(
                    where.origin,
                    where.line,
                    where.column,
                    "extends",
                    f"{_show(ext.value)}: expected a template name or path",
                )
            ]
        )
    if resolve is None:
        raise ArcError(
            [
                Problem(
                    where.origin,
                    where.line,
                    where.column,
                    "extends",
                    "'extends' cannot be resolved here",
                )
            ]
        )
    try:
        parent = resolve(ext.value.strip(), origin)
    except ArcError as exc:
        if exc.problems:
            raise
        raise ArcError(
            [Problem(where.origin, where.line, where.column, "extends", exc.message)],
            hint=exc.hint,
        ) from None
    if parent.mark.origin in chain:
        loop = " -> ".join((*chain, parent.mark.origin))
        raise ArcError(
            [Problem(where.origin, where.line, where.column, "extends", f"cycle: {loop}")]
        )
    if "name" not in root.value:
        raise ArcError(
            [
                Problem(
                    where.origin,
                    root.mark.line,
                    root.mark.column,
                    "name",
                    "a template that extends another needs its own 'name'",
                )
            ]
        )
    base = expand_extends(parent, resolve, chain)
    own = {k: v for k, v in root.value.items() if k != "extends"}
    return _merge(base, Node(own, root.mark, root.key_mark))


def validate_arc(root: Node, resolve: Resolver | None = None) -> tuple[Arc | None, list[Problem]]:
    """Check a template; return the arc (or None) and every problem, warnings included."""
    try:
        merged = expand_extends(root, resolve)
    except ArcError as exc:
        if not exc.problems:
            raise
        return None, list(exc.problems)
    checker = _Checker()
    arc = checker.arc(merged)
    problems = sorted(checker.problems, key=lambda p: (p.origin, p.line, p.column))
    return (None if checker.failed else arc), problems


def parse_arc(root: Node, resolve: Resolver | None = None) -> Arc:
    """The arc described by a template, or `ArcError` listing every problem found."""
    arc, problems = validate_arc(root, resolve)
    if arc is None:
        raise ArcError(
            problems, hint="see the arc format in the README, or 'setlist arcs show' an example"
        )
    return arc


# -- JSON Schema -------------------------------------------------------------
def _kind_schema(kind: str) -> dict[str, Any]:
    duration = {"type": "string", "pattern": DURATION_PATTERN}
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    bpm = {"type": "number", "minimum": TEMPO_LIMITS[0], "maximum": TEMPO_LIMITS[1]}
    schemas: dict[str, Callable[[], dict[str, Any]]] = {
        "name": lambda: {"type": "string", "pattern": NAME_PATTERN},
        "text": lambda: {"type": "string"},
        "ref": lambda: {"type": "string", "minLength": 1},
        "duration": lambda: {"$ref": "#/definitions/duration"},
        "crossfade": lambda: {"$ref": "#/definitions/duration"},
        "phase_duration": lambda: {
            "oneOf": [{"$ref": "#/definitions/duration"}, _object_schema(BOUNDS_FIELDS)]
        },
        "unit": lambda: unit,
        "offset": lambda: {"oneOf": [duration, {"type": "string", "pattern": PERCENT_PATTERN}]},
        "intensity": lambda: {
            "oneOf": [
                unit,
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"oneOf": [unit, _object_schema(KEYFRAME_FIELDS)]},
                },
            ]
        },
        "tempo": lambda: {
            "oneOf": [
                {"type": "string", "pattern": TEMPO_PATTERN},
                {"type": "array", "items": bpm, "minItems": 2, "maxItems": 2},
                {
                    "type": "object",
                    "properties": {"min": bpm, "max": bpm},
                    "required": ["min", "max"],
                    "additionalProperties": False,
                },
            ]
        },
        "vocals": lambda: {"enum": [v.value for v in Vocals]},
        "tags": lambda: _object_schema(TAGS_FIELDS),
        "tag_list": lambda: {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}},
            ]
        },
        "volume": lambda: {
            "oneOf": [
                {"type": "string", "pattern": VOLUME_PATTERN},
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            ]
        },
        "phases": lambda: {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/definitions/phase"},
        },
    }
    return schemas[kind]()


def _object_schema(spec: dict[str, Field]) -> dict[str, Any]:
    properties = {}
    for key, field in spec.items():
        schema = dict(_kind_schema(field.kind))
        schema["description"] = field.help
        properties[key] = schema
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    required = [k for k, f in spec.items() if f.required]
    if required:
        out["required"] = required
    return out


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft-07) for arc files, generated from the same field tables."""
    root = _object_schema(ARC_FIELDS)
    root["anyOf"] = [{"required": ["phases"]}, {"required": ["extends"]}]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "setlist arc template",
        "description": "A session arc for setlist: phases with durations and target intensity.",
        "definitions": {
            "duration": {
                "type": "string",
                "pattern": DURATION_PATTERN,
                "description": "A duration: '90s', '12m', '1h15m' or '1:15:00'.",
            },
            "phase": _object_schema(PHASE_FIELDS),
        },
        **root,
    }


# -- plain data for --json and exports -----------------------------------------
def arc_to_dict(arc: Arc, *, step: float = 60.0) -> dict[str, Any]:
    """The resolved arc as JSON-ready data; `curve` samples the target every `step` s."""
    phases = []
    for phase, start, end in zip(arc.phases, arc.starts, arc.ends, strict=True):
        xs, ys = phase.intensity.knots(phase.duration)
        b = phase.bounds
        phases.append(
            {
                "name": phase.name,
                "start": float(start),
                "end": float(end),
                "duration": phase.duration,
                "bounds": None
                if b is None
                else {
                    "min": b.minimum,
                    "nominal": b.nominal,
                    "max": None if math.isinf(b.maximum) else b.maximum,
                },
                "intensity": [
                    {"at": float(x * phase.duration), "value": float(y)}
                    for x, y in zip(xs, ys, strict=True)
                ],
                "tempo": None
                if phase.tempo is None
                else {"low": phase.tempo.low, "high": phase.tempo.high},
                "vocals": phase.vocals.value,
                "tags": {"prefer": list(phase.tags.prefer), "avoid": list(phase.tags.avoid)},
                "crossfade": phase.crossfade,
                "volume_db": round(phase.volume_db, 2),
                "notes": phase.notes,
            }
        )
    n = max(2, math.ceil(arc.length / step) + 1)
    times = [min(i * step, arc.length) for i in range(n)]
    values = arc.intensity_at(times)
    return {
        "name": arc.name,
        "description": arc.description,
        "origin": arc.origin,
        "length": arc.length,
        "dose_at": arc.dose_at,
        "tolerance": arc.tolerance,
        "phases": phases,
        "curve": [[t, round(float(v), 4)] for t, v in zip(times, values, strict=True)],
    }
