"""The timeline: cues compiled from a plan, fade shapes, and the edits live controls make."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.joins import ramp_db
from setlist.models import SetlistEntry, Track, candidates_from_tracks
from setlist.planner import PlanOptions, plan
from setlist.session import load_arc
from setlist.testing import make_library, make_track
from setlist.timeline import (
    PRELOAD,
    Cue,
    Cut,
    EventKind,
    FadeShape,
    Timeline,
    cues_from_entries,
    db_to_gain,
    fade_curve,
    gain_to_db,
)


@pytest.fixture(scope="module")
def planned():
    arc = load_arc("integration-practice")
    return plan(arc, candidates_from_tracks(make_library(400)), options=PlanOptions(seed=1))


def cue(key: int, start: float, stop: float, **kw: object) -> Cue:
    return Cue(key, make_track(key + 1), kw.pop("phase", "peak"), start, stop, **kw)  # type: ignore[arg-type]


def three() -> Timeline:
    """Three 100 s cues overlapping by 10 s crossfades."""
    return Timeline(
        (
            cue(0, 0, 100, fade_out=10, phase="onset"),
            cue(1, 90, 190, fade_in=10, fade_out=10, phase="onset"),
            cue(2, 180, 280, fade_in=10, phase="peak"),
        ),
        ("onset", "peak"),
    )


# --- fade shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(FadeShape))
def test_fade_curves_run_from_silence_to_full_and_rise(shape: FadeShape) -> None:
    x = np.linspace(0, 1, 101)
    g = fade_curve(x, shape)
    assert g[0] == pytest.approx(0.0, abs=1e-12)
    assert g[-1] == pytest.approx(1.0)
    assert np.all(np.diff(g) >= 0)
    assert fade_curve(-1.0, shape) == 0.0 and fade_curve(2.0, shape) == 1.0


def test_equal_power_crossfade_keeps_power_constant_and_linear_dips() -> None:
    x = np.linspace(0, 1, 101)
    ep_in, ep_out = fade_curve(x, FadeShape.EQUAL_POWER), fade_curve(1 - x, FadeShape.EQUAL_POWER)
    np.testing.assert_allclose(ep_in**2 + ep_out**2, 1.0, atol=1e-12)
    lin = fade_curve(0.5, FadeShape.LINEAR) ** 2 * 2
    assert 10 * np.log10(lin) == pytest.approx(-3.01, abs=0.01)  # power dip of two linear ramps


def test_s_curve_starts_and_lands_gently() -> None:
    s = fade_curve(np.array([0.0, 0.02, 0.98, 1.0]), FadeShape.S_CURVE)
    lin = fade_curve(np.array([0.0, 0.02, 0.98, 1.0]), FadeShape.LINEAR)
    assert s[1] < lin[1] and s[2] > lin[2]


def test_db_gain_round_trip() -> None:
    assert db_to_gain(-6.0206) == pytest.approx(0.5, rel=1e-4)
    assert gain_to_db(db_to_gain(-13.5)) == pytest.approx(-13.5)
    assert gain_to_db(0.0) == float("-inf")


# --- compiling a plan -----------------------------------------------------------------


def test_compiled_gains_match_the_planners_own_crossfade_model(planned) -> None:
    tl = Timeline.from_setlist(planned)
    t = np.arange(0, tl.length, 0.5)
    base = np.array([c.gain for c in tl.cues])[:, None]
    # Each cue's level ramp (join match, phase volume) rides on top of the fades.
    ramps = np.stack([10 ** (ramp_db(e.ramp, t - e.start) / 20) for e in planned.entries])
    np.testing.assert_allclose(tl.gains_at(t) / base, planned.gains_at(t) * ramps, atol=1e-9)


def test_a_cue_carries_its_entrys_ramp_and_ends_on_its_gain() -> None:
    track = Track(id=1, uri="file:///a.flac", title="A", duration=300.0)
    entry = SetlistEntry(
        track=track,
        phase="p",
        start=10.0,
        length=200.0,
        gain_db=-6.0,
        ramp=((0.0, 4.0), (20.0, 4.0), (40.0, 0.0)),
    )
    (cue,) = cues_from_entries([entry])
    g = cue.gain_at(np.array([10.0, 30.0, 40.0, 50.0, 100.0]))
    expected_db = np.array([-2.0, -2.0, -4.0, -6.0, -6.0])
    np.testing.assert_allclose(20 * np.log10(g), expected_db, atol=1e-9)
    assert cue.ramping(45.0) and not cue.ramping(51.0)
    back = Timeline.from_data(Timeline((cue,)).to_data(), {}).cues[0]
    assert back.ramp == cue.ramp


def test_cues_fold_loudness_and_phase_volume_into_one_gain(planned) -> None:
    tl = Timeline.from_setlist(planned)
    for c, e in zip(tl.cues, planned.entries, strict=True):
        assert c.gain == pytest.approx(10 ** ((e.gain_db + e.volume_db) / 20))
        assert (c.start, c.stop, c.offset, c.phase) == (e.start, e.end, e.offset, e.phase)


def test_phases_land_where_the_planner_put_them(planned) -> None:
    tl = Timeline.from_setlist(planned)
    marks = tl.phases()
    assert [m.name for m in marks] == [p.name for p in planned.phases]
    for m, p in zip(marks, planned.phases, strict=True):
        assert m.start == pytest.approx(p.start, abs=0.05)
        assert m.end == pytest.approx(p.end, abs=0.05)
    assert tl.phase_at(planned.phases[1].start + 1).name == planned.phases[1].name
    assert tl.phase_at(10**9).name == planned.phases[-1].name


def test_events_preload_ahead_and_come_in_time_order(planned) -> None:
    tl = Timeline.from_setlist(planned)
    events = tl.events()
    assert [e.time for e in events] == sorted(e.time for e in events)
    for c in tl.cues:
        mine = {e.kind: e.time for e in events if e.key == c.key}
        assert mine[EventKind.LOAD] == c.start - PRELOAD
        assert mine[EventKind.START] == c.start
        assert mine[EventKind.STOP] == c.stop
        assert c.start <= mine[EventKind.FADE_OUT] <= c.stop


def test_a_timeline_rejects_duplicate_keys_and_disorder() -> None:
    with pytest.raises(ValueError, match="unique"):
        Timeline((cue(0, 0, 10), cue(0, 5, 15)))
    with pytest.raises(ValueError, match="order"):
        Timeline((cue(0, 5, 10), cue(1, 0, 15)))
    with pytest.raises(ValueError, match="stop"):
        cue(0, 10, 10)


# --- questions at a time --------------------------------------------------------------


def test_current_next_and_countdown() -> None:
    tl = three()
    assert tl.current(50).key == 0
    assert tl.current(95).key == 1  # in a crossfade, the incoming track is "now"
    assert tl.next_change(50) == 90
    assert tl.next_change(185) is None
    assert tl.current(300) is None
    assert [c.key for c in tl.upcoming(95)] == [2]


# --- edits ----------------------------------------------------------------------------


def test_skip_crossfades_to_the_next_now_and_pulls_the_rest_forward() -> None:
    tl = three().skip(40.0, 3.0)
    a, b, c = tl.cues
    assert a.stop == pytest.approx(43.0)
    assert a.gain_at(40.0) == pytest.approx(1.0)
    assert a.gain_at(41.5) == pytest.approx(np.cos(np.pi / 4))
    assert b.start == pytest.approx(40.0) and b.fade_in == pytest.approx(3.0)
    assert b.offset == 0.0  # the next track starts from its own beginning
    assert c.start == pytest.approx(130.0)  # moved by the 50 s saved
    # power stays level through the skip's crossfade
    t = np.linspace(40, 43, 31)
    power = a.gain_at(t) ** 2 + b.gain_at(t) ** 2
    np.testing.assert_allclose(power, 1.0, atol=1e-9)


def test_skip_during_a_crossfade_moves_past_the_incoming_track() -> None:
    tl = three().skip(95.0, 2.0)
    assert tl.cue(0).stop <= 97.0 and tl.cue(1).stop <= 97.0
    assert tl.cue(2).start == pytest.approx(95.0)


def test_skip_on_the_last_track_fades_out_and_ends() -> None:
    tl = three().skip(200.0, 5.0)
    assert tl.length == pytest.approx(205.0)
    assert tl.cue(2).gain_at(204.99) < 0.01


def test_end_fades_everything_sounding_and_drops_the_rest() -> None:
    tl = three().end(95.0, 10.0)
    assert [c.key for c in tl.cues] == [0, 1]
    assert tl.length == pytest.approx(105.0)
    assert tl.cue(0).stop == pytest.approx(100.0)  # already due to stop before the cut ends
    assert tl.cue(1).stop == pytest.approx(105.0)
    assert tl.cue(1).gain_at(105.0) == 0.0


def test_a_later_cut_never_lengthens_an_earlier_one() -> None:
    tl = three().cut(0, 50.0, 2.0).cut(0, 60.0, 10.0)
    assert tl.cue(0).stop == pytest.approx(52.0)
    assert tl.cue(0).cut == Cut(50.0, 2.0, 100.0)


def test_replace_after_keeps_what_started_and_takes_new_cues() -> None:
    tl = three()
    new = (cue(7, 95, 200, fade_in=5, phase="peak"),)
    out = tl.replace_after(92.0, new)
    assert [c.key for c in out.cues] == [0, 1, 7]
    assert out.next_key == 8


def test_shifted_from_moves_only_later_cues() -> None:
    tl = three().shifted_from(90.0, 60.0)
    assert [c.start for c in tl.cues] == [0, 90, 240]


@settings(max_examples=60, deadline=None)
@given(
    at=st.floats(0, 279),
    fade=st.floats(0.1, 20),
    shape=st.sampled_from(list(FadeShape)),
)
def test_skips_never_leave_silence_or_raise_the_level(at: float, fade: float, shape) -> None:
    base = Timeline(tuple(c.__class__(**{**_fields(c), "shape": shape}) for c in three().cues))
    tl = base.skip(at, fade)
    t = np.arange(at, tl.length - 1e-6, 0.05)
    g = tl.gains_at(t)
    total_power = (g**2).sum(axis=0)
    assert total_power.max() <= 1.0 + 1e-9  # never louder than a single track at full gain
    if tl.upcoming(at - 1e-9) or any(c.start > at for c in base.cues):
        assert total_power.min() > 0.0 or t.size == 0  # music keeps going


def _fields(c: Cue) -> dict[str, object]:
    return {name: getattr(c, name) for name in Cue.__slots__}


def test_a_timeline_survives_plain_data_with_cuts_and_unknown_tracks() -> None:
    import json

    known = make_track(1)
    other = make_track(2)
    tl = Timeline(
        (
            Cue(0, known, "onset", 0.0, 95.0, fade_out=10.0, gain=0.8, cut=Cut(85.0, 10.0, 100.0)),
            Cue(
                7,
                other,
                "peak",
                85.0,
                190.0,
                offset=3.5,
                fade_in=10.0,
                shape=FadeShape.S_CURVE,
                target=0.6,
            ),
        ),
        ("onset", "peak"),
    )
    data = json.loads(json.dumps(tl.to_data()))  # as the session log stores it
    back = Timeline.from_data(data, {known.id: known})
    assert back.phase_order == tl.phase_order
    assert back.cues[0] == tl.cues[0]  # the known track comes back whole (features too)
    assert back.cues[0].track is known
    restored = back.cues[1]
    assert restored.track.features is None  # only its identity was logged
    assert (restored.track.id, restored.track.uri, restored.track.title) == (
        other.id,
        other.uri,
        other.title,
    )
    assert replace(restored, track=other) == tl.cues[1]
    assert np.allclose(back.gains_at([50.0, 90.0, 120.0]), tl.gains_at([50.0, 90.0, 120.0]))
    # A track of the same id at another place is not taken for the logged one.
    moved = replace(known, uri="file:///elsewhere.flac")
    assert Timeline.from_data(data, {known.id: moved}).cues[0].track.uri == known.uri
    for bad in (
        {},
        {"cues": []},
        {"cues": [{"key": 1}]},
        {"cues": [{**data["cues"][0], "stop": -1}]},
    ):
        with pytest.raises(ValueError):
            Timeline.from_data(bad, {})
