"""Live re-planning: softer/stronger, longer/shorter phases, jumps and failed-track substitutes.

The conductor calls a `Replanner` on its tick thread when the therapist asks for a change,
and when a file fails to play. It keeps what the room has already heard (and what is
about to start), builds an arc for the *rest* of the session on the session clock, plans
it with the ordinary planner over the library minus every track already used, failed or
vetoed, and splices the new cues in so the first one cross-fades out of the track that is
playing: no gap, no double-loud overlap. Pure: no clock, no files, no players.

State the replanner keeps (requests are *deltas*, so two "softer" presses compose):

- the cumulative intensity shift added to the arc's target for the rest of the session;
- the phase schedule on the session clock (where each phase starts and ends), with a
  per-phase time warp that says which part of the template's curve plays when, so a
  stretched or shortened remainder keeps the shape it had at those times;
- the tracks heard or failed so far (never chosen again).

It changes only when a call succeeds: a `PlanningError` leaves it (and the conductor's
plan) as it was.

Rules the conductor can rely on:

- cues that start by `now + COMMIT` are kept as they are (the player is already pre-rolling
  them; swapping them this late would race the start). The latest of them is the
  *anchor*: the new plan begins where the anchor's fade-out begins, and the first new cue
  fades in exactly as long as the anchor fades out.
- extend/shorten change the current phase (the phase of the cue sounding at `now`). The
  part of its curve after `now` is stretched or squeezed to the new length; later phases
  move with it, keeping their lengths, so the session end moves by the same amount.
  A phase never ends sooner than one crossfade after the latest kept cue starts, nor
  (unless `force`) shorter than its template's minimum (a fixed phase's length). There is
  no upper limit: a therapist extending live knows the client; the library may still run
  dry, which raises. A request clamped part-way says so in `Replanner.note`.
- when a shortened phase must end before the anchor's natural fade-out, the anchor is cut
  (`Timeline.cut`) so the boundary lands on time.
- a jump cross-fades into the named phase `LEAD` seconds from now (after any crossfade
  already in progress), drops the phases between, and plans the target phase at its
  scheduled length, then the later phases: the session ends earlier by the time skipped.
- a remainder of a phase too short to hold a track (`MIN_SPAN`) is given to the next phase,
  which starts early holding its opening level.
- a substitute for a failed track fills the failed cue's remaining slot under its phase's
  rules and target (see `Replanner.substitute`); when none fits, the next cue moves up.
- plans use a narrower search than a build (`LIVE_BEAM`, `LIVE_SHORTLIST`) unless
  `options` are given: as good a fit on the libraries measured, in about half the time.

Known limits: the planner scores the first new track against the target only, not
against the anchor's exit level, and the artist gap does not reach across the seam.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt

from setlist.errors import PlanningError
from setlist.models import Arc, Candidates, Curve, Keyframe, Phase, Setlist
from setlist.planner import Listeners, PlanOptions, plan
from setlist.timeline import Cue, FadeShape, PhaseMark, Timeline, cues_from_entries
from setlist.units import format_clock, format_duration

FloatArray = npt.NDArray[np.float64]

#: Cues starting within this many seconds of `now` are kept: their players are pre-rolling.
COMMIT = 2.0
#: Earliest a cut or a jump begins after `now`: time for the conductor to open a file.
LEAD = 1.0
#: Fade-in of a substitute for a track that failed while nothing else was sounding.
SUB_FADE = 1.5
#: Shortest substitute worth planning; less, and the next cue moves up instead.
SUB_MIN = 30.0
#: Shortest stretch worth planning: a phase remainder shorter than this is merged.
MIN_SPAN = 45.0
#: Live re-plans run on the conductor's tick thread: a narrower search than a build.
LIVE_BEAM = 1
LIVE_SHORTLIST = 48


@dataclass(frozen=True, slots=True)
class ReplanRequest:
    """A change to the rest of the session, as a delta on the replanner's state.

    `target_shift` is added to the intensity target for the rest of the session (the sum
    is kept within ±1 and each target within 0-1); `extend` adds seconds to the current
    phase (negative shortens); `jump_to` names a later phase to cross-fade into now.
    `force` lets a shortened phase go below its template's minimum length.
    """

    target_shift: float = 0.0
    extend: float = 0.0
    jump_to: str | None = None
    reason: str = ""
    force: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_shift) and math.isfinite(self.extend)):
            raise ValueError("a re-plan needs finite amounts")
        if not -1.0 <= self.target_shift <= 1.0:
            raise ValueError("an intensity shift lies within -1 and 1")
        if self.jump_to is not None and self.extend:
            raise ValueError("a jump and an extension cannot be asked for at once")


@dataclass(frozen=True, slots=True)
class _Span:
    """One phase on the session clock: its span, and which fraction of the template's
    curve plays at which session time (piecewise linear, held flat outside)."""

    start: float
    end: float
    times: tuple[float, ...]
    fracs: tuple[float, ...]

    @classmethod
    def plain(cls, start: float, end: float) -> _Span:
        return cls(start, end, (start, end), (0.0, 1.0))

    def frac(self, t: float) -> float:
        return float(np.interp(t, self.times, self.fracs))

    def shifted(self, delta: float) -> _Span:
        return _Span(
            self.start + delta,
            self.end + delta,
            tuple(t + delta for t in self.times),
            self.fracs,
        )

    def retimed(self, pivot: float, end: float) -> _Span:
        """The part after `pivot` stretched or squeezed to end at `end`."""
        pivot = min(max(pivot, self.start), self.end)
        head = [(t, f) for t, f in zip(self.times, self.fracs, strict=True) if t < pivot]
        f0 = self.frac(pivot)
        old = self.end - pivot
        if old <= 1e-9:
            tail = [(pivot, f0), (end, f0)]
        else:
            scale = (end - pivot) / old
            tail = [(pivot, f0)] + [
                (pivot + (t - pivot) * scale, f)
                for t, f in zip(self.times, self.fracs, strict=True)
                if t > pivot
            ]
        knots = _strictly_increasing([*head, *tail])
        return _Span(self.start, end, tuple(t for t, _ in knots), tuple(f for _, f in knots))

    def held(self, t: float, seconds: float) -> _Span:
        """The phase with its curve held still for `seconds` at `t` (inside the span)."""
        f = self.frac(t)
        knots = [(x, y) for x, y in zip(self.times, self.fracs, strict=True) if x < t]
        knots += [(t, f), (t + seconds, f)]
        knots += [(x + seconds, y) for x, y in zip(self.times, self.fracs, strict=True) if x > t]
        knots = _strictly_increasing(knots)
        return _Span(
            self.start, self.end + seconds, tuple(x for x, _ in knots), tuple(y for _, y in knots)
        )

    def ended_at(self, t: float) -> _Span:
        """The phase cut off at `t` (skipped, or its remainder given to the next)."""
        return replace(self, start=min(self.start, t), end=t)

    def started_at(self, t: float) -> _Span:
        """The phase starting at `t` when that is earlier (holding its opening level)."""
        if t >= self.start:
            return self
        return replace(self, start=t)


def _strictly_increasing(knots: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for t, f in knots:
        if out and t <= out[-1][0] + 1e-9:
            continue
        out.append((t, f))
    return out


class Replanner:
    """Re-plans the rest of a live session from a library; see the module docstring.

    `target_shift` and `phase_ends` restore a replanner's state (e.g. on resume after a
    crash): the cumulative shift, and each phase's end on the session clock.
    """

    def __init__(
        self,
        setlist: Setlist,
        candidates: Candidates,
        *,
        options: PlanOptions | None = None,
        listeners: Listeners | None = None,
        target_shift: float = 0.0,
        phase_ends: Sequence[float] | None = None,
    ) -> None:
        self._setlist = setlist
        self._arc = setlist.arc
        self._candidates = candidates
        self._options = options or PlanOptions(
            seed=setlist.seed,
            loudness_target=setlist.loudness_target,
            beam=LIVE_BEAM,
            shortlist=LIVE_SHORTLIST,
        )
        self._listeners = listeners or Listeners()
        self._shift = float(np.clip(target_shift, -1.0, 1.0))
        ends = list(self._arc.ends if phase_ends is None else phase_ends)
        if len(ends) != len(self._arc.phases) or any(b < a for a, b in itertools.pairwise(ends)):
            raise ValueError("phase ends must be one per phase, in order")
        starts = [0.0, *ends[:-1]]
        self._spans = tuple(_Span.plain(a, b) for a, b in zip(starts, ends, strict=True))
        self._floor = 0
        self._used: frozenset[int] = frozenset()
        self._failed: frozenset[int] = frozenset()
        self._count = 0
        self.note = ""
        knots = [p.intensity.knots(p.duration) for p in self._arc.phases]
        self._knots = [(np.asarray(x, dtype=np.float64), np.asarray(y)) for x, y in knots]

    # -- state, for the conductor's status and log ------------------------------------

    @property
    def target_shift(self) -> float:
        return self._shift

    @property
    def failed(self) -> frozenset[int]:
        """Ids of tracks that failed to play; never chosen again."""
        return self._failed

    def schedule(self) -> tuple[PhaseMark, ...]:
        """Each phase's planned span on the session clock (skipped phases last 0 s)."""
        return tuple(
            PhaseMark(p.name, s.start, s.end)
            for p, s in zip(self._arc.phases, self._spans, strict=True)
        )

    @property
    def integration_phase(self) -> str:
        """The phase an "integration" jump goes to: the one so named, else the last."""
        for p in self._arc.phases:
            if p.name.casefold() == "integration":
                return p.name
        return self._arc.phases[-1].name

    def target_at(self, t: float) -> float:
        """The target intensity at session time `t` under the current schedule and shift."""
        k = self._phase_at(self._spans, t)
        return self._value(k, self._spans[k], t, self._shift)

    def postpone(self, t: float, seconds: float) -> None:
        """Move the schedule after session time `t` later by `seconds`, the target held
        still meanwhile: for a conductor that shifts the timeline itself (say, a pause
        that moves the cues later), so later re-plans keep the new timing."""
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError("a schedule can only be postponed by a finite, positive time")
        self._spans = tuple(
            s.held(t, seconds)
            if s.start <= t < s.end
            else s.shifted(seconds)
            if s.start >= t
            else s
            for s in self._spans
        )

    # -- re-planning ------------------------------------------------------------------

    def replan(self, timeline: Timeline, now: float, request: ReplanRequest) -> Timeline:
        """The timeline with everything after the playing track re-planned; see module."""
        arc = self._arc
        kept = [c for c in timeline.cues if c.start <= now + COMMIT]
        later = [c for c in timeline.cues if c.start > now + COMMIT]
        anchor = kept[-1] if kept else None
        if anchor is not None and anchor.cut is not None and not later:
            raise PlanningError("the session is ending: nothing to re-plan")
        shift = float(np.clip(self._shift + request.target_shift, -1.0, 1.0))
        spans = list(self._spans)
        cur = self._current(timeline, now)
        floor = self._floor
        notes: list[str] = []
        others = max((c.stop for c in kept[:-1]), default=now)
        if anchor is not None:
            t_nat, f_nat = anchor.fade_out_at, anchor.stop - anchor.fade_out_at
        else:
            opening = arc.phases[self._phase_at(spans, now)]
            t_nat, f_nat = max(now, 0.0) + LEAD, min(opening.crossfade, 10.0)
        cut_at: float | None = None
        fade = f_nat
        if request.extend:
            spans, note = self._extended(spans, cur, now, kept, request)
            notes.extend(note)
            boundary = spans[cur].end
            xf = arc.phases[cur].crossfade
            if (
                anchor is not None
                and request.extend < 0
                and cur < len(spans) - 1
                and t_nat + f_nat / 2 > boundary + arc.tolerance
            ):
                cut_at = max(now + LEAD, others, boundary - xf / 2)
                fade = min(xf, anchor.stop - cut_at)
        if request.jump_to is not None:
            m = self._index(request.jump_to)
            if m <= cur:
                raise PlanningError(
                    f"cannot jump to phase '{arc.phases[m].name}': the session is already "
                    f"in phase '{arc.phases[cur].name}'"
                )
            t_jump = max(now + LEAD, others)
            if anchor is not None and t_nat > t_jump:
                cut_at = t_jump
                fade = min(arc.phases[cur].crossfade, anchor.stop - cut_at)
            start = cut_at if cut_at is not None else t_nat
            delta = start - spans[m].start
            spans = [
                s.ended_at(start) if k < m and s.end > start else s.shifted(delta) if k >= m else s
                for k, s in enumerate(spans)
            ]
            floor = m
            notes.append(f"jumped to phase '{arc.phases[m].name}'")
        if cut_at is not None and cut_at >= t_nat:
            cut_at, fade = None, f_nat  # the natural handover comes first anyway
        t0 = cut_at if cut_at is not None else t_nat
        if t0 < now:
            raise PlanningError("the last track is already fading out: nothing to re-plan")
        first = floor if request.jump_to is not None else max(floor, cur)
        rest, spans = self._rest(spans, t0, max(first, self._phase_at(spans, t0)))
        rest_arc = self._rest_arc(rest, t0, spans, shift)
        used = self._used | {c.track.id for c in kept}
        setlist = self._plan(rest_arc, used | self._failed, t0)
        new = list(
            cues_from_entries(
                setlist.entries,
                shape=anchor.shape if anchor is not None else _shape(timeline),
                first_key=timeline.next_key,
                delta=t0,
            )
        )
        fade = min(fade, new[0].length / 3)
        new[0] = replace(new[0], fade_in=fade)
        tl = timeline.with_cues(kept)
        if anchor is not None and (cut_at is not None or fade < f_nat - 1e-9):
            tl = tl.cut(anchor.key, t0, fade)
        tl = tl.with_cues([*tl.cues, *new])
        # Commit: only a plan that worked changes the state.
        self._shift, self._spans, self._floor = shift, tuple(spans), floor
        self._used = used
        self._count += 1
        if request.target_shift:
            notes.append(f"target shifted by {shift:+.2f} in all")
        self.note = "; ".join(notes) or "re-planned"
        return tl

    def substitute(self, timeline: Timeline, now: float, key: int) -> Timeline:
        """Replace failed cue `key` with a track fitting its phase, target and time.

        A cue that has started is replaced from `now` with a short fade-in (or, mid-
        crossfade, the rest of the failed cue's fade-in, so the pair sums as planned); an
        upcoming one is replaced in its own slot. The substitute runs to the failed cue's
        stop with its fade-out, so the next crossfade is untouched. When nothing fits,
        the next cue moves earlier to close the gap (later cues move with it).
        """
        try:
            c = timeline.cue(key)
        except KeyError:
            raise PlanningError(f"no cue {key} to replace") from None
        self._failed = self._failed | {c.track.id}
        if c.stop <= now:
            raise PlanningError(f"cue {key} has already ended")
        i = timeline.index_of(key)
        nxt = timeline.cues[i + 1] if i + 1 < len(timeline.cues) else None
        started = c.start <= now
        before = [d for d in timeline.cues[:i] if d.stop > now]
        if started and nxt is not None and nxt.start <= now:
            # Failed in its own fade-out: the next track is already coming in.
            return timeline.cut(key, now, 0.0)
        a = now if started else c.start
        if started:
            rest_fade = c.start + c.fade_in - now
            fade_in = max(SUB_FADE, rest_fade) if before else SUB_FADE
        else:
            fade_in = c.fade_in
        # The failed cue stays on record, stopped now, if it has started; else it goes.
        if started:
            others = timeline.cut(key, now, 0.0)
        else:
            others = timeline.with_cues(d for d in timeline.cues if d.key != key)
        span = c.stop - a
        try:
            if span - (c.stop - c.fade_out_at) < SUB_MIN:
                raise PlanningError("too little time left for a substitute")
            new, after = self._substitutes(timeline, c, a, fade_in, nxt)
        except PlanningError as exc:
            if nxt is None:
                raise PlanningError(
                    f"no substitute for '{c.track.title}' and nothing after it: {exc}"
                ) from exc
            delta = a - nxt.start
            moved = [d.shifted(delta) if d.start >= nxt.start else d for d in others.cues]
            moved = [replace(d, fade_in=fade_in) if d.key == nxt.key else d for d in moved]
            self.note = f"no substitute for '{c.track.title}' ({exc}); moved the next track up"
            return others.with_cues(moved)
        self.note = f"replaced '{c.track.title}' with " + ", ".join(
            f"'{d.track.title}'" for d in new
        )
        kept = [after if after is not None and d.key == after.key else d for d in others.cues]
        return others.with_cues([*kept, *new])

    # -- helpers --------------------------------------------------------------------

    def _substitutes(
        self, timeline: Timeline, c: Cue, a: float, fade_in: float, nxt: Cue | None
    ) -> tuple[list[Cue], Cue | None]:
        """Cues filling [a, c.stop] for phase `c.phase`, and the next cue as it must now
        be (its fade-in may shorten by the second the planner ended early)."""
        k = self._index(c.phase)
        length = c.stop - a
        phase = self._arc.phases[k]
        curve = self._curve(k, self._spans[k], a, c.stop, self._shift)
        mini = Arc(
            name=f"{self._arc.name} (substitute)",
            phases=(
                replace(
                    phase,
                    duration=length,
                    intensity=curve,
                    bounds=None,
                    crossfade=min(phase.crossfade, length / 4),
                ),
            ),
            tolerance=self._arc.tolerance,
        )
        used = self._used | {d.track.id for d in timeline.cues} | self._failed
        setlist = self._plan(mini, used, a)
        new = list(
            cues_from_entries(setlist.entries, shape=c.shape, first_key=timeline.next_key, delta=a)
        )
        new[0] = replace(new[0], fade_in=min(fade_in, new[0].length / 2))
        # The planner may end up to a second short of the slot (a file that runs out):
        # run on into the trimmed tail when there is one, else shorten the crossfade
        # into the next cue on both sides.
        last = new[-1]
        room = last.track.duration - last.offset
        if last.stop < c.stop and c.stop - last.start <= room:
            last = replace(last, stop=c.stop)
        fade_out = c.stop - c.fade_out_at
        if nxt is not None and last.stop < c.stop:
            fade_out = max(0.0, last.stop - nxt.start)
            nxt = replace(nxt, fade_in=fade_out)
        new[-1] = replace(last, fade_out=min(fade_out, new[-1].length / 2))
        return new, nxt

    def _plan(self, arc: Arc, exclude: frozenset[int], t0: float) -> Setlist:
        """Plan `arc` (starting at session time `t0`) without the `exclude`d track ids."""
        c = self._candidates
        keep = ~np.isin(c.ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
        ls = self._listeners
        if not keep.all():
            c = _subset(c, keep)
            ls = replace(
                ls,
                vetoed=None if ls.vetoed is None else ls.vetoed[keep],
                liked=None if ls.liked is None else ls.liked[:, keep],
            )
        options = replace(self._options, seed=self._options.seed + self._count + 1)
        try:
            return plan(arc, c, options, ls)
        except PlanningError as exc:
            raise type(exc)(
                f"cannot re-plan from {format_clock(t0)}: {exc.message} "
                "(times from the re-plan point)",
                hint=exc.hint,
            ) from exc

    def _current(self, timeline: Timeline, now: float) -> int:
        cue = timeline.current(now)
        k = self._index(cue.phase) if cue is not None else self._phase_at(self._spans, now)
        return max(k, self._floor)

    def _index(self, name: str) -> int:
        for k, p in enumerate(self._arc.phases):
            if p.name.casefold() == name.casefold():
                return k
        names = ", ".join(p.name for p in self._arc.phases)
        raise PlanningError(f"no phase '{name}' in arc '{self._arc.name}' (phases: {names})")

    @staticmethod
    def _phase_at(spans: Sequence[_Span], t: float) -> int:
        for k, s in enumerate(spans):
            if t < s.end and s.end > s.start:
                return k
        return len(spans) - 1

    def _extended(
        self,
        spans: list[_Span],
        p: int,
        now: float,
        kept: Sequence[Cue],
        request: ReplanRequest,
    ) -> tuple[list[_Span], list[str]]:
        phase = self._arc.phases[p]
        span = spans[p]
        want = span.end + request.extend
        latest = max((c.start for c in kept), default=now)
        played = max(now, latest) + phase.crossfade
        minimum = phase.bounds.minimum if phase.bounds is not None else phase.duration
        low = played if request.force else max(played, span.start + minimum)
        end = max(want, low)
        notes = []
        if request.extend < 0 and end >= span.end - 1e-6:
            why = (
                f"its minimum is {format_duration(minimum)}; force to go below"
                if end == span.start + minimum and not request.force
                else "it is already ending"
            )
            raise PlanningError(f"phase '{phase.name}' cannot be shortened: {why}")
        if end > want + 1e-6:
            notes.append(
                f"phase '{phase.name}' shortened by {format_duration(span.end - end)} "
                f"(not {format_duration(-request.extend)}): it cannot end sooner"
            )
        else:
            verb = "extended" if request.extend > 0 else "shortened"
            notes.append(f"phase '{phase.name}' {verb} by {format_duration(abs(request.extend))}")
        delta = end - span.end
        out = [
            s if k < p else span.retimed(now, end) if k == p else s.shifted(delta)
            for k, s in enumerate(spans)
        ]
        return out, notes

    def _rest(
        self, spans: list[_Span], t0: float, first: int
    ) -> tuple[list[tuple[int, float, float]], list[_Span]]:
        """Phases to plan from `t0` as (index, start, end); merges a too-short remainder
        into the next phase and raises when too little of the session is left."""
        spans = list(spans)
        n = len(spans)
        j = first
        while j < n - 1 and spans[j].end - t0 < self._min_span(j):
            j += 1
        if spans[n - 1].end - t0 < self._min_span(n - 1):
            left = max(0.0, spans[n - 1].end - t0)
            raise PlanningError(
                f"the session ends {format_duration(left)} after the current track: "
                "nothing left to re-plan"
            )
        for k in range(j):
            if spans[k].end > t0:
                spans[k] = spans[k].ended_at(t0)
        spans[j] = spans[j].started_at(t0)
        rest = [(j, t0, spans[j].end)]
        rest += [(k, spans[k].start, spans[k].end) for k in range(j + 1, n)]
        rest = [(k, a, b) for k, a, b in rest if b - a > 1e-6]
        return rest, spans

    def _min_span(self, k: int) -> float:
        return max(MIN_SPAN, 3 * self._arc.phases[k].crossfade)

    def _rest_arc(
        self, rest: list[tuple[int, float, float]], t0: float, spans: list[_Span], shift: float
    ) -> Arc:
        phases: list[Phase] = []
        for k, a, b in rest:
            phase = self._arc.phases[k]
            phases.append(
                replace(
                    phase,
                    duration=b - a,
                    intensity=self._curve(k, spans[k], a, b, shift),
                    bounds=None,
                    crossfade=min(phase.crossfade, (b - a) / 3),
                )
            )
        return Arc(
            name=f"{self._arc.name} (re-planned from {format_clock(t0)})",
            phases=tuple(phases),
            description=self._arc.description,
            tolerance=self._arc.tolerance,
            origin=self._arc.origin,
        )

    def _value(self, k: int, span: _Span, t: float | FloatArray, shift: float) -> FloatArray:
        xs, ys = self._knots[k]
        frac = np.interp(t, span.times, span.fracs)
        return np.clip(np.interp(frac, xs, ys) + shift, 0.0, 1.0)

    def _curve(self, k: int, span: _Span, a: float, b: float, shift: float) -> Curve:
        """Phase `k`'s target over session times [a, b] as a curve on that span: exact at
        every knot of the template curve and of the time warp (targets clipped to 0-1)."""
        xs, _ = self._knots[k]
        times = [a, b, *(t for t in span.times if a < t < b)]
        for (t1, f1), (t2, f2) in itertools.pairwise(zip(span.times, span.fracs, strict=True)):
            if f2 > f1:
                for x in xs:
                    if f1 < x < f2:
                        t = t1 + (x - f1) / (f2 - f1) * (t2 - t1)
                        if a < t < b:
                            times.append(float(t))
        ts = np.unique(np.asarray(times, dtype=np.float64))
        values = self._value(k, span, ts, shift)
        fr = np.clip((ts - a) / (b - a), 0.0, 1.0)
        keys: list[Keyframe] = []
        last = -1.0
        for f, v in zip(fr.tolist(), np.atleast_1d(values).tolist(), strict=True):
            if f <= last + 1e-9:
                continue
            keys.append(Keyframe(round(float(v), 6), fraction=float(f)))
            last = f
        if keys[-1].fraction != 1.0:
            keys[-1] = Keyframe(keys[-1].value, fraction=1.0)
        return Curve(tuple(keys))


def _shape(timeline: Timeline) -> FadeShape:
    """The fade shape the timeline uses (equal-power when it has no cues)."""
    return timeline.cues[0].shape if timeline.cues else FadeShape.EQUAL_POWER


def _subset(c: Candidates, keep: npt.NDArray[np.bool_]) -> Candidates:
    """The candidates at `keep`, sliced with numpy (Candidates.subset rebuilds from tracks,
    which is tens of milliseconds on a 10k library)."""
    lengths = np.diff(c.envelope_offsets)
    values = c.envelope_values[np.repeat(keep, lengths)]
    offsets = np.concatenate(([0], np.cumsum(lengths[keep]))).astype(np.int64)
    changes: dict[str, object] = {
        "tracks": tuple(t for t, k in zip(c.tracks, keep.tolist(), strict=True) if k),
        "envelope_offsets": offsets,
        "envelope_values": values,
    }
    for f in fields(c):
        if f.name not in changes:
            changes[f.name] = getattr(c, f.name)[keep]
    return replace(c, **changes)  # type: ignore[arg-type]
