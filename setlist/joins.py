"""How two tracks meet: crossfade lengths, level matching and the programme's level.

Pure numpy. The planner decides *when* the next track starts (early enough that a
natural fade-out or a quiet intro plays under the other track, see `Edges`); this module
decides *how* the two are mixed over that overlap, from each track's short-term loudness
curve as the listener will hear it (after its normalising gain and phase volume):

* the fade lengths of the two sides are chosen so the summed level stays as close as
  possible to the level the listener was hearing before the join (no hole, no bump);
* the incoming track enters at the outgoing one's local level and glides to its own
  normalised gain afterwards at `MATCH_RATE` (a 6 dB difference takes 24 s: slower than
  anyone notices), so a quiet ending followed by a loud opening never steps;
* a phase's volume change rides on the same glide at `VOLUME_RATE` (1 dB per 10 s)
  instead of landing inside one crossfade.

`programme_level` evaluates the whole mix the same way, for the planner's dead-air
guard and for tests. Levels are in LUFS; gains in dB unless named `gain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from setlist.models import Edges

FloatArray = npt.NDArray[np.float64]

#: Fastest glide of the incoming track's level-match offset back to 0 dB (dB per second).
MATCH_RATE = 0.25
#: Fastest phase-volume ramp (dB per second): about 1 dB per 10 s.
VOLUME_RATE = 0.1
#: Largest level match (dB) either way: beyond it the tracks are simply not alike, and
#: the planner's edge-loudness cost should have kept them apart.
MAX_MATCH = 9.0
#: Evaluation step over a join (seconds).
_STEP = 0.5
#: Seconds before the overlap whose level is the reference the mix must hold.
_REFERENCE = 10.0
#: Seconds after the incoming track's arrival that give its local level.
_ARRIVAL = 10.0


@dataclass(frozen=True, slots=True)
class Side:
    """One entry as the join sees it: where it sounds and how loud, on session time."""

    start: float
    end: float
    offset: float  # file position at `start`
    gain_db: float  # normalising gain plus phase volume
    loudness: float  # integrated loudness of the file (LUFS), used where no curve exists
    edges: Edges | None = None
    intro: float = 0.0  # seconds after `start` before its body arrives (a quiet opening)

    def level(self, t: npt.ArrayLike) -> FloatArray:
        """Short-term level (LUFS, after gain) at session times `t`, ignoring fades."""
        times = np.asarray(t, dtype=np.float64)
        if self.edges is None or not self.edges.curve:
            base = np.full(times.shape, self.loudness)
        else:
            base = self.edges.level_at(times - self.start + self.offset)
        inside = (times >= self.start) & (times < self.end)
        return np.where(inside, base + self.gain_db, -120.0)


@dataclass(frozen=True, slots=True)
class Join:
    """The mix chosen for one join: the fades and the incoming side's level match."""

    fade_out: float  # outgoing side's fade, ending at its end
    fade_in: float  # incoming side's fade, starting at its start
    match_db: float  # offset the incoming side enters with, gliding to 0 after the join
    sag_db: float  # worst deviation of the summed level from the reference, as modelled


def _power(db: FloatArray) -> FloatArray:
    return np.power(10.0, np.asarray(db) / 10.0)


def _db(power: FloatArray | float) -> FloatArray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), 1e-30))


def equal_power(x: FloatArray) -> FloatArray:
    return np.sin(np.clip(x, 0.0, 1.0) * (np.pi / 2))


def mean_level(side: Side, a: float, b: float) -> float:
    """Power-mean level of `side` over session times [a, b)."""
    if b <= a:
        return float(side.level(np.array([a]))[0])
    t = np.arange(a, b, _STEP) + _STEP / 2
    return float(_db(_power(side.level(t)).mean()))


def plan_join(
    a: Side,
    b: Side,
    crossfade: float,
    *,
    headroom_db: float = math.inf,
    volume_step_db: float = 0.0,
) -> Join:
    """Fades and level match for `a` (outgoing) into `b` (incoming).

    `headroom_db` is how far `b` may be raised above its planned gain before a peak
    passes the ceiling; `volume_step_db` is `a`'s phase volume minus `b`'s, the offset `b`
    carries at first so the phase change becomes a ramp rather than a step.
    """
    overlap = a.end - b.start
    if overlap <= 0.05:
        return Join(0.0, 0.0, 0.0, 0.0)
    # The reference: what the listener hears just before the overlap begins.
    reference = mean_level(a, b.start - _REFERENCE, b.start)
    arrive = min(b.start + b.intro, b.end)
    local_b = mean_level(b, arrive, min(arrive + _ARRIVAL, b.end)) + volume_step_db
    upper = max(min(MAX_MATCH, headroom_db - volume_step_db), -MAX_MATCH)
    match = float(np.clip(reference - local_b, -MAX_MATCH, upper))
    if b.edges is None or a.edges is None:
        match = min(0.0, upper) if upper < 0 else 0.0
    t = np.arange(b.start, a.end, _STEP) + _STEP / 2
    la = _power(a.level(t))
    lb = _power(b.level(t) + volume_step_db + match)
    shortest = min(overlap, max(crossfade, 1.0))
    options = np.unique(
        np.round(np.concatenate(([shortest], np.linspace(shortest, overlap, 6))), 3)
    )
    options = options[(options > 0) & (options <= overlap + 1e-9)]
    best: Join | None = None
    best_score = math.inf
    for fo in options:
        ga = equal_power((a.end - t) / fo) ** 2
        for fi in options:
            gb = equal_power((t - b.start) / fi) ** 2
            dev = np.nan_to_num(_db(ga * la + gb * lb) - reference, nan=60.0, posinf=60.0)
            sag = float(np.max(np.abs(dev))) if len(dev) else 0.0
            mean = float(np.mean(np.abs(dev))) if len(dev) else 0.0
            # Prefer a flat mix; among equals, the longer (gentler) fades.
            score = sag + 0.05 * mean - 1e-4 * (fo + fi)
            if score < best_score:
                best, best_score = Join(float(fo), float(fi), match, sag), score
    if best is None:  # nothing measurable (a degenerate overlap): a plain crossfade
        return Join(shortest, shortest, 0.0, 0.0)
    return best


def ramp_points(
    join_end: float, length: float, match_db: float, volume_step_db: float, tail: float
) -> tuple[tuple[float, float], ...]:
    """Breakpoints (seconds from the entry's start, dB) of the incoming entry's offset:
    `match_db + volume_step_db` until the outgoing track has gone (`join_end`), then
    each part back to 0 at its own rate, finishing before the entry's last `tail`
    seconds (a short track glides faster rather than keeping an offset)."""
    if abs(match_db) < 0.05 and abs(volume_step_db) < 0.05:
        return ()
    room = max(length - tail - join_end, 1.0)
    tm = min(max(abs(match_db) / MATCH_RATE, 10.0), room) if abs(match_db) >= 0.05 else 0.0
    tv = min(abs(volume_step_db) / VOLUME_RATE, room) if abs(volume_step_db) >= 0.05 else 0.0
    start = max(join_end, 0.0)
    marks = sorted({0.0, start, start + tm, start + tv})

    def at(x: float) -> float:
        m = match_db * (1.0 - min(max((x - start) / tm, 0.0), 1.0)) if tm else 0.0
        v = volume_step_db * (1.0 - min(max((x - start) / tv, 0.0), 1.0)) if tv else 0.0
        return m + v

    return tuple((round(x, 3), round(at(x), 3)) for x in marks)


def ramp_db(points: Sequence[tuple[float, float]], rel: npt.ArrayLike) -> FloatArray:
    """The offset (dB) of a ramp at entry-relative times `rel` (flat beyond its ends)."""
    r = np.asarray(rel, dtype=np.float64)
    if not points:
        return np.zeros(r.shape)
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    return np.interp(r, xs, ys)


def programme_level(
    sides: Sequence[Side],
    fades: Sequence[tuple[float, float]],
    ramps: Sequence[Sequence[tuple[float, float]]],
    times: npt.ArrayLike,
) -> FloatArray:
    """Summed short-term level (LUFS) of every side at `times`, with each side's fades
    (fade_in, fade_out, equal-power) and ramp: the planner's model of what the room hears."""
    t = np.asarray(times, dtype=np.float64)
    total = np.zeros(t.shape)
    for side, (fi, fo), ramp in zip(sides, fades, ramps, strict=True):
        lo = np.searchsorted(t, side.start)
        hi = np.searchsorted(t, side.end)
        if hi <= lo:
            continue
        tt = t[lo:hi]
        g = np.ones(tt.shape)
        if fi > 1e-9:
            g *= equal_power((tt - side.start) / fi)
        if fo > 1e-9:
            g *= equal_power((side.end - tt) / fo)
        level = side.level(tt) + ramp_db(ramp, tt - side.start)
        total[lo:hi] += g * g * _power(level)
    return _db(total)


def quiet_stretches(
    level: FloatArray, floor: FloatArray, times: FloatArray, longest: float
) -> list[tuple[float, float]]:
    """(start, end) of every stretch longer than `longest` seconds where `level` is under
    `floor` (both sampled at `times`, evenly spaced)."""
    low = np.asarray(level) < np.asarray(floor)
    if not low.any():
        return []
    step = float(times[1] - times[0]) if len(times) > 1 else _STEP
    padded = np.concatenate(([False], low, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if (b - a) * step > longest:
            out.append((float(times[a] - step / 2), float(times[b - 1] + step / 2)))
    return out
