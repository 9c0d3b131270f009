"""The arc planner: fit tracks to an arc's intensity curve, on time, without jolts.

Pure and vectorised. The search is a dynamic programme over the session timeline: a
partial plan is a *state* (the time the next track starts, the phase it is in, what it
has used), states are bucketed by that start time in `SLOT`-second slots, and only the
`beam` cheapest per slot and phase survive. Comparing plans that have covered the same
stretch of time keeps the comparison fair (a plan is never preferred just because it
has covered less), and keeping several per slot lets a slightly worse track now buy a
better landing at the next phase boundary. Every cost is in "seconds of unit intensity
error", so fit, transitions, cuts and preferences add up and explain themselves.

Hard constraints (vetoes, never-play, a phase's `vocals: none`, avoided tags, a tempo
range for tracks whose tempo is known) are never relaxed: when they leave too little
music, `CannotFillPhase` says which constraint ran dry and how many tracks met the rest.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from setlist.errors import CannotFillPhase, PlanningError
from setlist.joins import Side, plan_join, programme_level, quiet_stretches, ramp_points
from setlist.models import (
    Arc,
    Candidates,
    Penalty,
    Phase,
    PhaseSpan,
    PlanMetrics,
    Setlist,
    SetlistEntry,
    Vocals,
)
from setlist.units import format_clock, format_duration

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Resolution of the track envelopes and of the target as the planner scores them.
STEP = 10.0
#: Width of the timeline buckets states are compared in.
SLOT = 10.0
#: Longest stretch of one track scored against the curve (longer pieces hold their mean).
MAX_SCORED = 1800.0
#: Span of the two halves a track's shape is shortlisted by.
SHAPE = 150.0
#: Seconds at each end of a track that define its entry and exit intensity.
EDGE = 20.0
#: Longest quiet opening / natural fade-out the search overlaps with a neighbour.
MAX_INTRO = 20.0
MAX_OUTRO = 30.0
#: The dead-air guard: the programme may not fall this far under the session's level
#: for longer than `DEAD_AIR_SECONDS` (outside the session's first and last seconds).
DEAD_AIR_LU = 20.0
DEAD_AIR_SECONDS = 1.5
#: How many tracks the guard may leave out (re-planning each time) before it refuses.
DEAD_AIR_REPAIRS = 3
#: A tempo reading is trusted for hard ranges only above this confidence.
TEMPO_TRUST = 0.3

Search = Literal["beam", "greedy", "random"]


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each concern costs, in seconds of unit intensity error.

    A 0.1 intensity miss held for a minute costs 0.6; a 0.3 step at a crossfade costs
    `jump * 0.09` = 10.8, about as much as a 0.2 miss for four minutes.
    """

    fit: float = 1.0
    jump: float = 120.0
    tempo: float = 20.0
    loudness: float = 0.3
    cut: float = 6.0
    cut_per_second: float = 0.02
    boundary: float = 8.0
    prefer_tag: float = 0.008
    vocals_prefer: float = 0.008
    like: float = 0.01
    #: Relative spread of the seed's perturbation: different seeds, equally good plans.
    noise: float = 0.04


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Everything about a build that is not the arc or the music."""

    seed: int = 0
    search: Search = "beam"
    beam: int = 2
    shortlist: int = 96
    artist_gap: int = 2
    loudness_target: float = -20.0
    #: Highest sample peak a normalising gain may raise a track to (dBFS).
    ceiling_db: float = -1.0
    min_play: float = 90.0
    #: Largest RMS intensity miss a track may have against the curve it plays under.
    max_miss: float = 0.25
    final_fade: float = 30.0
    max_lead_trim: float = 10.0
    max_trail_trim: float = 20.0
    weights: Weights = field(default_factory=Weights)

    def __post_init__(self) -> None:
        if self.search not in ("beam", "greedy", "random"):
            raise ValueError(f"unknown search {self.search!r}")
        if self.beam < 1 or self.shortlist < 1 or self.artist_gap < 0:
            raise ValueError("beam and shortlist must be positive, artist gap not negative")


@dataclass(frozen=True, slots=True)
class Listeners:
    """What the listeners' profiles mean for these candidates, as masks.

    `vetoed` rules tracks out for the whole session; `liked` has one row per listener so
    couples' likes weigh the same and an under-served partner can be reported.
    """

    vetoed: BoolArray | None = None
    liked: BoolArray | None = None
    names: tuple[str, ...] = ()
    max_volume_db: float | None = None


# --- preparing the candidates --------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    """Per-candidate arrays the search reads (one row per candidate)."""

    n: int
    offset: FloatArray
    natural: FloatArray
    env: npt.NDArray[np.float32]  # n x M, intensity per STEP from the offset
    cover: npt.NDArray[np.float32]  # n x M, fraction of each step the track covers
    mean: FloatArray
    first: FloatArray
    second: FloatArray
    head: FloatArray
    tail: FloatArray
    tempo: FloatArray
    trusted_tempo: BoolArray
    loud_after: FloatArray
    gain: FloatArray
    artist: npt.NDArray[np.int64]
    intro: FloatArray  # seconds of quiet opening played under the previous track
    outro: FloatArray  # seconds of natural fade played under the next track
    head_loud: FloatArray  # level of the first EDGE seconds after the intro, after gain
    tail_loud: FloatArray  # level of the last EDGE seconds before the outro, after gain


def _edge(values: FloatArray | None, n: int) -> FloatArray:
    return np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)


def _prepare(c: Candidates, o: PlanOptions) -> _Prepared:
    n = len(c)
    cue_in, cue_out = _edge(c.cue_in, n), _edge(c.cue_out, n)
    has = np.isfinite(cue_in) & np.isfinite(cue_out) & (cue_out > cue_in)
    # Tracks analysed with edges play from cue-in to cue-out, however much silence that
    # cuts; older analyses keep the capped lead/trail trims.
    lead = np.minimum(np.nan_to_num(c.lead_silence), o.max_lead_trim)
    trail = np.minimum(np.nan_to_num(c.trail_silence), o.max_trail_trim)
    start = np.where(has, np.nan_to_num(cue_in), lead)
    end = np.where(has, np.nan_to_num(cue_out), c.duration - trail)
    played = np.maximum(end - start, 0.0)
    intro = np.where(has, np.clip(np.nan_to_num(_edge(c.intro, n)), 0.0, MAX_INTRO), 0.0)
    outro = np.where(has, np.clip(np.nan_to_num(_edge(c.outro, n)), 0.0, MAX_OUTRO), 0.0)
    intro = np.minimum(intro, played / 4)
    outro = np.minimum(outro, played / 4)
    # The search places a track from the end of its intro (which plays under the track
    # before, or is skipped when it opens the session) to its cue-out.
    offset = start + intro
    natural = np.maximum(end - offset, 0.0)
    scored = np.minimum(natural, MAX_SCORED)
    m = max(1, math.ceil(float(scored.max(initial=STEP)) / STEP))
    k = np.arange(m)
    cover = np.clip((scored[:, None] - k[None, :] * STEP) / STEP, 0.0, 1.0).astype(np.float32)
    env = np.zeros((n, m), dtype=np.float32)
    lengths = np.diff(c.envelope_offsets)
    for i in range(n):
        a, b = c.envelope_offsets[i], c.envelope_offsets[i + 1]
        if lengths[i] == 0:
            env[i] = c.intensity[i]
            continue
        values = c.envelope_values[a:b]
        pos = offset[i] + (k + 0.5) * STEP
        idx = np.minimum((pos / c.envelope_step[i]).astype(np.int64), lengths[i] - 1)
        env[i] = values[idx]
    weight = cover.sum(axis=1)
    mean = (env * cover).sum(axis=1) / np.maximum(weight, 1e-9)
    # The first two and a half minutes and the next: enough shape for the shortlist.
    half = max(1, int(SHAPE / STEP))
    first = (env[:, :half] * cover[:, :half]).sum(axis=1) / np.maximum(
        cover[:, :half].sum(axis=1), 1e-9
    )
    w2 = cover[:, half : 2 * half].sum(axis=1)
    second = np.where(
        w2 > 0.5,
        (env[:, half : 2 * half] * cover[:, half : 2 * half]).sum(axis=1) / np.maximum(w2, 1e-9),
        first,
    )
    edge = max(1, int(EDGE / STEP))
    head = env[:, :edge].mean(axis=1)
    last = np.clip(np.ceil(scored / STEP).astype(np.int64) - 1, 0, m - 1)
    tail = env[np.arange(n), last].astype(np.float64)
    tempo = np.where(np.isfinite(c.tempo) & (c.tempo > 0), c.tempo, np.nan)
    trusted = np.isfinite(tempo) & (c.tempo_confidence >= TEMPO_TRUST)
    gain = np.minimum(o.loudness_target - c.loudness, o.ceiling_db - c.peak)
    # Rounded down to 0.01 dB, so the rounding can never lift a peak over the ceiling.
    gain = np.floor(np.where(np.isfinite(gain), gain, 0.0) * 100.0 + 1e-9) / 100.0
    loud_after = c.loudness + gain
    head_loud = np.where(np.isfinite(_edge(c.head_lufs, n)), _edge(c.head_lufs, n), c.loudness)
    tail_loud = np.where(np.isfinite(_edge(c.tail_lufs, n)), _edge(c.tail_lufs, n), c.loudness)
    _, artist = np.unique(np.char.lower(c.artist.astype(str)), return_inverse=True)
    return _Prepared(
        n=n,
        offset=offset,
        natural=natural,
        env=env,
        cover=cover,
        mean=mean.astype(np.float64),
        first=first.astype(np.float64),
        second=second.astype(np.float64),
        head=head.astype(np.float64),
        tail=tail,
        tempo=tempo,
        trusted_tempo=trusted,
        loud_after=loud_after,
        gain=gain,
        artist=artist.astype(np.int64),
        intro=intro,
        outro=outro,
        head_loud=head_loud + gain,
        tail_loud=tail_loud + gain,
    )


def _tempo_fits(tempo: FloatArray, low: float, high: float) -> BoolArray:
    """Whether a tempo, or its half or double (octave errors, half-time feel), is in range."""
    t = tempo[:, None] * np.array([0.5, 1.0, 2.0])[None, :]
    return ((t >= low * 0.97) & (t <= high * 1.03)).any(axis=1)


@dataclass(frozen=True, slots=True)
class _Rule:
    name: str
    mask: BoolArray
    hint: str


def _phase_rules(
    phase: Phase, c: Candidates, p: _Prepared, listeners: Listeners, min_play: float
) -> list[_Rule]:
    """The hard constraints of one phase, each with a mask and what to relax."""
    rules = [
        _Rule(
            "long enough to play",
            p.natural >= min_play,
            f"add tracks of at least {format_duration(min_play)}",
        )
    ]
    if listeners.vetoed is not None:
        rules.append(_Rule("listener vetoes", ~listeners.vetoed, "review the profiles' vetoes"))
    if phase.vocals == Vocals.NONE:
        rules.append(
            _Rule(
                "vocals: none",
                np.isin(c.vocals, ("none", "wordless")),
                "allow vocals in this phase, or annotate wordless tracks "
                "(setlist library annotate QUERY --vocals wordless)",
            )
        )
    if phase.tempo is not None:
        ok = ~p.trusted_tempo | _tempo_fits(p.tempo, phase.tempo.low, phase.tempo.high)
        rules.append(
            _Rule(f"tempo {phase.tempo}", ok, "widen the phase's tempo range, or add music")
        )
    if phase.tags.avoid:
        avoid = set(phase.tags.avoid)
        ok = np.array([not (avoid & set(t.tags)) for t in c.tracks], dtype=bool)
        rules.append(_Rule(f"avoided tags ({', '.join(phase.tags.avoid)})", ok, "avoid fewer tags"))
    return rules


def _bonus_rate(phase: Phase, c: Candidates, listeners: Listeners, w: Weights) -> FloatArray:
    """Negative cost per second played for what the phase and the listeners prefer."""
    rate = np.zeros(len(c))
    if phase.tags.prefer:
        prefer = set(phase.tags.prefer)
        rate -= w.prefer_tag * np.array([bool(prefer & set(t.tags)) for t in c.tracks])
    if phase.vocals == Vocals.PREFER:
        rate -= w.vocals_prefer * np.isin(c.vocals, ("wordless", "lyrics"))
    if listeners.liked is not None and listeners.liked.size:
        rate -= w.like * listeners.liked.sum(axis=0)
    return rate


# --- the search ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Placement:
    track: int
    phase: int
    start: float
    length: float
    cut: bool
    cost: float
    parts: FloatArray  # one cost per _PART_NAMES entry


@dataclass(frozen=True, slots=True)
class _State:
    cost: float
    t: float
    phase: int
    last: int
    tail: float
    used: frozenset[int]
    artists: tuple[int, ...]
    path: tuple[_Placement, ...]
    boundaries: tuple[float, ...]


@dataclass(slots=True)
class _Context:
    arc: Arc
    c: Candidates
    p: _Prepared
    o: PlanOptions
    eligible: list[BoolArray]
    bonus: list[FloatArray]
    min_play: list[float]
    starts: FloatArray
    ends: FloatArray
    rng: np.random.Generator
    grid: FloatArray | None = None
    artists: list[int] = field(default_factory=list)
    shortlists: dict[tuple[int, int, int], npt.NDArray[np.int64]] = field(default_factory=dict)

    @property
    def length(self) -> float:
        return self.arc.length


def plan(
    arc: Arc,
    candidates: Candidates,
    options: PlanOptions | None = None,
    listeners: Listeners | None = None,
) -> Setlist:
    """Fit `candidates` to `arc`; deterministic for `options.seed`.

    Raises `CannotFillPhase` when the library cannot fill a phase under its constraints,
    and `PlanningError` when there is nothing to plan with.
    """
    o = options or PlanOptions()
    listeners = listeners or Listeners()
    if len(candidates) == 0:
        raise PlanningError(
            "no analysed tracks to plan with",
            hint="scan a music folder first: setlist library scan DIR",
        )
    excluded: list[int] = []
    notes: list[str] = []
    for _ in range(DEAD_AIR_REPAIRS + 1):
        result = _plan_once(arc, candidates, o, listeners, excluded)
        holes = dead_air(result, final_fade=o.final_fade)
        if not holes:
            if notes:
                result = replace(result, notes=(*result.notes, *notes))
            return result
        hole = holes[0]
        culprit = result.entries[hole.entries[0]] if hole.entries else None
        where = f"{format_clock(hole.start)}-{format_clock(hole.end)}"
        if culprit is None:
            break
        notes.append(
            f"left out '{culprit.track.title}': it made {hole.length:.1f}s of near-silence "
            f"at {where}"
        )
        excluded.append(culprit.track.id)
    names = ", ".join(f"'{result.entries[i].track.title}'" for i in hole.entries) or "none"
    raise PlanningError(
        f"the plan keeps a stretch of near-silence ({hole.length:.1f}s at {where}, more than "
        f"{DEAD_AIR_LU:g} LU under the session's level; playing: {names})",
        hint="set the track's cue points (setlist library annotate QUERY --cue-in/--cue-out) "
        "or mark it never-play",
    )


def _plan_once(
    arc: Arc, candidates: Candidates, o: PlanOptions, listeners: Listeners, excluded: list[int]
) -> Setlist:
    if excluded:
        keep = ~np.isin(candidates.ids, np.asarray(excluded, dtype=np.int64))
        listeners = replace(
            listeners,
            vetoed=~keep if listeners.vetoed is None else (listeners.vetoed | ~keep),
        )
    p = _prepare(candidates, o)
    ctx = _context(arc, candidates, p, o, listeners)
    if o.search == "beam":
        try:
            final = _beam(ctx)
        except CannotFillPhase:
            # A tight library can strand a narrow search; look harder before giving up
            # (more states per slot, every eligible track scored). Constraints stay.
            wide = replace(o, beam=o.beam * 4, shortlist=max(o.shortlist * 8, 1024))
            final = _beam(replace(ctx, o=wide, rng=np.random.default_rng(o.seed)))
    else:
        final = _sequential(ctx, greedy=o.search == "greedy")
    return _setlist(ctx, final, listeners)


def _context(arc: Arc, c: Candidates, p: _Prepared, o: PlanOptions, ls: Listeners) -> _Context:
    eligible, bonus, min_play = [], [], []
    starts, ends = arc.starts, arc.ends
    for i, phase in enumerate(arc.phases):
        mp = min(o.min_play, 0.8 * phase.duration)
        rules = _phase_rules(phase, c, p, ls, mp)
        mask = np.logical_and.reduce([r.mask for r in rules])
        music = float(np.minimum(p.natural[mask], MAX_SCORED * 4).sum())
        if not mask.any() or music < phase.duration:
            raise _cannot_fill(arc, i, rules, p, music)
        eligible.append(mask)
        bonus.append(_bonus_rate(phase, c, ls, o.weights))
        min_play.append(mp)
    # Each phase may have enough on its own while the session as a whole (no repeats)
    # does not: then name the phase where the music would run out, and why.
    union = np.logical_or.reduce(eligible)
    music = float(np.minimum(p.natural[union], MAX_SCORED * 4).sum())
    if music < arc.length:
        i = int(np.searchsorted(ends, music, side="right"))
        own = np.logical_or.reduce(
            [
                np.logical_and.reduce([r.mask for r in _phase_rules(ph, c, p, Listeners(), mp)])
                for ph, mp in zip(arc.phases, min_play, strict=True)
            ]
        )
        rules = [_Rule("the phases' own constraints", own, "relax the phases' constraints")]
        if ls.vetoed is not None:
            rules.append(_Rule("listener vetoes", ~ls.vetoed, "review the profiles' vetoes"))
        raise _cannot_fill(arc, min(i, len(arc.phases) - 1), rules, p, music)
    return _Context(
        arc=arc,
        c=c,
        p=p,
        o=o,
        eligible=eligible,
        bonus=bonus,
        min_play=min_play,
        starts=starts,
        ends=ends,
        rng=np.random.default_rng(o.seed),
        artists=p.artist.tolist(),
    )


def _cannot_fill(
    arc: Arc, index: int, rules: list[_Rule], p: _Prepared, music: float | None = None
) -> CannotFillPhase:
    """Name the constraint that ran dry: the one whose removal frees the most music."""
    phase = arc.phases[index]
    span = f"{format_clock(arc.starts[index])}-{format_clock(arc.ends[index])}"
    total = len(p.natural)
    passing = np.logical_and.reduce([r.mask for r in rules])
    best: tuple[float, _Rule, int] | None = None
    for r in rules:
        others = np.logical_and.reduce(
            [q.mask for q in rules if q is not r] or [np.ones(total, bool)]
        )
        freed = float(p.natural[others].sum())
        if best is None or freed > best[0]:
            best = (freed, r, int(others.sum()))
    assert best is not None
    _, rule, met_others = best
    have = float(p.natural[passing].sum()) if music is None else music
    return CannotFillPhase(
        f"cannot fill phase '{phase.name}' ({span}, {format_duration(phase.duration)}): "
        f"'{rule.name}' leaves {int(passing.sum())} of {total} tracks "
        f"({format_duration(have)} of music; {met_others} tracks meet the other constraints)",
        hint=f"{rule.hint}; or add music, or shorten the phase",
    )


def _target(ctx: _Context, t: float) -> FloatArray:
    """Target intensity per STEP from time t (cached on a whole-second grid)."""
    m = ctx.p.env.shape[1]
    if ctx.grid is None:
        seconds = np.arange(int(ctx.length) + int((m + 1) * STEP) + 2, dtype=np.float64)
        ctx.grid = np.asarray(ctx.arc.intensity_at(np.minimum(seconds, ctx.length)))
    first = round(t + STEP / 2)
    return ctx.grid[first : first + int(m * STEP) : int(STEP)]


def _shortlist(ctx: _Context, s: _State, limit: int) -> npt.NDArray[np.int64]:
    """Candidates worth scoring from state `s`: eligible, unused, artist not too recent,
    nearest in mean intensity to the target over a typical track's span."""
    p = ctx.p
    key = (s.phase, int(s.t // SLOT), limit)
    cached = ctx.shortlists.get(key)
    if cached is None:
        # Nearest in shape: the target's level over the next two spans of SHAPE seconds
        # against each track's own opening and continuation.
        target = _target(ctx, s.t)
        half = max(1, int(SHAPE / STEP))
        l1, l2 = float(target[:half].mean()), float(target[half : 2 * half].mean())
        shape = np.abs(p.first - l1) + np.abs(p.second - l2)
        distance = np.where(ctx.eligible[s.phase], shape, np.inf)
        # Room for what a state may exclude: its used tracks and recent artists.
        k = min(p.n, limit + 64 + 16 * ctx.o.artist_gap)
        idx = np.argpartition(distance, k - 1)[:k] if k < p.n else np.arange(p.n)
        idx = idx[np.isfinite(distance[idx])]
        idx = idx[np.argsort(distance[idx], kind="stable")]
        ctx.shortlists[key] = idx
    else:
        idx = cached
    used, recent, artist = s.used, set(s.artists), ctx.artists
    keep = [i for i in idx.tolist() if i not in used and artist[i] not in recent]
    return np.asarray(keep[:limit], dtype=np.int64)


def _expand(ctx: _Context, s: _State, idx: npt.NDArray[np.int64], noise: bool) -> _Moves | None:
    """Every way to go on from `s` by placing one of `idx` next (None if there is none)."""
    if len(idx) == 0:
        return None
    p, o, w = ctx.p, ctx.o, ctx.o.weights
    arc, phase_i = ctx.arc, s.phase
    phase = arc.phases[phase_i]
    last_phase = phase_i == len(arc.phases) - 1
    pe = float(ctx.ends[phase_i])
    xf = phase.crossfade
    tol = arc.tolerance
    full = p.natural[idx]
    # A track followed by another hands over where its natural fade begins (the fade
    # plays under the next one); the session's last track plays to its cue-out.
    natural = full - p.outro[idx]
    end = s.t + natural
    # Length played and whether the track closes its phase.
    if last_phase:
        closes = s.t + full >= ctx.length - 1.0
        # Never past the end of the file: the session's 1 s allowance absorbs the rest.
        length = np.where(closes, np.minimum(ctx.length - s.t, full), natural)
        cut = closes & (full > length + 1.0)
    else:
        boundary = end - xf / 2 + p.outro[idx] / 2
        closes = boundary >= pe - tol
        over = boundary > pe + tol
        # A cut lands the boundary on time, or as late as the tolerance allows when that
        # is what it takes to play the track for its minimum.
        at_boundary = pe + xf / 2 - s.t
        latest = pe + tol + xf / 2 - s.t
        cut_length = max(at_boundary, min(ctx.min_play[phase_i], latest))
        length = np.where(over, np.minimum(cut_length, natural), natural)
        cut = over
    # After a mid-phase track the rest of the phase must still be fillable; a track
    # that would leave too short a remainder is faded early to leave just enough.
    mp = ctx.min_play[phase_i]
    need = mp if last_phase else mp - xf / 2 - tol
    until = ctx.length if last_phase else pe
    shortfall = need - (until - (s.t + length - xf))
    shorten = ~closes & (shortfall > 0)
    length = np.where(shorten, length - shortfall, length)
    cut = cut | shorten
    ok = length >= mp - 1e-6
    nxt = s.t + length - xf
    idx, length, cut, closes, nxt = idx[ok], length[ok], cut[ok], closes[ok], nxt[ok]
    if len(idx) == 0:
        return None
    # Fit over the played span.
    target = _target(ctx, s.t)
    m = p.env.shape[1]
    steps = np.arange(m) * STEP
    cover = np.clip((length[:, None] - steps[None, :]) / STEP, 0.0, 1.0) * p.cover[idx]
    diff = p.env[idx] - target[None, :]
    squared = STEP * (cover * diff * diff).sum(axis=1)
    over_scored = np.maximum(length - MAX_SCORED, 0.0)
    squared += over_scored * (p.mean[idx] - target[-1]) ** 2
    # A track far from the curve is not a worse fit but a wrong piece (driving music in
    # a quiet closing): it is ruled out, and a library that has nothing closer says so.
    close = squared <= o.max_miss**2 * np.maximum(length, 1.0)
    if not close.all():
        idx, length, cut, closes, nxt, squared = (
            a[close] for a in (idx, length, cut, closes, nxt, squared)
        )
        if len(idx) == 0:
            return None
    fit = w.fit * squared
    cost = fit.copy()
    jump = np.zeros(len(idx))
    tempo = np.zeros(len(idx))
    loud = np.zeros(len(idx))
    if s.last >= 0:
        jump = w.jump * (p.head[idx] - s.tail) ** 2
        a, b = p.tempo[s.last], p.tempo[idx]
        if np.isfinite(a):
            ratio = np.abs(np.log2(np.where(np.isfinite(b), b, a) / a))
            ratio = np.minimum(ratio, np.abs(ratio - 1.0))  # half/double time reads alike
            tempo = w.tempo * ratio**2 * 4
        # What the listener hears at the join: the outgoing track's last stretch
        # against the incoming one's first, as played (integrated figures are all equal
        # after normalisation). The timeline glides the difference away, slowly.
        loud = w.loudness * (p.head_loud[idx] - p.tail_loud[s.last]) ** 2
        cost += jump + tempo + loud
    cut_cost = np.where(cut, w.cut + w.cut_per_second * (p.natural[idx] - length), 0.0)
    if last_phase:
        cut_cost = np.where(cut & closes, w.cut_per_second * (p.natural[idx] - length), cut_cost)
    cost += cut_cost
    bonus = ctx.bonus[phase_i][idx] * length
    cost += bonus
    boundary_cost = np.zeros(len(idx))
    if not last_phase:
        landed = s.t + length - xf / 2 + np.where(cut, 0.0, p.outro[idx] / 2)
        boundary_cost = np.where(closes, w.boundary * ((landed - pe) / max(tol, 1.0)) ** 2, 0.0)
        cost += boundary_cost
    if noise and w.noise > 0:
        cost = cost + w.noise * np.abs(fit + 1.0) * ctx.rng.standard_normal(len(idx))
    parts = np.stack([fit, jump, tempo, loud, cut_cost, boundary_cost, bonus])
    return _Moves(s, idx, length, cut, closes, nxt, cost, parts)


_PART_NAMES = (
    "fit",
    "intensity step",
    "tempo change",
    "edge loudness step",
    "cut short",
    "phase boundary",
    "preferences",
)


@dataclass(frozen=True, slots=True)
class _Moves:
    """Every way to go on from `state`, as arrays; states are built only when kept."""

    state: _State
    idx: npt.NDArray[np.int64]
    length: FloatArray
    cut: BoolArray
    closes: BoolArray
    nxt: FloatArray
    cost: FloatArray
    parts: FloatArray

    def __len__(self) -> int:
        return len(self.idx)

    def best_per_bucket(self, ctx: _Context, beam: int) -> list[tuple[int, tuple[int, int]]]:
        """Indices of the `beam` cheapest moves into each (slot, phase) bucket, cheapest
        first: only those could survive, so only those become states."""
        phase = np.where(self.closes, self.state.phase + 1, self.state.phase)
        ends = self.closes & (self.state.phase == len(ctx.arc.phases) - 1)
        phase = np.where(ends, len(ctx.arc.phases), phase)
        code = np.where(
            ends,
            -1,
            (self.nxt // SLOT).astype(np.int64) * (len(ctx.arc.phases) + 1) + phase,
        )
        order = np.lexsort((self.cost, code))
        sorted_code = code[order]
        first = np.searchsorted(sorted_code, sorted_code, side="left")
        rank = np.arange(len(order)) - first
        keep = order[rank < beam]
        keep = keep[np.argsort(self.cost[keep], kind="stable")]
        slots = np.where(code[keep] < 0, -1, (self.nxt[keep] // SLOT).astype(np.int64))
        return list(
            zip(keep.tolist(), zip(slots.tolist(), phase[keep].tolist(), strict=True), strict=True)
        )

    def key(self, ctx: _Context, j: int) -> tuple[int, int]:
        s = self.state
        last_phase = s.phase == len(ctx.arc.phases) - 1
        if self.closes[j]:
            if last_phase:
                return (-1, len(ctx.arc.phases))
            return (int(self.nxt[j] // SLOT), s.phase + 1)
        return (int(self.nxt[j] // SLOT), s.phase)

    def build(self, ctx: _Context, j: int) -> _State:
        s, p = self.state, ctx.p
        arc = ctx.arc
        i = int(self.idx[j])
        length = float(self.length[j])
        m = p.env.shape[1]
        # Exit intensity where the track actually stops (a cut track exits mid-piece).
        k_end = min(m - 1, max(0, int(min(length, MAX_SCORED) / STEP) - 1))
        tail = float(p.env[i, k_end]) if self.cut[j] else float(p.tail[i])
        placement = _Placement(
            i, s.phase, s.t, length, bool(self.cut[j]), float(self.cost[j]), self.parts[:, j]
        )
        last_phase = s.phase == len(arc.phases) - 1
        closing = bool(self.closes[j])
        gap = ctx.o.artist_gap
        artists = (*s.artists, int(p.artist[i]))[-gap:] if gap else ()
        boundaries = s.boundaries
        if closing and not last_phase:
            half_outro = 0.0 if self.cut[j] else float(p.outro[i]) / 2
            boundaries = (
                *boundaries,
                s.t + length - arc.phases[s.phase].crossfade / 2 + half_outro,
            )
        if closing and last_phase:
            t, phase = ctx.length, len(arc.phases)
        else:
            t, phase = float(self.nxt[j]), s.phase + 1 if closing else s.phase
        return _State(
            cost=s.cost + float(self.cost[j]),
            t=t,
            phase=phase,
            last=i,
            tail=tail,
            used=s.used | {i},
            artists=artists,
            path=(*s.path, placement),
            boundaries=boundaries,
        )


def _start(ctx: _Context) -> _State:
    return _State(0.0, 0.0, 0, -1, 0.0, frozenset(), (), (), ())


def _beam(ctx: _Context) -> _State:
    """Dynamic programme over (phase, time slot), keeping the `beam` best per bucket."""
    o = ctx.o
    buckets: dict[tuple[int, int], list[_State]] = {}
    order: list[tuple[int, int]] = []
    done: list[_State] = []
    furthest = _start(ctx)

    def offer(st: _State) -> None:
        if st.phase >= len(ctx.arc.phases):
            done.append(st)
            return
        key = (int(st.t // SLOT), st.phase)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = [st]
            heapq.heappush(order, key)
            return
        if len(bucket) < o.beam:
            bucket.append(st)
        elif st.cost < bucket[-1].cost:
            bucket[-1] = st
        else:
            return
        bucket.sort(key=lambda x: x.cost)

    offer(_start(ctx))
    while order:
        key = heapq.heappop(order)
        for st in buckets.pop(key):
            if st.t > furthest.t:
                furthest = st
            moves = _expand(ctx, st, _shortlist(ctx, st, o.shortlist), noise=True)
            if moves is None:
                continue
            for j, k in moves.best_per_bucket(ctx, o.beam):
                if k[0] >= 0:
                    bucket = buckets.get(k)
                    if (
                        bucket
                        and len(bucket) >= o.beam
                        and st.cost + moves.cost[j] >= bucket[-1].cost
                    ):
                        continue
                offer(moves.build(ctx, int(j)))
    if not done:
        raise _stuck(ctx, furthest)
    return min(done, key=lambda s: s.cost)


def _sequential(ctx: _Context, greedy: bool) -> _State:
    """Baselines: one track at a time, by mean intensity (greedy) or at random."""
    st = _start(ctx)
    p = ctx.p
    while st.phase < len(ctx.arc.phases):
        moves = _expand(ctx, st, _shortlist(ctx, st, p.n), noise=False)
        if moves is None:
            raise _stuck(ctx, st)
        if greedy:
            # The track whose mean intensity is closest to the target at its middle.
            middle = np.minimum(st.t + moves.length / 2, ctx.length)
            miss = np.abs(p.mean[moves.idx] - ctx.arc.intensity_at(middle))
            j = int(np.argmin(miss))
        else:
            j = int(ctx.rng.integers(len(moves)))
        st = moves.build(ctx, j)
    return st


def _stuck(ctx: _Context, furthest: _State) -> CannotFillPhase:
    """The search ran out of moves: say where, and what the remaining music lacks."""
    i = min(furthest.phase, len(ctx.arc.phases) - 1)
    phase = ctx.arc.phases[i]
    left = ctx.eligible[i].copy()
    left[list(furthest.used)] = False
    level = float(ctx.arc.intensity_at(min(furthest.t + 60.0, ctx.length)))
    near_mask = left & (np.abs(ctx.p.mean - level) <= ctx.o.max_miss)
    near = int(near_mask.sum())
    artists = set(ctx.p.artist[near_mask].tolist())
    if near and artists <= set(furthest.artists):
        return CannotFillPhase(
            f"cannot fill phase '{phase.name}' from {format_clock(furthest.t)}: the {near} "
            f"unplayed tracks near the target intensity there ({level:.2f}) are by "
            f"{len(artists)} artist{'s' if len(artists) != 1 else ''}, all heard within the "
            f"last {ctx.o.artist_gap} tracks (artist gap)",
            hint=f"add music near intensity {level:.2f} by other artists, or allow a "
            "smaller --artist-gap",
        )
    return CannotFillPhase(
        f"cannot fill phase '{phase.name}' from {format_clock(furthest.t)}: of "
        f"{int(left.sum())} unplayed tracks that meet its constraints, {near} come within "
        f"{ctx.o.max_miss:g} of the target intensity there ({level:.2f}), and none of "
        f"those fits the time to the phase boundary ({format_clock(ctx.ends[i])} within "
        f"{format_duration(ctx.arc.tolerance)})",
        hint=f"add music near intensity {level:.2f}, relax this phase's constraints, "
        "or lengthen the arc's tolerance",
    )


# --- the result ----------------------------------------------------------------------


def _setlist(ctx: _Context, final: _State, listeners: Listeners) -> Setlist:
    arc, p, c, o = ctx.arc, ctx.p, ctx.c, ctx.o
    path = final.path
    last = len(path) - 1
    # Where each entry really sounds: a quiet intro plays under the track before (the
    # session's first track skips it instead), a natural fade under the track after.
    spans: list[tuple[float, float, float]] = []  # start, length, file offset
    sides: list[Side] = []
    volumes: list[float] = []
    for n, pl in enumerate(path):
        i = pl.track
        lead_in = float(p.intro[i]) if n else 0.0
        extra = 0.0 if (pl.cut or n == last) else float(p.outro[i])
        start = pl.start - lead_in
        length = pl.length + lead_in + extra
        offset = max(float(p.offset[i]) - lead_in, 0.0)
        volume = arc.phases[pl.phase].volume_db
        if listeners.max_volume_db is not None:
            volume = min(volume, listeners.max_volume_db)
        track = c.tracks[i]
        spans.append((start, length, offset))
        volumes.append(volume)
        sides.append(
            Side(
                start=start,
                end=start + length,
                offset=offset,
                gain_db=float(p.gain[i]) + volume,
                loudness=float(c.loudness[i]),
                edges=track.features.edges if track.features is not None else None,
                intro=lead_in,
            )
        )
    fades = [[0.0, 0.0] for _ in path]
    ramps: list[tuple[tuple[float, float], ...]] = [() for _ in path]
    fades[0][0] = min(arc.phases[path[0].phase].crossfade, 10.0, spans[0][1] / 3)
    fades[last][1] = min(o.final_fade, spans[last][1] / 3)
    for n in range(1, len(path)):
        a, b = sides[n - 1], sides[n]
        i = path[n].track
        headroom = o.ceiling_db - float(c.peak[i]) - b.gain_db
        step = volumes[n - 1] - volumes[n]
        xf = arc.phases[path[n - 1].phase].crossfade
        join = plan_join(a, b, xf, headroom_db=headroom, volume_step_db=step)
        fades[n - 1][1] = join.fade_out if join.fade_out > 0 else min(xf, a.end - a.start)
        fades[n][0] = join.fade_in if join.fade_in > 0 else min(xf, b.end - b.start)
        ramps[n] = ramp_points(a.end - b.start, b.end - b.start, join.match_db, step, xf)
    entries = []
    for n, pl in enumerate(path):
        start, length, offset = spans[n]
        fade_in, fade_out = fades[n]
        if fade_in + fade_out > length:  # a short track between two long joins
            scale = length / (fade_in + fade_out)
            fade_in, fade_out = fade_in * scale * 0.999, fade_out * scale * 0.999
        target = _target(ctx, pl.start)
        m = p.env.shape[1]
        cover = np.clip((pl.length - np.arange(m) * STEP) / STEP, 0.0, 1.0) * p.cover[pl.track]
        wsum = max(float(cover.sum()), 1e-9)
        realised = float((p.env[pl.track] * cover).sum() / wsum)
        tgt = float((target * cover).sum() / wsum)
        penalties = tuple(
            Penalty(name, round(float(cost), 4))
            for name, cost in zip(_PART_NAMES, pl.parts, strict=True)
            if abs(cost) >= 1e-4
        )
        entries.append(
            SetlistEntry(
                track=c.tracks[pl.track],
                phase=arc.phases[pl.phase].name,
                start=round(start, 3),
                length=round(length, 3),
                offset=round(offset, 3),
                fade_in=round(fade_in, 3),
                fade_out=round(fade_out, 3),
                gain_db=round(float(p.gain[pl.track]), 2),
                volume_db=volumes[n],
                target=round(tgt, 4),
                realised=round(realised, 4),
                cut=pl.cut,
                penalties=penalties,
                ramp=ramps[n],
            )
        )
    # Realised boundaries: the middle of the overlap between the phases' tracks.
    phase_spans = []
    boundaries = []
    for a, b in itertools.pairwise(entries):
        if a.phase != b.phase:
            boundaries.append((b.start + max(b.start, a.end)) / 2)
    if len(boundaries) != len(arc.phases) - 1:
        boundaries = list(final.boundaries)
    for i, phase in enumerate(arc.phases):
        start = 0.0 if i == 0 else boundaries[i - 1]
        end = arc.length if i == len(arc.phases) - 1 else boundaries[i]
        phase_spans.append(
            PhaseSpan(
                phase.name, float(ctx.starts[i]), float(ctx.ends[i]), round(start, 3), round(end, 3)
            )
        )
    draft = Setlist(
        arc=arc,
        entries=tuple(entries),
        phases=tuple(phase_spans),
        metrics=PlanMetrics(0.0, 0.0, -1, 0.0, 0.0),
        seed=o.seed,
        loudness_target=o.loudness_target,
        profiles=listeners.names,
        max_volume_db=listeners.max_volume_db,
    )
    notes = list(_underserved(listeners, [pl.track for pl in path]))
    return replace(draft, metrics=measure(draft), notes=tuple(notes))


@dataclass(frozen=True, slots=True)
class DeadAir:
    """A planned stretch where the programme falls far under the session's level."""

    start: float
    end: float
    entries: tuple[int, ...]  # indices of the entries sounding then (the quietest first)

    @property
    def length(self) -> float:
        return self.end - self.start


def entry_side(e: SetlistEntry) -> Side:
    """The joins model of one planned entry."""
    f = e.track.features
    return Side(
        start=e.start,
        end=e.end,
        offset=e.offset,
        gain_db=e.gain_db + e.volume_db,
        loudness=f.loudness_lufs if f is not None else -20.0,
        edges=f.edges if f is not None else None,
    )


def dead_air(s: Setlist, step: float = 0.5, final_fade: float = 30.0) -> list[DeadAir]:
    """Stretches longer than `DEAD_AIR_SECONDS` where the modelled programme is more than
    `DEAD_AIR_LU` under the session's level (its loudness target plus the phase volume),
    outside the first 10 s and the closing fade."""
    times = np.arange(10.0, max(s.length - final_fade - 2.0, 10.0), step) + step / 2
    if len(times) == 0:
        return []
    sides = [entry_side(e) for e in s.entries]
    level = programme_level(
        sides, [(e.fade_in, e.fade_out) for e in s.entries], [e.ramp for e in s.entries], times
    )
    floor = np.full(times.shape, np.inf)
    for e in s.entries:
        inside = (times >= e.start) & (times < e.end)
        floor[inside] = np.minimum(floor[inside], s.loudness_target + e.volume_db)
    floor = np.where(np.isfinite(floor), floor, s.loudness_target) - DEAD_AIR_LU
    out = []
    for a, b in quiet_stretches(level, floor, times, DEAD_AIR_SECONDS):
        mid = np.array([(a + b) / 2])
        sounding = [i for i, e in enumerate(s.entries) if e.start < b and e.end > a]
        sounding.sort(key=lambda i: float(sides[i].level(mid)[0]))
        out.append(DeadAir(round(a, 2), round(b, 2), tuple(sounding)))
    return out


def measure(s: Setlist, step: float = 5.0) -> PlanMetrics:
    """Fit, transitions and timing of a setlist (also used on baselines in benchmarks)."""
    times = np.arange(0.0, s.arc.length, step) + step / 2
    realised = s.realised_at(times)
    target = np.asarray(s.arc.intensity_at(times))
    rmse = float(np.sqrt(np.mean((realised - target) ** 2)))
    worst, worst_i = 0.0, -1
    for i in range(1, len(s.entries)):
        a, b = s.entries[i - 1], s.entries[i]
        before = float(s.realised_at(b.start - 1.0)[0])
        after = float(s.realised_at(a.end + 1.0)[0])
        jump = abs(after - before)
        if jump > worst:
            worst, worst_i = jump, i
    timing = abs(s.length - s.arc.length)
    boundary = max((abs(p.error) for p in s.phases[:-1]), default=0.0)
    violations = []
    if boundary > s.arc.tolerance + 1e-6:
        violations.append(
            f"a phase boundary is {boundary:.0f}s off (tolerance {s.arc.tolerance:.0f}s)"
        )
    if timing > 1.0:
        violations.append(f"the session ends {timing:.1f}s off its length")
    return PlanMetrics(
        fit_rmse=round(rmse, 4),
        worst_transition=round(worst, 4),
        worst_transition_index=worst_i,
        timing_error=round(timing, 3),
        boundary_error=round(boundary, 3),
        violations=tuple(violations),
    )


def _underserved(listeners: Listeners, chosen: Sequence[int]) -> list[str]:
    if listeners.liked is None or len(listeners.names) < 2:
        return []
    counts = [int(listeners.liked[r, list(chosen)].sum()) for r in range(listeners.liked.shape[0])]
    top = max(counts)
    notes = []
    for name, n in zip(listeners.names, counts, strict=True):
        if top >= 2 and n < top / 2:
            notes.append(
                f"{name}'s likes fill {n} of {len(chosen)} tracks, "
                f"against {top} for another listener"
            )
    return notes
