"""A setlist compiled into cues: when each track loads, starts, ramps and stops.

The single source of truth for live play and offline render: the conductor asks it what
every voice's gain should be *now*, the renderer asks the same question once per sample,
so a render is an oracle for what the room heard. Pure: no clock, no files, no players.

Gains are linear amplitude. A cue's gain is its loudness/phase gain times its fade-in,
its fade-out and (after a skip or an ending) a cut ramp; master volume and pauses are
the conductor's runtime state, not part of the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from setlist.joins import ramp_db
from setlist.levels import safe_entries
from setlist.models import Setlist, SetlistEntry, Track

FloatArray = npt.NDArray[np.float64]

#: Seconds before a cue starts that its player opens the file and prerolls, so the
#: start costs no decode latency (libVLC 3 has no gapless playback: voices overlap).
PRELOAD = 5.0


class FadeShape(StrEnum):
    """How a fade moves from silence to full gain (a fade-out is its mirror image).

    Equal-power keeps the summed power of two unrelated tracks constant through a
    crossfade; linear suits correlated material; the S-curve starts and lands gently.
    """

    EQUAL_POWER = "equal-power"
    LINEAR = "linear"
    S_CURVE = "s-curve"


def fade_curve(x: npt.ArrayLike, shape: FadeShape) -> FloatArray:
    """Fade-in gain at progress `x` (0 = silent, 1 = full); clipped to [0, 1]."""
    p = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    if shape is FadeShape.EQUAL_POWER:
        return np.sin(p * (np.pi / 2))
    if shape is FadeShape.LINEAR:
        return p
    return 0.5 - 0.5 * np.cos(p * np.pi)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def gain_to_db(gain: float) -> float:
    return float(20.0 * np.log10(gain)) if gain > 0 else float("-inf")


@dataclass(frozen=True, slots=True)
class Cut:
    """An extra fade-out imposed at run time (skip, jump, ending): from `at`, over `fade`.

    `planned_stop` keeps where the cue was meant to stop, so a planned fade-out already
    under way carries on along its own curve while the cut's ramp multiplies it.
    """

    at: float
    fade: float
    planned_stop: float


@dataclass(frozen=True, slots=True)
class Cue:
    """One track's appearance in the session, in session seconds.

    `key` is unique for the life of a session (re-plans append new keys), so a player can
    tell a re-planned cue of the same track from the old one. The file is heard from
    `offset` at `start` until `stop`.
    """

    key: int
    track: Track
    phase: str
    start: float
    stop: float
    offset: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0
    gain: float = 1.0
    shape: FadeShape = FadeShape.EQUAL_POWER
    cut: Cut | None = None
    target: float = 0.0
    #: Level offset breakpoints (seconds from `start`, dB) on top of `gain`: the level
    #: match of a join gliding away and a phase's volume ramp (see `setlist.joins`).
    ramp: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.stop <= self.start:
            raise ValueError(f"cue {self.key}: stop must come after start")
        if self.fade_in < 0 or self.fade_out < 0:
            raise ValueError(f"cue {self.key}: fades cannot be negative")
        if self.gain < 0:
            raise ValueError(f"cue {self.key}: gain cannot be negative")

    @property
    def length(self) -> float:
        return self.stop - self.start

    @property
    def preload_at(self) -> float:
        return self.start - PRELOAD

    @property
    def fade_out_at(self) -> float:
        """When the planned fade-out begins (a cut may begin earlier)."""
        if self.cut is None:
            return self.stop - self.fade_out
        return min(self.cut.planned_stop - self.fade_out, self.cut.at)

    @property
    def ramp_end(self) -> float:
        """Session time after which the ramp holds still (its last breakpoint)."""
        return self.start + self.ramp[-1][0] if self.ramp else self.start

    def ramping(self, t: float) -> bool:
        return bool(self.ramp) and self.start <= t < self.ramp_end

    def file_time(self, t: float) -> float:
        """Position in the file at session time `t`."""
        return self.offset + (t - self.start)

    def gain_at(self, t: npt.ArrayLike) -> FloatArray:
        """Linear amplitude gain at session time(s) `t` (0 outside the cue)."""
        times = np.asarray(t, dtype=np.float64)
        rel = times - self.start
        g = ((rel >= 0) & (times < self.stop)).astype(np.float64) * self.gain
        if self.ramp:
            g = g * np.power(10.0, ramp_db(self.ramp, rel) / 20.0)
        if self.fade_in > 1e-9:
            g = g * fade_curve(rel / self.fade_in, self.shape)
        if self.fade_out > 1e-9:
            planned = self.cut.planned_stop if self.cut is not None else self.stop
            g = g * fade_curve((planned - times) / self.fade_out, self.shape)
        if self.cut is not None:
            left = self.cut.at + self.cut.fade - times
            if self.cut.fade > 1e-9:
                g = g * fade_curve(left / self.cut.fade, self.shape)
            else:
                g = g * (left > 0)
        return g

    def active(self, t: float) -> bool:
        return self.start <= t < self.stop

    def shifted(self, delta: float) -> Cue:
        cut = self.cut
        if cut is not None:
            cut = Cut(cut.at + delta, cut.fade, cut.planned_stop + delta)
        return replace(self, start=self.start + delta, stop=self.stop + delta, cut=cut)


class EventKind(StrEnum):
    LOAD = "load"
    START = "start"
    FADE_OUT = "fade-out"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Event:
    """A discrete moment of the plan, for scheduling checks, lateness figures and logs."""

    time: float
    kind: EventKind
    key: int


@dataclass(frozen=True, slots=True)
class PhaseMark:
    """Where a phase sits on the (possibly edited) timeline."""

    name: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """The cues of a session in start order, plus the phase order they came from."""

    cues: tuple[Cue, ...]
    phase_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        keys = [c.key for c in self.cues]
        if len(set(keys)) != len(keys):
            raise ValueError("cue keys must be unique")
        if any(b.start < a.start for a, b in zip(self.cues, self.cues[1:], strict=False)):
            raise ValueError("cues must be in start order")

    # -- compiling ---------------------------------------------------------------------

    @classmethod
    def from_setlist(
        cls,
        setlist: Setlist,
        *,
        shape: FadeShape = FadeShape.EQUAL_POWER,
        first_key: int = 0,
    ) -> Timeline:
        cues = cues_from_entries(safe_entries(setlist), shape=shape, first_key=first_key)
        return cls(cues=cues, phase_order=tuple(p.name for p in setlist.arc.phases))

    # -- questions ---------------------------------------------------------------------

    @property
    def length(self) -> float:
        return max((c.stop for c in self.cues), default=0.0)

    @property
    def next_key(self) -> int:
        return max((c.key for c in self.cues), default=-1) + 1

    def cue(self, key: int) -> Cue:
        for c in self.cues:
            if c.key == key:
                return c
        raise KeyError(key)

    def index_of(self, key: int) -> int:
        for i, c in enumerate(self.cues):
            if c.key == key:
                return i
        raise KeyError(key)

    def gains_at(self, t: npt.ArrayLike) -> FloatArray:
        """Gain of every cue at times `t`: an array of shape (cues, times)."""
        times = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return np.stack([c.gain_at(times) for c in self.cues]) if self.cues else np.zeros((0,))

    def active(self, t: float) -> list[Cue]:
        return [c for c in self.cues if c.active(t)]

    def current(self, t: float) -> Cue | None:
        """The cue the listener is moving towards: the latest-started one sounding at `t`."""
        playing = self.active(t)
        return playing[-1] if playing else None

    def upcoming(self, t: float) -> list[Cue]:
        return [c for c in self.cues if c.start > t]

    def next_change(self, t: float) -> float | None:
        """Start of the next crossfade (the next cue's start), if any."""
        later = self.upcoming(t)
        return later[0].start if later else None

    def phases(self) -> tuple[PhaseMark, ...]:
        """Phase spans as the cues realise them: a boundary sits mid-crossfade."""
        marks: list[PhaseMark] = []
        groups: dict[str, list[Cue]] = {}
        order: list[str] = []
        for c in self.cues:
            if c.phase not in groups:
                groups[c.phase] = []
                order.append(c.phase)
            groups[c.phase].append(c)
        for i, name in enumerate(order):
            last = groups[name][-1]
            start = 0.0 if i == 0 else marks[-1].end
            if i + 1 < len(order):
                nxt = groups[order[i + 1]][0]
                end = (nxt.start + max(nxt.start, last.stop)) / 2
            else:
                end = last.stop
            marks.append(PhaseMark(name, start, end))
        return tuple(marks)

    def phase_at(self, t: float) -> PhaseMark | None:
        marks = self.phases()
        for m in marks:
            if t < m.end:
                return m
        return marks[-1] if marks else None

    def events(self) -> list[Event]:
        """Every load, start, fade-out and stop, in time order."""
        out: list[Event] = []
        for c in self.cues:
            out.append(Event(c.preload_at, EventKind.LOAD, c.key))
            out.append(Event(c.start, EventKind.START, c.key))
            out.append(Event(c.fade_out_at, EventKind.FADE_OUT, c.key))
            out.append(Event(c.stop, EventKind.STOP, c.key))
        order = {EventKind.LOAD: 0, EventKind.START: 1, EventKind.FADE_OUT: 2, EventKind.STOP: 3}
        out.sort(key=lambda e: (e.time, order[e.kind], e.key))
        return out

    # -- edits (each returns a new timeline) --------------------------------------------

    def with_cues(self, cues: Iterable[Cue]) -> Timeline:
        return replace(self, cues=tuple(sorted(cues, key=lambda c: (c.start, c.key))))

    def shifted_from(self, t: float, delta: float) -> Timeline:
        """Move every cue that starts after `t` by `delta` seconds."""
        return self.with_cues(c.shifted(delta) if c.start > t else c for c in self.cues)

    def cut(self, key: int, at: float, fade: float) -> Timeline:
        """Fade cue `key` out from `at` over `fade` seconds and stop it there."""
        out = []
        for c in self.cues:
            if c.key == key and at < c.stop:
                end = max(at + fade, c.start + 1e-3)
                prior = c.cut
                if prior is not None and prior.at + prior.fade <= end:
                    out.append(c)
                    continue
                planned = prior.planned_stop if prior is not None else c.stop
                out.append(replace(c, stop=min(c.stop, end), cut=Cut(at, fade, planned)))
            else:
                out.append(c)
        return self.with_cues(out)

    def skip(self, t: float, fade: float) -> Timeline:
        """Cross-fade from what is playing at `t` to the next cue now, over `fade` seconds.

        Everything after the next cue moves earlier by the time saved, so the rest of the
        plan keeps its order and spacing (a re-plan may then restore phase timing).
        """
        playing = self.active(t)
        later = self.upcoming(t)
        if not later:
            return self.end(t, fade)
        nxt = later[0]
        delta = t - nxt.start
        tl = self.shifted_from(t, delta)
        for c in playing:
            tl = tl.cut(c.key, t, fade)
        moved = tl.cue(nxt.key)
        fade_in = min(fade, moved.length / 2)
        cues = [replace(c, fade_in=fade_in) if c.key == nxt.key else c for c in tl.cues]
        return tl.with_cues(cues)

    def end(self, t: float, fade: float) -> Timeline:
        """Fade everything sounding at `t` out over `fade` seconds and drop what follows."""
        tl = self.with_cues(c for c in self.cues if c.start <= t)
        for c in tl.active(t):
            tl = tl.cut(c.key, t, fade)
        return tl

    def replace_after(self, t: float, cues: Sequence[Cue]) -> Timeline:
        """Keep cues that started by `t`, then the given (re-planned) ones."""
        kept = [c for c in self.cues if c.start <= t]
        return self.with_cues([*kept, *cues])

    # -- as plain data (the session log keeps every edited plan, for resume) --------------

    def to_data(self) -> dict[str, Any]:
        """The timeline as JSON-ready data; tracks by identity only (id, uri, title,
        artist, duration, source), since a log line should stay small and the full
        records live in the setlist and the library."""
        return {
            "phase_order": list(self.phase_order),
            "cues": [_cue_data(c) for c in self.cues],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any], tracks: Mapping[int, Track]) -> Timeline:
        """The timeline `to_data` gave. A cue's track is taken from `tracks` when one with
        the same id and uri is there (features and tags intact), else rebuilt from its
        identity, which is all a player needs. Raises ValueError on malformed data."""
        try:
            cues = [_cue_from_data(c, tracks) for c in data["cues"]]
            phases = tuple(str(p) for p in data.get("phase_order", ()))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a timeline: {exc!r}") from None
        if not cues:
            raise ValueError("not a timeline: no cues")
        return cls(cues=tuple(sorted(cues, key=lambda c: (c.start, c.key))), phase_order=phases)


def _cue_data(c: Cue) -> dict[str, Any]:
    t = c.track
    return {
        "key": c.key,
        "track": {
            "id": t.id,
            "uri": t.uri,
            "title": t.title,
            "artist": t.artist,
            "duration": t.duration,
            "source": t.source,
        },
        "phase": c.phase,
        "start": c.start,
        "stop": c.stop,
        "offset": c.offset,
        "fade_in": c.fade_in,
        "fade_out": c.fade_out,
        "gain": c.gain,
        "shape": c.shape.value,
        "target": c.target,
        "ramp": [list(p) for p in c.ramp],
        "cut": None
        if c.cut is None
        else {"at": c.cut.at, "fade": c.cut.fade, "planned_stop": c.cut.planned_stop},
    }


def _cue_from_data(d: Mapping[str, Any], tracks: Mapping[int, Track]) -> Cue:
    td = d["track"]
    known = tracks.get(int(td["id"]))
    if known is not None and known.uri == td["uri"]:
        track = known
    else:
        track = Track(
            id=int(td["id"]),
            uri=str(td["uri"]),
            title=str(td["title"]),
            artist=str(td.get("artist", "")),
            duration=float(td["duration"]),
            source=str(td.get("source", "local")),
        )
    cut = d.get("cut")
    return Cue(
        key=int(d["key"]),
        track=track,
        phase=str(d["phase"]),
        start=float(d["start"]),
        stop=float(d["stop"]),
        offset=float(d.get("offset", 0.0)),
        fade_in=float(d.get("fade_in", 0.0)),
        fade_out=float(d.get("fade_out", 0.0)),
        gain=float(d.get("gain", 1.0)),
        shape=FadeShape(d.get("shape", FadeShape.EQUAL_POWER.value)),
        target=float(d.get("target", 0.0)),
        ramp=tuple((float(x), float(y)) for x, y in d.get("ramp", ())),
        cut=None
        if cut is None
        else Cut(float(cut["at"]), float(cut["fade"]), float(cut["planned_stop"])),
    )


def cues_from_entries(
    entries: Sequence[SetlistEntry],
    *,
    shape: FadeShape = FadeShape.EQUAL_POWER,
    first_key: int = 0,
    delta: float = 0.0,
) -> tuple[Cue, ...]:
    """Setlist entries as cues, with loudness and phase volume folded into one gain."""
    return tuple(
        Cue(
            key=first_key + i,
            track=e.track,
            phase=e.phase,
            start=e.start + delta,
            stop=e.end + delta,
            offset=e.offset,
            fade_in=e.fade_in,
            fade_out=e.fade_out,
            gain=db_to_gain(e.gain_db + e.volume_db),
            shape=shape,
            target=e.target,
            ramp=e.ramp,
        )
        for i, e in enumerate(entries)
    )
