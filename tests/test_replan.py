"""Live re-planning on real arcs and synthetic libraries, in virtual session time.

Every re-planned timeline is checked for what the room would hear: no track twice, cue
keys fresh and in order, no gap, never three tracks at once, crossfades that pair an
ending fade-out with a starting fade-in of the same length, and summed power that never
goes above one track's.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from setlist.arcfiles import Catalogue
from setlist.errors import PlanningError
from setlist.joins import ramp_db
from setlist.models import Arc, Candidates, Setlist, Vocals, candidates_from_tracks
from setlist.planner import Listeners, PlanOptions, plan
from setlist.replan import COMMIT, LEAD, SUB_FADE, Replanner, ReplanRequest
from setlist.testing import make_library
from setlist.timeline import Cue, Timeline

ARC = "ketamine-im-psychedelic"


@pytest.fixture(scope="module")
def arc() -> Arc:
    return Catalogue.default().load(ARC)


@pytest.fixture(scope="module")
def candidates() -> Candidates:
    return candidates_from_tracks(make_library(1000, seed=11))


@pytest.fixture(scope="module")
def setlist(arc: Arc, candidates: Candidates) -> Setlist:
    return plan(arc, candidates, PlanOptions(seed=3))


@pytest.fixture(scope="module")
def timeline(setlist: Setlist) -> Timeline:
    return Timeline.from_setlist(setlist)


def playing_at(tl: Timeline, t: float) -> Cue:
    """A cue well inside its solo stretch around `t` (so tests do not start mid-fade)."""
    for c in tl.cues:
        if c.start + c.fade_in + 5 < t < c.fade_out_at - 5:
            return c
    # `t` fell in a crossfade: the nearest cue with a solo stretch of 20 s or more.
    solo = [c for c in tl.cues if c.fade_out_at - c.start - c.fade_in > 20]
    if not solo:
        raise AssertionError(f"no cue plays alone near {t}")
    return min(solo, key=lambda c: abs(c.start - t))


def realised(cues: list[Cue], t0: float, t1: float) -> float:
    """Mean intensity the listener hears over [t0, t1]: tracks' envelopes, power-weighted."""
    times = np.arange(t0, t1, 2.0)
    power = np.zeros_like(times)
    value = np.zeros_like(times)
    for c in cues:
        f = c.track.features
        assert f is not None
        g = c.gain_at(times) / c.gain
        env = np.asarray(f.envelope)
        idx = np.clip(((times - c.start + c.offset) / f.envelope_step).astype(int), 0, env.size - 1)
        power += g**2
        value += g**2 * env[idx]
    heard = power > 1e-6
    return float((value[heard] / power[heard]).mean())


def check(
    tl: Timeline, old: Timeline | None = None, now: float | None = None, failed: int = -1
) -> None:
    """What the room hears is sound: see the module docstring. A `failed` cue stops dead
    where its substitute starts (it was silent already), and the substitute's keys are
    newer than the cues after it."""
    cues = list(tl.cues)
    ids = [c.track.id for c in cues]
    assert len(set(ids)) == len(ids), "a track repeats"
    keys = [c.key for c in cues]
    assert len(set(keys)) == len(keys)
    if failed < 0:
        assert keys == sorted(keys), "keys out of start order"
    if old is not None:
        assert now is not None
        kept = {c.key for c in old.cues if c.start <= now}
        assert kept <= set(keys), "a cue that had started was dropped"
        fresh = [k for k in keys if k not in {c.key for c in old.cues}]
        assert all(k >= old.next_key for k in fresh), "a new cue reuses a key"
    for a, b in itertools.pairwise(cues):
        overlap = a.stop - b.start
        if a.key == failed:
            assert overlap == pytest.approx(0.0, abs=1e-6)
            continue
        assert overlap >= -0.1, f"gap of {-overlap:.2f}s before cue {b.key}"
        assert overlap == pytest.approx(b.fade_in, abs=0.05), f"cue {b.key} fade-in"
        assert overlap == pytest.approx(a.stop - a.fade_out_at, abs=0.05), f"cue {a.key} fade"
    times = np.arange(cues[0].start, tl.length - 0.01, 0.25)
    active = np.array([[c.start <= t < c.stop for t in times] for c in cues])
    assert active.sum(axis=0).max() <= 2, "three tracks at once"
    assert active.sum(axis=0).min() >= 1, "silence"
    # The fades alone (a cue's level ramp, the join match and phase-volume glide, is
    # divided out): never more power than one track.
    ramps = np.stack([10 ** (ramp_db(c.ramp, times - c.start) / 20) for c in cues])
    fades = np.stack([c.gain_at(times) / c.gain for c in cues]) / ramps
    assert (fades**2).sum(axis=0).max() <= 1.0 + 1e-6, "louder than one track"


def request(**kw: object) -> ReplanRequest:
    return ReplanRequest(reason="test", **kw)  # type: ignore[arg-type]


# -- softer and stronger ---------------------------------------------------------------


@pytest.mark.parametrize(("shift", "sign"), [(-0.15, -1), (0.15, 1)])
def test_softer_and_stronger_move_the_upcoming_music(
    setlist: Setlist, candidates: Candidates, timeline: Timeline, shift: float, sign: int
) -> None:
    now = playing_at(timeline, 2000.0).start + 30.0
    rp = Replanner(setlist, candidates)
    new = rp.replan(timeline, now, request(target_shift=shift))
    check(new, timeline, now)
    first = new.upcoming(now)[0]
    assert first.key >= timeline.next_key
    # The playing track plays on: the new music starts where its fade-out begins.
    anchor = timeline.current(now)
    assert anchor is not None
    assert new.cue(anchor.key) == anchor
    assert first.start == pytest.approx(anchor.fade_out_at)
    window = (first.start + 30, first.start + 1800)
    before = realised(list(timeline.cues), *window)
    after = realised(list(new.cues), *window)
    assert sign * (after - before) >= 0.08
    assert rp.target_shift == pytest.approx(shift)
    assert abs(new.length - timeline.length) <= 2.0


def test_two_softer_requests_compose(
    arc: Arc, setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    rp = Replanner(setlist, candidates)
    now = playing_at(timeline, 1600.0).start + 10
    once = rp.replan(timeline, now, request(target_shift=-0.1))
    later = playing_at(once, now + 600).start + 10
    twice = rp.replan(once, later, request(target_shift=-0.1))
    check(twice, once, later)
    assert rp.target_shift == pytest.approx(-0.2)
    for t in (later + 900, 4500.0, 6500.0):
        assert rp.target_at(t) == pytest.approx(max(0.0, float(arc.intensity_at(t)) - 0.2))
    start = twice.upcoming(later)[0].start
    window = (start + 30, start + 1800)
    assert realised(list(twice.cues), *window) <= realised(list(once.cues), *window) - 0.04
    # Kept from the first re-plan: what had started by the second.
    assert [c for c in twice.cues if c.start <= later] == [c for c in once.cues if c.start <= later]


# -- extend, shorten, jump -------------------------------------------------------------


def boundaries(tl: Timeline) -> dict[str, float]:
    return {m.name: m.start for m in tl.phases()}


@pytest.mark.parametrize("extend", [300.0, -300.0])
def test_extend_and_shorten_move_every_later_boundary_and_the_end(
    arc: Arc, setlist: Setlist, candidates: Candidates, timeline: Timeline, extend: float
) -> None:
    now = playing_at(timeline, 2000.0).start + 5
    rp = Replanner(setlist, candidates)
    new = rp.replan(timeline, now, request(extend=extend))
    check(new, timeline, now)
    marks = boundaries(new)
    for name in ("return", "integration"):
        k = [p.name for p in arc.phases].index(name)
        assert marks[name] == pytest.approx(arc.starts[k] + extend, abs=arc.tolerance + 8)
    assert new.length == pytest.approx(arc.length + extend, abs=1.5)
    ends = [m.end for m in rp.schedule()]
    assert ends[2:] == pytest.approx(list(arc.ends[2:] + extend))
    assert ends[:2] == pytest.approx(list(arc.ends[:2]))
    assert "peak" in rp.note


def test_shorten_keeps_the_template_minimum_unless_forced(
    arc: Arc, setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    now = playing_at(timeline, 2000.0).start + 5
    peak = arc.phases[2]
    assert peak.bounds is not None
    rp = Replanner(setlist, candidates)
    rp.replan(timeline, now, request(extend=-1200.0))  # 45 min - 20 would be under 30
    assert rp.schedule()[2].end == pytest.approx(arc.starts[2] + peak.bounds.minimum)
    assert "cannot end sooner" in rp.note
    forced = Replanner(setlist, candidates)
    new = forced.replan(timeline, now, request(extend=-1200.0, force=True))
    assert forced.schedule()[2].end == pytest.approx(arc.ends[2] - 1200.0)
    check(new, timeline, now)
    # A fixed phase (onset, 15 min) cannot be shortened at all without force.
    early = playing_at(timeline, 700.0).start + 5
    with pytest.raises(PlanningError, match=r"onset.*minimum"):
        Replanner(setlist, candidates).replan(timeline, early, request(extend=-120.0))


def test_shorten_below_the_playing_track_cuts_it_at_the_new_boundary(
    arc: Arc, setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    # A peak track with over three minutes left; the peak is asked to end in one.
    cue = next(c for c in timeline.cues if c.phase == "peak" and c.fade_out_at - c.start > 240 + 30)
    now = cue.start + 20
    target_end = now + 60
    rp = Replanner(setlist, candidates)
    new = rp.replan(timeline, now, request(extend=target_end - arc.ends[2], force=True))
    check(new, timeline, now)
    cut = new.cue(cue.key)
    assert cut.cut is not None
    nxt = new.upcoming(now)[0]
    assert nxt.phase == "return"
    xf = arc.phases[2].crossfade
    assert nxt.start == pytest.approx(target_end - xf / 2, abs=0.01)
    assert cut.stop == pytest.approx(nxt.start + xf, abs=0.01)
    assert new.length == pytest.approx(target_end + arc.length - arc.ends[2], abs=1.5)


def test_jump_to_integration_cross_fades_into_it_within_seconds(
    arc: Arc, setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    rp = Replanner(setlist, candidates)
    assert rp.integration_phase == "integration"
    cue = playing_at(timeline, 2500.0)
    now = cue.start + 40
    new = rp.replan(timeline, now, request(jump_to=rp.integration_phase))
    check(new, timeline, now)
    nxt = new.upcoming(now)[0]
    assert nxt.phase == "integration"
    assert nxt.start == pytest.approx(now + LEAD)
    assert new.cue(cue.key).stop == pytest.approx(nxt.start + nxt.fade_in)
    assert {c.phase for c in new.upcoming(now)} == {"integration"}
    integration = arc.phases[-1]
    assert new.length == pytest.approx(nxt.start + integration.duration, abs=1.5)
    assert rp.schedule()[3].end - rp.schedule()[3].start == 0.0  # 'return' skipped
    # No way back, and no made-up phases.
    with pytest.raises(PlanningError, match="already in phase 'integration'"):
        rp.replan(new, now + 120, request(jump_to="peak"))
    with pytest.raises(PlanningError, match="no phase 'closure'"):
        rp.replan(new, now + 120, request(jump_to="closure"))


def test_jump_during_a_crossfade_waits_for_it_to_finish(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    b = playing_at(timeline, 2500.0)
    a = timeline.cues[timeline.index_of(b.key) - 1]
    now = b.start + 3  # both sounding
    new = Replanner(setlist, candidates).replan(timeline, now, request(jump_to="integration"))
    check(new, timeline, now)
    nxt = new.upcoming(now)[0]
    assert nxt.start == pytest.approx(a.stop)
    assert nxt.start - now <= 20


def test_jump_in_an_arc_with_a_phase_after_integration(candidates: Candidates) -> None:
    arc = Catalogue.default().load("integration-practice")
    s = plan(arc, candidates, PlanOptions(seed=5))
    tl = Timeline.from_setlist(s)
    now = playing_at(tl, 700.0).start + 10
    new = Replanner(s, candidates).replan(tl, now, request(jump_to="integration"))
    check(new, tl, now)
    phases = [c.phase for c in new.upcoming(now)]
    assert phases[0] == "integration" and phases[-1] == "closing"
    assert set(phases) == {"integration", "closing"}


# -- what may be chosen ----------------------------------------------------------------


def test_vetoed_and_used_tracks_never_come_back(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    now = playing_at(timeline, 2000.0).start + 5
    planned = {c.track.id for c in timeline.upcoming(now + COMMIT)}
    rng = np.random.default_rng(0)
    vetoed = np.isin(candidates.ids, list(planned)) | (rng.random(len(candidates)) < 0.2)
    rp = Replanner(setlist, candidates, listeners=Listeners(vetoed=vetoed))
    new = rp.replan(timeline, now, request(target_shift=0.05))
    check(new, timeline, now)
    banned = set(candidates.ids[vetoed].tolist())
    fresh = [c for c in new.cues if c.key >= timeline.next_key]
    assert fresh and not {c.track.id for c in fresh} & banned
    # A second re-plan never brings back what the first one scheduled and then dropped
    # only if it has started; everything started stays unique.
    again = rp.replan(new, now + 900, request(target_shift=-0.05))
    check(again, new, now + 900)


def test_a_library_with_nothing_left_raises_and_keeps_the_state(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    only_planned = candidates_from_tracks([e.track for e in setlist.entries])
    rp = Replanner(setlist, only_planned)
    now = playing_at(timeline, 2000.0).start + 5
    with pytest.raises(PlanningError, match="cannot re-plan from"):
        rp.replan(timeline, now, request(target_shift=-0.1, extend=300.0))
    assert rp.target_shift == 0.0
    assert [m.end for m in rp.schedule()] == pytest.approx(list(setlist.arc.ends))


def test_nothing_left_to_replan_at_the_very_end(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    last = timeline.cues[-1]
    with pytest.raises(PlanningError, match="nothing left to re-plan"):
        Replanner(setlist, candidates).replan(timeline, last.start + 10, request(target_shift=-0.1))
    ending = timeline.end(2000.0, 10.0)
    with pytest.raises(PlanningError, match="ending"):
        Replanner(setlist, candidates).replan(ending, 2001.0, request(target_shift=-0.1))


def test_request_validation() -> None:
    with pytest.raises(ValueError, match="finite"):
        ReplanRequest(target_shift=float("nan"))
    with pytest.raises(ValueError, match="within"):
        ReplanRequest(target_shift=1.5)
    with pytest.raises(ValueError, match="at once"):
        ReplanRequest(extend=60.0, jump_to="integration")


# -- substitutes for failed tracks -------------------------------------------------------


def fits_phase(arc: Arc, cue: Cue) -> bool:
    phase = next(p for p in arc.phases if p.name == cue.phase)
    t = cue.track
    if phase.vocals is Vocals.NONE and t.vocals not in ("none", "wordless"):
        return False
    f = t.features
    assert f is not None
    if phase.tempo is not None and f.tempo_bpm is not None and f.tempo_confidence >= 0.3:
        ok = [
            phase.tempo.low * 0.97 <= f.tempo_bpm * m <= phase.tempo.high * 1.03
            for m in (0.5, 1, 2)
        ]
        if not any(ok):
            return False
    return not set(phase.tags.avoid) & set(t.tags)


def test_a_track_failing_mid_play_is_replaced_from_now(
    arc: Arc, setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    failed = playing_at(timeline, 2500.0)
    now = failed.start + 60
    rp = Replanner(setlist, candidates)
    new = rp.substitute(timeline, now, failed.key)
    check(new, failed=failed.key)
    assert failed.track.id in rp.failed
    assert new.cue(failed.key).stop == pytest.approx(now)  # on record, stopped now
    sub = new.upcoming(now - 1e-9)[0]
    assert sub.start == pytest.approx(now)
    assert sub.fade_in <= 2.0
    assert float(sub.gain_at(now + 1.0)) >= 0.8 * sub.gain  # music back within a second
    assert sub.track.id != failed.track.id
    assert sub.phase == failed.phase and fits_phase(arc, sub)
    assert sub.key >= timeline.next_key
    # The next crossfade is where it was.
    nxt = timeline.cues[timeline.index_of(failed.key) + 1]
    assert new.cue(nxt.key).start == nxt.start
    subs = [c for c in new.cues if c.key >= timeline.next_key]
    assert subs[-1].stop == pytest.approx(failed.stop)
    assert abs(np.mean([c.track.features.intensity for c in subs]) - failed.target) <= 0.25  # type: ignore[union-attr]
    # The failed track is never chosen again, by a substitute or a re-plan.
    later = rp.replan(new, now + 30, request(target_shift=0.0))
    assert failed.track.id not in {c.track.id for c in later.cues if c.key != failed.key}


def test_a_track_failing_as_it_fades_in_takes_over_the_rest_of_its_fade(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    failed = playing_at(timeline, 2500.0)
    now = failed.start + 2.0  # the previous track is still fading out
    new = Replanner(setlist, candidates).substitute(timeline, now, failed.key)
    check(new, failed=failed.key)
    sub = new.upcoming(now - 1e-9)[0]
    assert sub.start == pytest.approx(now)
    assert sub.fade_in == pytest.approx(failed.fade_in - 2.0)
    assert sub.track.id != failed.track.id


def test_an_upcoming_failure_is_replaced_in_its_own_slot(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    cur = playing_at(timeline, 2500.0)
    failed = timeline.cues[timeline.index_of(cur.key) + 1]
    now = failed.start - 4.0  # failed while pre-loading
    new = Replanner(setlist, candidates).substitute(timeline, now, failed.key)
    check(new, failed=failed.key)
    assert failed.key not in {c.key for c in new.cues}
    sub = new.upcoming(now)[0]
    assert (sub.start, sub.fade_in) == pytest.approx((failed.start, failed.fade_in))
    assert sub.track.id != failed.track.id
    assert new.cue(cur.key) == cur


def test_with_no_substitute_the_next_track_moves_up(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    only_planned = candidates_from_tracks([e.track for e in setlist.entries])
    rp = Replanner(setlist, only_planned)
    failed = playing_at(timeline, 2500.0)
    now = failed.start + 60
    i = timeline.index_of(failed.key)
    nxt, after = timeline.cues[i + 1], timeline.cues[i + 2]
    new = rp.substitute(timeline, now, failed.key)
    moved = new.cue(nxt.key)
    assert moved.start == pytest.approx(now) and moved.fade_in == SUB_FADE
    assert new.cue(after.key).start == pytest.approx(after.start - (nxt.start - now))
    assert "moved the next track up" in rp.note
    # The last track failing with nothing to replace it: the conductor must be told.
    last = timeline.cues[-1]
    with pytest.raises(PlanningError, match="nothing after it"):
        rp.substitute(timeline, last.start + 60, last.key)
    with pytest.raises(PlanningError, match="no cue"):
        rp.substitute(timeline, now, 9999)


# -- speed --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1000, 10000])
def test_replan_speed(arc: Arc, n: int, capsys: pytest.CaptureFixture[str]) -> None:
    c = candidates_from_tracks(make_library(n, seed=7))
    s = plan(arc, c, PlanOptions(seed=1))
    tl = Timeline.from_setlist(s)
    now = playing_at(tl, 2000.0).start + 5
    figures = {}
    for name, req in (
        ("softer", request(target_shift=-0.1)),
        ("extend", request(extend=300.0)),
        ("jump", request(jump_to="integration")),
    ):
        rp = Replanner(s, c)
        t = time.perf_counter()
        rp.replan(tl, now, req)
        figures[name] = time.perf_counter() - t
    rp = Replanner(s, c)
    t = time.perf_counter()
    rp.substitute(tl, now + 30, tl.current(now + 30).key)  # type: ignore[union-attr]
    figures["substitute"] = time.perf_counter() - t
    assert rp.note.startswith("replaced")
    with capsys.disabled():
        print(
            f"\nreplan from {n} tracks: "
            + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items())
        )
    assert max(figures.values()) < (2.0 if n <= 1000 else 6.0)  # loose: a loaded CI box


def test_restored_state_continues_where_it_was(
    setlist: Setlist, candidates: Candidates, timeline: Timeline
) -> None:
    ends = [*setlist.arc.ends[:2], *(setlist.arc.ends[2:] + 300.0)]
    rp = Replanner(setlist, candidates, target_shift=-0.1, phase_ends=ends)
    assert rp.target_shift == -0.1
    assert rp.schedule()[-1].end == pytest.approx(setlist.arc.length + 300)
    now = playing_at(timeline, 2000.0).start + 5
    new = rp.replan(timeline, now, request())
    assert new.length == pytest.approx(setlist.arc.length + 300, abs=1.5)
    with pytest.raises(ValueError, match="one per phase"):
        Replanner(setlist, candidates, phase_ends=ends[:2])


def test_a_postponed_schedule_holds_the_target_and_moves_the_rest(
    arc: Arc, setlist: Setlist, candidates: Candidates
) -> None:
    rp = Replanner(setlist, candidates)
    rp.postpone(2000.0, 600.0)
    assert [m.end for m in rp.schedule()] == pytest.approx([*arc.ends[:2], *(arc.ends[2:] + 600.0)])
    level = float(arc.intensity_at(2000.0))
    for t in (2000.0, 2300.0, 2600.0):
        assert rp.target_at(t) == pytest.approx(level)
    assert rp.target_at(3000.0) == pytest.approx(float(arc.intensity_at(2400.0)))
    assert rp.target_at(7500.0) == pytest.approx(float(arc.intensity_at(6900.0)))
    with pytest.raises(ValueError, match="positive"):
        rp.postpone(2000.0, -1.0)
