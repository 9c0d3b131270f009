"""Level limits enforced where sound is made, whatever a setlist file says.

The planner never raises a track's peak above the ceiling or a phase above its volume,
but a setlist file is plain text that therapists edit and share: a hand-typed
`gain_db: 30`, `inf` or `.nan` would otherwise reach the room as a blast or as dead air.
Every path that turns a plan into sound (show, render, play, resume, the timeline)
passes its entries through `check_entries`, which returns safe entries and one line per
correction, so the therapist sees exactly what was changed. The master volume asks
`master_limit` how far it may go. Pure: numbers in, numbers and sentences out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from setlist.models import Setlist, SetlistEntry

#: Highest sample peak a gain may raise a track to (dBFS): the planner's ceiling.
CEILING_DB = -1.0
#: Below this (dB) a gain or volume is near silence: dead air, not a level.
FLOOR_DB = -40.0
#: The master volume's own range (dB); the plan's headroom may narrow the top.
MASTER_MIN_DB, MASTER_MAX_DB = -40.0, 6.0


@dataclass(frozen=True, slots=True)
class Limits:
    """What bounds the levels of one plan.

    `phase_volume` maps phase names to the arc's volume (dB, <= 0); `max_volume_db` is
    the strictest listener profile's cap (None when no profile set one).
    """

    ceiling_db: float = CEILING_DB
    max_volume_db: float | None = None
    phase_volume: Mapping[str, float] = field(default_factory=dict)
    loudness_target: float = -20.0


@dataclass(frozen=True, slots=True)
class Checked:
    """Entries made safe, and one line per entry corrected (empty when all were fine)."""

    entries: tuple[SetlistEntry, ...]
    notes: tuple[str, ...] = ()


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _down(x: float) -> float:
    """Rounded down to 0.01 dB, so rounding never lifts a level over its cap."""
    return math.floor(x * 100.0 + 1e-9) / 100.0


def _show(x: float) -> str:
    return f"{x:+.2f} dB" if _finite(x) else str(x)


def limits_for(setlist: Setlist) -> Limits:
    """The limits a setlist's own arc and listeners set."""
    target = setlist.loudness_target if _finite(setlist.loudness_target) else -20.0
    cap = setlist.max_volume_db if _finite(setlist.max_volume_db) else None
    return Limits(
        max_volume_db=None if cap is None else min(0.0, float(cap)),
        phase_volume={
            p.name: min(0.0, p.volume_db) if _finite(p.volume_db) else 0.0
            for p in setlist.arc.phases
        },
        loudness_target=float(target),
    )


def _peak(e: SetlistEntry) -> float | None:
    f = e.track.features
    return float(f.peak_dbfs) if f is not None and _finite(f.peak_dbfs) else None


def _safe_gain(e: SetlistEntry, limits: Limits) -> float:
    """The planner's gain for this track: to the loudness target, never past the ceiling."""
    f = e.track.features
    peak = _peak(e)
    gain = 0.0
    if f is not None and _finite(f.loudness_lufs):
        gain = limits.loudness_target - float(f.loudness_lufs)
    # No peak known: never raise it.
    gain = min(gain, limits.ceiling_db - peak) if peak is not None else min(gain, 0.0)
    return _down(max(FLOOR_DB, gain))


def volume_cap(phase: str, limits: Limits) -> float:
    """The loudest a phase may play: its arc volume, and no listener's cap exceeded."""
    cap = min(0.0, limits.phase_volume.get(phase, 0.0))
    if limits.max_volume_db is not None:
        cap = min(cap, limits.max_volume_db)
    return cap


def _check_one(i: int, e: SetlistEntry, limits: Limits) -> tuple[SetlistEntry, list[str]]:
    who = f"entries[{i}] '{e.track.title}'"
    notes: list[str] = []
    gain, volume = e.gain_db, e.volume_db
    peak = _peak(e)
    if not _finite(gain):
        gain = _safe_gain(e, limits)
        notes.append(f"gain_db {e.gain_db} refused; using {_show(gain)} instead")
    elif peak is not None and peak + gain > limits.ceiling_db + 1e-9:
        gain = _down(limits.ceiling_db - peak)
        notes.append(
            f"gain {_show(e.gain_db)} would put its peak at {peak + e.gain_db:+.1f} dBFS;"
            f" capped to {_show(gain)} (peak {limits.ceiling_db:g} dBFS)"
        )
    elif peak is None and gain > 0:
        gain = 0.0
        notes.append(f"gain {_show(e.gain_db)} with no known peak; capped to +0.00 dB")
    elif gain < FLOOR_DB:
        gain = FLOOR_DB
        notes.append(f"gain {_show(e.gain_db)} is near silence; raised to {_show(gain)}")
    cap = volume_cap(e.phase, limits)
    if not _finite(volume):
        volume = cap
        notes.append(f"volume_db {e.volume_db} refused; using {_show(volume)} instead")
    elif volume > cap + 1e-9:
        volume = cap
        why = "its phase's volume"
        if limits.max_volume_db is not None and cap == limits.max_volume_db:
            why = "the listener's max_volume_db"
        notes.append(f"volume {_show(e.volume_db)} is above {why}; capped to {_show(cap)}")
    elif volume < FLOOR_DB:
        volume = max(FLOOR_DB, min(cap, FLOOR_DB))
        notes.append(f"volume {_show(e.volume_db)} is near silence; raised to {_show(volume)}")
    ramp = e.ramp
    if ramp:
        # A join's level match may lift a track for a while: never past the ceiling.
        top = max(y for _, y in ramp)
        room = math.inf if peak is None else limits.ceiling_db - peak - gain - volume
        if peak is None:
            room = max(-volume, 0.0)
        if top > room + 1e-9:
            ramp = tuple((x, min(y, room)) for x, y in ramp)
            notes.append(f"level ramp up to {_show(top)} capped to {_show(room)}")
    if not notes:
        return e, notes
    # One line per entry, naming it, with everything changed in it.
    fixed = replace(e, gain_db=float(gain), volume_db=float(volume), ramp=ramp)
    return fixed, [f"{who}: {'; '.join(notes)}"]


def check_entries(entries: Iterable[SetlistEntry], limits: Limits | None = None) -> Checked:
    """Every entry within the limits; one line per entry that had to change."""
    limits = limits or Limits()
    out: list[SetlistEntry] = []
    notes: list[str] = []
    for i, e in enumerate(entries):
        fixed, lines = _check_one(i, e, limits)
        out.append(fixed)
        notes.extend(lines)
    return Checked(tuple(out), tuple(notes))


def safe_entries(setlist: Setlist) -> tuple[SetlistEntry, ...]:
    """The setlist's entries within its limits (for the timeline, which compiles them)."""
    return check_setlist(setlist)[0].entries


def check_setlist(setlist: Setlist) -> tuple[Setlist, tuple[str, ...]]:
    """The setlist with its entries within its own limits, and what was corrected."""
    checked = check_entries(setlist.entries, limits_for(setlist))
    if not checked.notes:
        return setlist, ()
    return replace(setlist, entries=checked.entries), checked.notes


@dataclass(frozen=True, slots=True)
class MasterLimit:
    """How far the therapist's master volume may go up (dB), and what sets the limit."""

    db: float = MASTER_MAX_DB
    reason: str = "the maximum"


def master_limit(
    levels: Sequence[tuple[float | None, float]],
    *,
    ceiling_db: float = CEILING_DB,
    max_volume_db: float | None = None,
    loudest_volume_db: float | None = None,
) -> MasterLimit:
    """The highest master volume that keeps every track's peak under the ceiling and the
    programme under every listener's `max_volume_db`.

    `levels` holds (peak dBFS or None, total gain dB) per track as it will play; a track
    with no known peak leaves no headroom. `loudest_volume_db` is the loudest phase
    volume in the plan (the listener cap applies to volume plus master).
    """
    best = MasterLimit()
    room: list[tuple[float, str]] = []
    for peak, gain in levels:
        if peak is None or not _finite(peak) or not _finite(gain):
            room.append((0.0, f"peaks at {ceiling_db:g} dBFS (a track's peak is unknown)"))
        else:
            room.append((ceiling_db - (peak + gain), f"peaks at {ceiling_db:g} dBFS"))
    if max_volume_db is not None and _finite(max_volume_db):
        loudest = loudest_volume_db if _finite(loudest_volume_db) else 0.0
        room.append((max_volume_db - float(loudest or 0.0), "the listener's max_volume_db"))
    if room:
        db, why = min(room, key=lambda r: r[0])
        db = max(0.0, _down(db))
        if db < best.db:
            return MasterLimit(db, why)
    return best


def setlist_master_limit(setlist: Setlist) -> MasterLimit:
    """`master_limit` for a plan as written (after `check_setlist`)."""
    limits = limits_for(setlist)
    return master_limit(
        [(_peak(e), e.gain_db + e.volume_db) for e in setlist.entries],
        ceiling_db=limits.ceiling_db,
        max_volume_db=limits.max_volume_db,
        loudest_volume_db=max(e.volume_db for e in setlist.entries),
    )
