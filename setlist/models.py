"""The domain model: frozen, slotted value types shared by every layer.

Pure: no I/O, no clock. Values are validated on construction so a model that exists is a
model that makes sense; change one with `dataclasses.replace`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from setlist.errors import ArcError
from setlist.units import format_duration

#: The four phases every ketamine arc is described in; custom names are allowed too.
CANONICAL_PHASES = ("onset", "peak", "return", "integration")

FloatArray = npt.NDArray[np.float64]


class Vocals(StrEnum):
    """How a phase treats sung or spoken voice (lyrics pull a dissociated listener out)."""

    NONE = "none"
    ALLOW = "allow"
    PREFER = "prefer"


@dataclass(frozen=True, slots=True)
class TempoRange:
    """Inclusive BPM range; half- and double-time readings are the planner's business."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise ValueError(f"tempo range {self.low}-{self.high} is not increasing")

    def __str__(self) -> str:
        return f"{self.low:g}-{self.high:g} BPM"


@dataclass(frozen=True, slots=True)
class TagRule:
    """Tags to prefer and to avoid; avoided tags are never traded for a better fit."""

    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        both = set(self.prefer) & set(self.avoid)
        if both:
            raise ValueError(f"tags both preferred and avoided: {', '.join(sorted(both))}")


@dataclass(frozen=True, slots=True)
class DurationBounds:
    """How long a phase may last; equal bounds make it fixed, others let it absorb slack."""

    minimum: float
    nominal: float
    maximum: float

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.nominal <= self.maximum:
            raise ValueError(
                f"duration bounds must satisfy 0 < min <= nominal <= max, got "
                f"{self.minimum:g}s <= {self.nominal:g}s <= {self.maximum:g}s"
            )

    @classmethod
    def fixed(cls, seconds: float) -> DurationBounds:
        return cls(seconds, seconds, seconds)

    @property
    def is_fixed(self) -> bool:
        return self.minimum == self.maximum


@dataclass(frozen=True, slots=True)
class Keyframe:
    """An intensity value at a time in its phase: seconds, a fraction, or unset (spread)."""

    value: float
    seconds: float | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"intensity {self.value:g} is outside 0-1")
        if self.seconds is not None and self.fraction is not None:
            raise ValueError("a keyframe has either seconds or a fraction, not both")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"a keyframe at {self.fraction:.0%} lies outside its phase")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("a keyframe time cannot be negative")


@dataclass(frozen=True, slots=True)
class Curve:
    """A phase's target intensity: piecewise linear through its keyframes."""

    keyframes: tuple[Keyframe, ...]

    def __post_init__(self) -> None:
        if not self.keyframes:
            raise ValueError("an intensity curve needs at least one value")

    @classmethod
    def constant(cls, value: float) -> Curve:
        return cls((Keyframe(value),))

    def knots(self, duration: float) -> tuple[FloatArray, FloatArray]:
        """Keyframe positions as fractions of `duration` (unset ones spread evenly).

        The first unset keyframe sits at the phase start, the last at its end, and unset
        ones between known neighbours are spaced evenly. Raises `ValueError` when times
        do not strictly increase, since a step in the target would demand a jolt.
        """
        n = len(self.keyframes)
        xs = np.full(n, np.nan)
        for i, k in enumerate(self.keyframes):
            if k.fraction is not None:
                xs[i] = k.fraction
            elif k.seconds is not None:
                xs[i] = k.seconds / duration
        if n == 1 and np.isnan(xs[0]):
            xs[0] = 0.0
        if np.isnan(xs[0]):
            xs[0] = 0.0
        if np.isnan(xs[-1]):
            xs[-1] = max(1.0, float(np.nanmax(xs)))
        known = np.flatnonzero(~np.isnan(xs))
        for a, b in itertools.pairwise(known):
            if b - a > 1:
                xs[a : b + 1] = np.linspace(xs[a], xs[b], b - a + 1)
        if np.nanmax(xs) > 1.0 + 1e-9:
            raise ValueError(
                f"a keyframe lies at {format_duration(np.nanmax(xs) * duration)}, after the "
                f"phase ends ({format_duration(duration)})"
            )
        if n > 1 and np.any(np.diff(xs) <= 0):
            raise ValueError("keyframe times must strictly increase")
        ys = np.array([k.value for k in self.keyframes], dtype=np.float64)
        return xs, ys

    def sample(self, fractions: FloatArray, duration: float) -> FloatArray:
        """Intensity at positions given as fractions of the phase (held flat at the ends)."""
        xs, ys = self.knots(duration)
        return np.interp(fractions, xs, ys)


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of the session with its own musical brief."""

    name: str
    duration: float
    intensity: Curve
    bounds: DurationBounds | None = None
    tempo: TempoRange | None = None
    vocals: Vocals = Vocals.ALLOW
    tags: TagRule = field(default_factory=TagRule)
    crossfade: float = 8.0
    volume_db: float = 0.0
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a phase needs a name")
        if self.duration <= 0:
            raise ValueError(f"phase {self.name!r} has no duration")
        b = self.bounds
        if b is not None and not b.minimum - 1e-6 <= self.duration <= b.maximum + 1e-6:
            raise ValueError(
                f"phase {self.name!r} lasts {self.duration:g}s, outside its bounds "
                f"{b.minimum:g}-{b.maximum:g}s"
            )
        if not 0 <= self.crossfade < self.duration:
            raise ValueError(f"phase {self.name!r}: crossfade must be shorter than the phase")
        if self.volume_db > 0:
            raise ValueError("volume above 0 dB would boost music past its normalised level")
        self.intensity.knots(self.duration)

    @property
    def flexible(self) -> bool:
        return self.bounds is not None and not self.bounds.is_fixed


@dataclass(frozen=True, slots=True)
class Arc:
    """A session template with resolved phase durations; time 0 is the session start."""

    name: str
    phases: tuple[Phase, ...]
    description: str = ""
    dose_at: float = 0.0
    tolerance: float = 30.0
    origin: str = ""

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValueError("an arc needs at least one phase")
        names = [p.name.casefold() for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be unique")
        if not 0 <= self.dose_at < self.length:
            raise ValueError("the dose time must fall within the session")
        if self.tolerance < 0:
            raise ValueError("tolerance cannot be negative")

    @property
    def length(self) -> float:
        """Session length in seconds."""
        return float(sum(p.duration for p in self.phases))

    @property
    def starts(self) -> FloatArray:
        """Start time of each phase, seconds from session start."""
        return np.concatenate(([0.0], np.cumsum([p.duration for p in self.phases])[:-1]))

    @property
    def ends(self) -> FloatArray:
        return np.cumsum([p.duration for p in self.phases]).astype(np.float64)

    def phase_index_at(self, t: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Index of the phase playing at each time (clamped to the first and last)."""
        idx = np.searchsorted(self.ends, np.asarray(t, dtype=np.float64), side="right")
        return np.clip(idx, 0, len(self.phases) - 1)

    def intensity_at(self, t: npt.ArrayLike) -> FloatArray | float:
        """Target intensity at time(s) `t` in seconds; vectorised for the planner.

        Each phase's curve is evaluated in its own span, so a deliberate change of level
        at a boundary is kept rather than smeared across it. Times outside the session
        hold the first or last value.
        """
        times = np.asarray(t, dtype=np.float64)
        flat = np.atleast_1d(times)
        out = np.empty(flat.shape, dtype=np.float64)
        idx = self.phase_index_at(flat)
        starts = self.starts
        for i, phase in enumerate(self.phases):
            mask = idx == i
            if mask.any():
                frac = np.clip((flat[mask] - starts[i]) / phase.duration, 0.0, 1.0)
                out[mask] = phase.intensity.sample(frac, phase.duration)
        if times.ndim == 0:
            return float(out[0])
        return out.reshape(times.shape)

    def with_length(self, seconds: float) -> Arc:
        """The same arc lasting `seconds`, flexible phases absorbing the difference."""
        durations = distribute([_bounds_of(p) for p in self.phases], seconds)
        phases = tuple(replace(p, duration=d) for p, d in zip(self.phases, durations, strict=True))
        if self.dose_at >= seconds:
            raise ArcError(
                f"a {format_duration(seconds)} session would end before the dose at "
                f"{format_duration(self.dose_at)}"
            )
        return replace(self, phases=phases)


def _bounds_of(phase: Phase) -> DurationBounds:
    return phase.bounds or DurationBounds.fixed(phase.duration)


def distribute(bounds: list[DurationBounds], length: float) -> list[float]:
    """Durations that sum to `length`, flexible phases moving from nominal within bounds.

    Slack is shared in proportion to each phase's nominal length (a long phase stretches
    more than a short one), re-sharing what a phase cannot take once it hits a bound.
    Raises `ArcError` when the bounds cannot reach `length`.
    """
    lo = sum(b.minimum for b in bounds)
    hi = sum(b.maximum for b in bounds)
    if not lo - 1e-6 <= length <= hi + 1e-6:
        span = format_duration(lo) if lo == hi else f"{format_duration(lo)}-{format_duration(hi)}"
        raise ArcError(f"the phases can last {span} in all, not {format_duration(length)}")
    durations = [b.nominal for b in bounds]
    for _ in range(len(bounds) + 1):
        slack = length - sum(durations)
        if abs(slack) < 1e-9:
            break
        movable = [
            i
            for i, b in enumerate(bounds)
            if (slack > 0 and durations[i] < b.maximum) or (slack < 0 and durations[i] > b.minimum)
        ]
        weight = sum(bounds[i].nominal for i in movable)
        for i in movable:
            b = bounds[i]
            durations[i] = min(b.maximum, max(b.minimum, durations[i] + slack * b.nominal / weight))
    return durations


@dataclass(frozen=True, slots=True)
class Edges:
    """How a track begins and ends, measured against its own loudness (issue: joins).

    A listener hears every join, so the planner and the timeline place crossfades on
    these points rather than on fixed trims. Times are seconds into the file. The
    played part runs from `cue_in` to `cue_out`: sound before and after it is silence
    (relative to the track's loudness, as Liquidsoap's autocue does) or lies beyond a
    long inner silence (a hidden track), which `hidden` counts so `library show` can
    say so. `intro` is how long the level takes after `cue_in` to come within 8 LU of
    the track's loudness (a quiet opening); `outro` how long before `cue_out` it has
    stayed more than 8 LU under it (a natural fade). `head_lufs`/`tail_lufs` and the
    intensities are the first and last 30 s of the played part, what a join sounds
    like; `curve` is BS.1770 short-term loudness (3 s windows) every `curve_step`
    seconds from the file's start, for placing the overlap and matching gains.
    """

    cue_in: float
    cue_out: float
    intro: float = 0.0
    outro: float = 0.0
    head_lufs: float = -70.0
    tail_lufs: float = -70.0
    head_intensity: float = 0.0
    tail_intensity: float = 0.0
    hidden: float = 0.0
    curve: tuple[float, ...] = ()
    curve_step: float = 1.0
    gaps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.cue_in < self.cue_out:
            raise ValueError(f"cue-in {self.cue_in:g}s must come before cue-out {self.cue_out:g}s")
        if self.intro < 0 or self.outro < 0 or self.hidden < 0:
            raise ValueError("intro, outro and hidden seconds cannot be negative")
        if self.curve_step <= 0:
            raise ValueError("curve step must be positive")

    @property
    def played(self) -> float:
        return self.cue_out - self.cue_in

    def level_at(self, t: npt.ArrayLike) -> FloatArray:
        """Short-term loudness (LUFS) at file times `t`, linear between curve points;
        -70 (the absolute gate) outside the curve or where nothing was measured."""
        times = np.asarray(t, dtype=np.float64)
        if not self.curve:
            return np.full(times.shape, -70.0)
        curve = np.asarray(self.curve, dtype=np.float64)
        xs = (np.arange(len(curve)) + 0.5) * self.curve_step
        return np.interp(times, xs, curve, left=curve[0], right=-70.0)


@dataclass(frozen=True, slots=True)
class Features:
    """What analysis measured from a track's audio (all pure numbers, no provenance).

    `envelope` holds the intensity (0-1) every `envelope_step` seconds, so the planner
    can follow how a track moves rather than only its average. Loudness follows
    ITU-R BS.1770 / EBU R128; `peak_dbfs` caps how far normalisation may raise a track.
    """

    duration: float
    loudness_lufs: float
    loudness_range_lu: float
    peak_dbfs: float
    intensity: float
    envelope: tuple[float, ...]
    envelope_step: float
    tempo_bpm: float | None
    tempo_confidence: float
    lead_silence: float
    trail_silence: float
    brightness_hz: float
    onset_rate: float
    voice: float
    version: int
    edges: Edges | None = None

    def __post_init__(self) -> None:
        if self.duration < 0:
            raise ValueError("duration cannot be negative")
        if not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"intensity {self.intensity} is outside 0-1")
        if self.envelope_step <= 0:
            raise ValueError("envelope step must be positive")
        if not 0.0 <= self.tempo_confidence <= 1.0 or not 0.0 <= self.voice <= 1.0:
            raise ValueError("confidences lie within 0-1")


def with_cue_points(f: Features, cue_in: float | None, cue_out: float | None) -> Features:
    """Features whose played part a therapist has set by hand (either end may be None,
    keeping the analysed one). Points beyond the file are pulled inside it; a pair that
    leaves nothing to play keeps the analysed points."""
    e = f.edges or Edges(
        cue_in=min(f.lead_silence, max(f.duration - 1e-3, 0.0)),
        cue_out=max(f.duration - f.trail_silence, f.lead_silence + 1e-3),
    )
    start = e.cue_in if cue_in is None else min(max(cue_in, 0.0), f.duration)
    end = e.cue_out if cue_out is None else min(max(cue_out, 0.0), f.duration)
    if end - start < 1.0:
        return f
    played = end - start
    edges = replace(
        e,
        cue_in=start,
        cue_out=end,
        intro=min(e.intro, played / 2) if cue_in is None else 0.0,
        outro=min(e.outro, played / 2) if cue_out is None else 0.0,
        hidden=0.0,
    )
    return replace(f, edges=edges)


@dataclass(frozen=True, slots=True)
class Track:
    """A piece of music the planner can place: identity, tags and (maybe) features.

    `uri` is what a player opens (a file path, or `spotify:track:...`); `tags` are
    lower-case words from genres and therapists' annotations.
    """

    id: int
    uri: str
    title: str
    duration: float
    artist: str = ""
    album: str = ""
    album_artist: str = ""
    genre: str = ""
    source: str = "local"
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    isrc: str = ""
    bpm: float | None = None
    language: str = ""
    tags: tuple[str, ...] = ()
    vocals: str = "unknown"
    features: Features | None = None

    def __post_init__(self) -> None:
        if self.duration < 0:
            raise ValueError("duration cannot be negative")
        if not self.uri:
            raise ValueError("a track needs a uri")
        if self.vocals not in TRACK_VOCALS:
            raise ValueError(f"vocals must be one of {', '.join(TRACK_VOCALS)}")


#: What a track holds by way of voice: lyrics pull a dissociated listener into words,
#: wordless voice can serve as another instrument. "unknown" until analysed or annotated.
TRACK_VOCALS = ("none", "wordless", "lyrics", "unknown")


@dataclass(frozen=True, slots=True)
class Annotation:
    """A therapist's corrections to one track; they override analysis and survive rescans."""

    intensity: float | None = None
    vocals: str | None = None
    tempo_bpm: float | None = None
    never: bool = False
    tags: tuple[str, ...] = ()
    note: str = ""
    #: Cue points in seconds into the file, overriding the analysed ones.
    cue_in: float | None = None
    cue_out: float | None = None

    def __post_init__(self) -> None:
        if self.intensity is not None and not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"intensity {self.intensity:g} is outside 0-1")
        for name in ("cue_in", "cue_out"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1e6:
                raise ValueError(f"{name.replace('_', '-')} {value:g}s is not a time in the file")
        if self.cue_in is not None and self.cue_out is not None and self.cue_out <= self.cue_in:
            raise ValueError("cue-out must come after cue-in")
        if self.vocals is not None and self.vocals not in TRACK_VOCALS[:3]:
            raise ValueError("vocals must be none, wordless or lyrics")
        if self.tempo_bpm is not None and not 20 <= self.tempo_bpm <= 300:
            raise ValueError(f"tempo {self.tempo_bpm:g} BPM is outside 20-300")

    @property
    def empty(self) -> bool:
        return self == Annotation()


@dataclass(frozen=True, slots=True)
class Candidates:
    """Tracks the planner may place, as parallel numpy arrays (one row per track).

    Envelopes are ragged, so they are concatenated in `envelope_values` with
    `envelope_offsets[i]:envelope_offsets[i + 1]` selecting track i's.
    """

    tracks: tuple[Track, ...]
    ids: npt.NDArray[np.int64]
    duration: npt.NDArray[np.float64]
    intensity: npt.NDArray[np.float64]
    tempo: npt.NDArray[np.float64]
    tempo_confidence: npt.NDArray[np.float64]
    loudness: npt.NDArray[np.float64]
    peak: npt.NDArray[np.float64]
    lead_silence: npt.NDArray[np.float64]
    trail_silence: npt.NDArray[np.float64]
    vocals: npt.NDArray[np.str_]
    artist: npt.NDArray[np.str_]
    envelope_step: npt.NDArray[np.float64]
    envelope_offsets: npt.NDArray[np.int64]
    envelope_values: npt.NDArray[np.float32]
    #: Edge measures (`Edges`), NaN where a track has none (older analysis, Spotify).
    cue_in: npt.NDArray[np.float64] | None = None
    cue_out: npt.NDArray[np.float64] | None = None
    intro: npt.NDArray[np.float64] | None = None
    outro: npt.NDArray[np.float64] | None = None
    head_lufs: npt.NDArray[np.float64] | None = None
    tail_lufs: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.tracks)

    def subset(self, rows: npt.ArrayLike) -> Candidates:
        """The candidates at `rows` (indices or a boolean mask), arrays sliced alike."""
        idx = np.arange(len(self.tracks))[np.asarray(rows)]
        return candidates_from_tracks([self.tracks[i] for i in idx])


def candidates_from_tracks(tracks: Sequence[Track]) -> Candidates:
    """Arrays for the planner from analysed tracks (every track needs `features`)."""
    feats = [t.features for t in tracks]
    if any(f is None for f in feats):
        raise ValueError("every candidate needs analysed features")
    fs: list[Features] = [f for f in feats if f is not None]
    lengths = np.array([len(f.envelope) for f in fs], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    values = (
        np.concatenate([np.asarray(f.envelope, dtype=np.float32) for f in fs])
        if fs
        else np.zeros(0, dtype=np.float32)
    )
    return Candidates(
        tracks=tuple(tracks),
        ids=np.array([t.id for t in tracks], dtype=np.int64),
        duration=np.array([t.duration for t in tracks], dtype=np.float64),
        intensity=np.array([f.intensity for f in fs], dtype=np.float64),
        tempo=np.array([np.nan if f.tempo_bpm is None else f.tempo_bpm for f in fs]),
        tempo_confidence=np.array([f.tempo_confidence for f in fs], dtype=np.float64),
        loudness=np.array([f.loudness_lufs for f in fs], dtype=np.float64),
        peak=np.array([f.peak_dbfs for f in fs], dtype=np.float64),
        lead_silence=np.array([f.lead_silence for f in fs], dtype=np.float64),
        trail_silence=np.array([f.trail_silence for f in fs], dtype=np.float64),
        vocals=np.array([t.vocals for t in tracks], dtype=np.str_),
        artist=np.array([t.artist for t in tracks], dtype=np.str_),
        envelope_step=np.array([f.envelope_step for f in fs], dtype=np.float64),
        envelope_offsets=offsets,
        envelope_values=values,
        **_edge_arrays(fs),
    )


def _edge_arrays(fs: Sequence[Features]) -> dict[str, npt.NDArray[np.float64]]:
    nan = float("nan")
    names = ("cue_in", "cue_out", "intro", "outro", "head_lufs", "tail_lufs")
    return {
        name: np.array(
            [nan if f.edges is None else getattr(f.edges, name) for f in fs], dtype=np.float64
        )
        for name in names
    }


# --- a planned session -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Penalty:
    """One named part of why an entry was chosen: its weighted cost (negative = bonus).

    Costs are in "seconds of unit intensity error" so that fit, transitions and
    preferences add up on one scale and can be compared and explained.
    """

    name: str
    cost: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SetlistEntry:
    """One track placed in the session.

    Times are session seconds (0 = session start). The track is heard from `start` for
    `length` seconds, beginning `offset` seconds into the file (lead silence skipped);
    it fades in over `fade_in` and out over `fade_out`, overlapping its neighbours by
    those crossfades. `gain_db` normalises loudness (capped below clipping) and
    `volume_db` is the phase's volume, both applied by whatever plays or renders it.
    """

    track: Track
    phase: str
    start: float
    length: float
    offset: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0
    gain_db: float = 0.0
    volume_db: float = 0.0
    target: float = 0.0
    realised: float = 0.0
    cut: bool = False
    penalties: tuple[Penalty, ...] = ()
    #: Level offset over time on top of gain and volume: (seconds from `start`, dB)
    #: breakpoints, linear between them and flat beyond. The planner uses it to bring a
    #: track in at the outgoing one's level and glide it to its own gain, and to spread a
    #: phase's volume change; it always ends at 0 dB.
    ramp: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError(f"{self.track.title!r}: play length must be positive")
        if self.fade_in < 0 or self.fade_out < 0 or self.fade_in + self.fade_out > self.length:
            raise ValueError(f"{self.track.title!r}: fades must fit within the play length")
        if self.offset < 0:
            raise ValueError("offset cannot be negative")
        xs = [x for x, _ in self.ramp]
        if any(b < a for a, b in itertools.pairwise(xs)):
            raise ValueError(f"{self.track.title!r}: ramp times must not go back")
        if any(not (math.isfinite(x) and math.isfinite(y)) for x, y in self.ramp):
            raise ValueError(f"{self.track.title!r}: ramp points must be finite")

    @property
    def end(self) -> float:
        return self.start + self.length

    @property
    def cost(self) -> float:
        return float(sum(p.cost for p in self.penalties))


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """Where a phase landed: the planned times from the arc and the realised boundary.

    A realised boundary is the middle of the crossfade between the phase's last track
    and the next phase's first, so it differs from the planned time by at most the
    arc's tolerance.
    """

    name: str
    planned_start: float
    planned_end: float
    start: float
    end: float

    @property
    def error(self) -> float:
        return self.end - self.planned_end


@dataclass(frozen=True, slots=True)
class PlanMetrics:
    """How well a plan fits, for the build summary, the setlist file and benchmarks."""

    fit_rmse: float
    worst_transition: float
    worst_transition_index: int
    timing_error: float
    boundary_error: float
    violations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Setlist:
    """A planned session: the arc, the entries in order and how well they fit it.

    `created` and `library` (a fingerprint of the index used) are stamped by the service
    that builds it, since the pure planner has no clock and no database.
    """

    arc: Arc
    entries: tuple[SetlistEntry, ...]
    phases: tuple[PhaseSpan, ...]
    metrics: PlanMetrics
    seed: int = 0
    loudness_target: float = -20.0
    notes: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    created: str = ""
    library: str = ""
    #: The strictest listener profile's level cap (dB), honoured live by the master volume.
    max_volume_db: float | None = None

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a setlist needs at least one entry")
        ids = [e.track.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise ValueError("a track appears twice in the setlist")

    @property
    def length(self) -> float:
        return self.entries[-1].end

    def gains_at(self, t: npt.ArrayLike) -> FloatArray:
        """Linear fade gain of every entry at times `t` (entries x times), equal-power.

        The planner's own model of the crossfades, used for the realised curve; the live
        timeline may offer other curve shapes.
        """
        times = np.atleast_1d(np.asarray(t, dtype=np.float64))
        out = np.zeros((len(self.entries), times.size))
        for i, e in enumerate(self.entries):
            rel = times - e.start
            g = ((rel >= 0) & (rel <= e.length)).astype(np.float64)
            if e.fade_in > 1e-6:
                x = np.clip(rel / e.fade_in, 0.0, 1.0)
                g *= np.sin(x * np.pi / 2)
            if e.fade_out > 1e-6:
                x = np.clip((e.length - rel) / e.fade_out, 0.0, 1.0)
                g *= np.sin(x * np.pi / 2)
            out[i] = g
        return out

    def realised_at(self, t: npt.ArrayLike) -> FloatArray:
        """Realised intensity at times `t`: each track's envelope, blended in crossfades
        by power (silence counts as zero)."""
        times = np.atleast_1d(np.asarray(t, dtype=np.float64))
        gains = self.gains_at(times)
        power = gains**2
        values = np.zeros_like(gains)
        for i, e in enumerate(self.entries):
            f = e.track.features
            if f is None or not f.envelope:
                values[i] = e.realised
                continue
            pos = times - e.start + e.offset
            env = np.asarray(f.envelope, dtype=np.float64)
            idx = np.clip((pos / f.envelope_step).astype(np.int64), 0, len(env) - 1)
            values[i] = env[idx]
        weight = power.sum(axis=0)
        return np.where(weight > 0, (power * values).sum(axis=0) / np.maximum(weight, 1e-12), 0.0)
