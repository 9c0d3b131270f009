"""The planner on hand-made arcs and synthetic libraries: fit, constraints, timing, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from setlist.arcfiles import Catalogue
from setlist.errors import CannotFillPhase, PlanningError
from setlist.models import (
    Arc,
    Curve,
    Keyframe,
    Phase,
    TagRule,
    TempoRange,
    Vocals,
    candidates_from_tracks,
)
from setlist.planner import Listeners, PlanOptions, measure, plan
from setlist.testing import make_candidates, make_library, make_track


def ramp_arc(minutes: float = 40.0, **phase: object) -> Arc:
    half = minutes * 30.0
    return Arc(
        name="ramp",
        phases=(
            Phase("onset", half, Curve((Keyframe(0.2), Keyframe(0.7))), crossfade=8.0, **phase),
            Phase("peak", half, Curve((Keyframe(0.7), Keyframe(0.3))), crossfade=12.0, **phase),
        ),
        tolerance=30.0,
    )


@pytest.fixture(scope="module")
def library() -> list:
    return make_library(1500, seed=4)


def test_plan_follows_the_curve_and_lands_on_time(library: list) -> None:
    arc = Catalogue.default().load("ketamine-im-psychedelic")
    s = plan(arc, candidates_from_tracks(library), PlanOptions(seed=2))
    assert abs(s.length - arc.length) <= 1.0
    assert s.entries[0].start == 0.0
    assert s.metrics.fit_rmse < 0.06
    assert s.metrics.timing_error <= 1.0
    assert s.metrics.boundary_error <= arc.tolerance
    assert s.metrics.violations == ()
    for a, b in zip(s.entries, s.entries[1:], strict=False):
        assert b.start == pytest.approx(a.end - a.fade_out, abs=2e-3)
        assert b.fade_in == a.fade_out
    last = s.entries[-1]
    assert last.fade_out == pytest.approx(min(30.0, last.length / 3))
    assert [p.name for p in s.phases] == [p.name for p in arc.phases]
    # phases in arc order along the entries
    order = [p.name for p in arc.phases]
    seen = [order.index(e.phase) for e in s.entries]
    assert seen == sorted(seen)


def test_planner_beats_greedy_and_random_on_the_same_library(library: list) -> None:
    arc = Catalogue.default().load("ketamine-im-psychedelic")
    c = candidates_from_tracks(library)
    beam = plan(arc, c, PlanOptions(seed=1)).metrics
    greedy = plan(arc, c, PlanOptions(seed=1, search="greedy")).metrics
    rand = plan(arc, c, PlanOptions(seed=1, search="random")).metrics
    assert beam.fit_rmse <= 0.5 * greedy.fit_rmse
    assert beam.fit_rmse < rand.fit_rmse
    assert beam.worst_transition < greedy.worst_transition


def test_same_seed_same_plan_other_seed_other_plan(library: list) -> None:
    arc = ramp_arc()
    c = candidates_from_tracks(library)
    ids = [[e.track.id for e in plan(arc, c, PlanOptions(seed=k)).entries] for k in (5, 5, 6)]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


def test_no_repeats_and_artist_gap() -> None:
    tracks = make_library(300, seed=9, artists=12)
    s = plan(ramp_arc(60), candidates_from_tracks(tracks), PlanOptions(seed=3, artist_gap=4))
    ids = [e.track.id for e in s.entries]
    assert len(ids) == len(set(ids))
    artists = [e.track.artist for e in s.entries]
    for i in range(len(artists)):
        assert artists[i] not in artists[max(0, i - 4) : i]


def test_vocals_none_and_vetoes_are_hard(library: list) -> None:
    arc = ramp_arc(vocals=Vocals.NONE)
    c = candidates_from_tracks(library)
    vetoed = np.zeros(len(c), dtype=bool)
    vetoed[::3] = True
    s = plan(arc, c, PlanOptions(seed=1), Listeners(vetoed=vetoed))
    rows = {int(i): n for n, i in enumerate(c.ids)}
    for e in s.entries:
        assert e.track.vocals in ("none", "wordless")
        assert not vetoed[rows[e.track.id]]


def test_tempo_range_with_half_and_double_time() -> None:
    tracks = [
        make_track(i, intensity=0.5, duration=300, tempo=t, artist=f"A{i}")
        for i, t in enumerate([100.0] * 30 + [140.0] * 10 + [70.0] * 10, start=1)
    ]
    arc = Arc("t", (Phase("one", 1800.0, Curve.constant(0.5), tempo=TempoRange(60, 80)),))
    s = plan(arc, candidates_from_tracks(tracks), PlanOptions(seed=0))
    assert {e.track.features.tempo_bpm for e in s.entries} <= {70.0, 140.0}


def test_gain_normalises_but_never_clips() -> None:
    quiet = make_track(1, loudness=-30.0, peak=-2.0, duration=400, intensity=0.5)
    loud = make_track(2, loudness=-12.0, peak=-0.5, duration=400, intensity=0.5, artist="B")
    arc = Arc("g", (Phase("one", 700.0, Curve.constant(0.5)),))
    s = plan(arc, candidates_from_tracks([quiet, loud]), PlanOptions(artist_gap=0))
    gains = {e.track.id: e.gain_db for e in s.entries}
    assert gains[1] == pytest.approx(1.0)  # capped by the -1 dBFS ceiling, not +10
    assert gains[2] == pytest.approx(-8.0)  # to the -20 LUFS target


def test_preferred_tags_win_when_fit_is_equal() -> None:
    tracks = [
        make_track(i, intensity=0.4, duration=300, artist=f"A{i}", tags=("calm",) if i % 2 else ())
        for i in range(1, 41)
    ]
    arc = Arc("p", (Phase("one", 1800.0, Curve.constant(0.4), tags=TagRule(prefer=("calm",))),))
    s = plan(arc, candidates_from_tracks(tracks), PlanOptions(seed=0))
    assert all("calm" in e.track.tags for e in s.entries)
    assert any(p.name == "preferences" and p.cost < 0 for p in s.entries[0].penalties)


def test_explanations_add_up(library: list) -> None:
    s = plan(ramp_arc(), candidates_from_tracks(library), PlanOptions(seed=1))
    for e in s.entries:
        names = {p.name for p in e.penalties}
        assert "fit" in names
        assert e.cost == pytest.approx(sum(p.cost for p in e.penalties))


def test_session_end_is_a_fade_and_cut_tracks_are_marked() -> None:
    tracks = [make_track(i, duration=700, intensity=0.5, artist=f"A{i}") for i in range(1, 20)]
    arc = Arc("e", (Phase("one", 1000.0, Curve.constant(0.5)),))
    s = plan(arc, candidates_from_tracks(tracks), PlanOptions(seed=0))
    assert s.length == pytest.approx(1000.0, abs=1.0)
    last = s.entries[-1]
    assert last.cut and last.length < 700 and last.fade_out == 30.0


def test_measure_matches_the_plan(library: list) -> None:
    s = plan(ramp_arc(), candidates_from_tracks(library), PlanOptions(seed=1))
    assert measure(s) == s.metrics


# -- when it cannot be done --------------------------------------------------------------
def test_cannot_fill_names_the_phase_and_the_dry_constraint() -> None:
    tracks = [
        make_track(i, duration=300, vocals="lyrics" if i > 3 else "none", artist=f"A{i}")
        for i in range(1, 60)
    ]
    arc = Arc(
        "v",
        (
            Phase("onset", 900.0, Curve.constant(0.5)),
            Phase("peak", 1800.0, Curve.constant(0.5), vocals=Vocals.NONE),
        ),
    )
    with pytest.raises(CannotFillPhase) as info:
        plan(arc, candidates_from_tracks(tracks))
    message = str(info.value)
    assert "phase 'peak'" in message and "'vocals: none'" in message
    assert "3 of 59 tracks" in message and "59 tracks meet the other constraints" in message
    assert info.value.hint and "music" in info.value.hint


def test_cannot_fill_when_vetoes_leave_too_little() -> None:
    c = make_candidates(200, seed=2)
    vetoed = np.ones(len(c), dtype=bool)
    vetoed[:3] = False
    with pytest.raises(CannotFillPhase, match="listener vetoes"):
        plan(ramp_arc(), c, listeners=Listeners(vetoed=vetoed))


def test_no_candidates_is_a_planning_error() -> None:
    c = candidates_from_tracks([])
    with pytest.raises(PlanningError, match="no analysed tracks"):
        plan(ramp_arc(), c)


def test_a_library_too_short_for_the_session() -> None:
    tracks = [make_track(i, duration=200, artist=f"A{i}") for i in range(1, 6)]
    with pytest.raises(CannotFillPhase) as info:
        plan(ramp_arc(60), candidates_from_tracks(tracks))
    assert "onset" in str(info.value)


def test_listener_likes_and_underserved_partner() -> None:
    tracks = make_library(400, seed=1)
    c = candidates_from_tracks(tracks)
    liked = np.zeros((2, len(c)), dtype=bool)
    liked[0, :200] = True  # A likes half the library, B a handful
    liked[1, 390:] = True
    s = plan(ramp_arc(), c, PlanOptions(seed=0), Listeners(liked=liked, names=("A", "B")))
    assert any(note.startswith("B's likes fill") for note in s.notes)


def test_phase_volume_and_listener_cap() -> None:
    c = make_candidates(300, seed=3)
    arc = ramp_arc()
    arc = replace(arc, phases=(replace(arc.phases[0], volume_db=-6.0), arc.phases[1]))
    s = plan(arc, c, PlanOptions(seed=0), Listeners(max_volume_db=-3.0))
    for e in s.entries:
        assert e.volume_db == (-6.0 if e.phase == "onset" else -3.0)


def demo_like_library() -> list:
    """The default demo library's planned tracks (its ground truth), as analysed tracks:
    the same durations, intensities, tempi and voices `make demo` scans, without audio."""
    from setlist.library.demo import plan_demo_tracks

    tracks = []
    for i, d in enumerate(plan_demo_tracks(60, 0), start=1):
        t = make_track(
            i,
            intensity=d.intensity,
            duration=d.duration,
            tempo=float(d.tempo) if d.tempo else None,
            vocals="lyrics" if d.has_voice else "none",
            artist=d.artist,
            title=d.title,
            loudness=d.lufs,
            slope=d.intensity_end - d.intensity_start,
        )
        tracks.append(t)
    return tracks


@pytest.mark.parametrize("name", [p.stem for p in Catalogue.default().files()])
def test_every_shipped_arc_builds_or_says_why(name: str, library: list) -> None:
    arc = Catalogue.default().load(name)
    s = plan(arc, candidates_from_tracks(library), PlanOptions(seed=1))
    assert abs(s.length - arc.length) <= 1.0 and s.metrics.violations == ()
    try:
        small = plan(arc, candidates_from_tracks(demo_like_library()), PlanOptions(seed=1))
    except CannotFillPhase as exc:
        assert exc.hint and "phase '" in exc.message
    else:
        assert abs(small.length - arc.length) <= 1.0
