"""The conductor in virtual time: cues, fades, controls and faults against a recording player.

`FakeClock` makes whole sessions run instantly; `FakePlayer` records every call with its
virtual time, so each test can check *when* the room would have heard what, against the
timeline that is the single source of truth.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from setlist.conductor import (
    MASTER_RAMP,
    MAX_DB,
    PAUSE_FADE,
    STALL,
    Conductor,
)
from setlist.controls import Action, Command, Status
from setlist.errors import PlanningError, PlaybackError
from setlist.players.base import MonotonicClock, VoiceState
from setlist.replan import ReplanRequest
from setlist.session import load_arc
from setlist.sessionlog import SessionLog, read_log
from setlist.testing import FakeClock, FakePlayer, make_track
from setlist.timeline import PRELOAD, Cue, Timeline, db_to_gain

T0 = 1000.0  # the fake clock's time at session time 0


def cue(key: int, start: float, stop: float, **kw: object) -> Cue:
    return Cue(key, make_track(key + 1), kw.pop("phase", "peak"), start, stop, **kw)  # type: ignore[arg-type]


def three() -> Timeline:
    """Three 100 s cues overlapping by 10 s crossfades, with different loudness gains."""
    return Timeline(
        (
            cue(0, 0, 100, fade_out=10, phase="onset", gain=0.8),
            cue(1, 90, 190, fade_in=10, fade_out=10, phase="onset", gain=1.2),
            cue(2, 180, 280, fade_in=10, phase="peak"),
        ),
        ("onset", "peak"),
    )


def uri(key: int) -> str:
    return make_track(key + 1).uri


class Session:
    """A conductor on a fake clock and player, plus what it showed after each tick."""

    def __init__(self, timeline: Timeline | None = None, **kw: object) -> None:
        player_kw = {k: kw.pop(k) for k in list(kw) if k in FAKE_PLAYER_OPTIONS}
        self.clock = FakeClock(T0)
        self.player = FakePlayer(self.clock, **player_kw)  # type: ignore[arg-type]
        self.conductor = Conductor(timeline or three(), self.player, self.clock, **kw)  # type: ignore[arg-type]
        self.seen: list[tuple[float, Status]] = []
        self.conductor.on_tick = lambda s: self.seen.append((self.clock.now(), s))

    def until(self, session_time: float) -> None:
        """Run until the session clock reaches `session_time` (not while paused)."""
        c = self.conductor
        while not c.ended and c.session_time < session_time - 1e-9:
            c.run_for(min(1.0, session_time - c.session_time))

    def submit(self, action: Action, amount: float | None = None) -> float:
        self.conductor.submit(Command(action, amount, "test"))
        return self.clock.now()

    def applied_after(self, since: float, test) -> float:  # type: ignore[no-untyped-def]
        """Clock seconds from `since` to the first tick whose status passes `test`."""
        for at, status in self.seen:
            if at >= since and test(status):
                return at - since
        raise AssertionError("never applied")

    def session_of(self, clock_time: float) -> float:
        return clock_time - T0


FAKE_PLAYER_OPTIONS = ("fail_open", "fail_after", "stall_after", "end_after", "load_time")


def assert_no_gap(s: Session, a: float, b: float, fault: float | None = None) -> None:
    """Some voice is audible (gain > 0, not released) at every tick in session [a, b],
    except within 1 s after a `fault` (the budget for replacing a failed voice)."""
    live: dict[int, float] = {}
    audible_ticks = {}
    for call in s.player.calls:
        if call.method in ("start", "set_gain"):
            live[call.key] = float(call.args[0])  # type: ignore[index, arg-type]
        elif call.method in ("release", "pause"):
            live.pop(call.key, None)  # type: ignore[arg-type]
        audible_ticks[call.time] = any(g > 1e-4 for g in live.values())
    for at, ok in audible_ticks.items():
        x = s.session_of(at)
        if a <= x <= b and not (fault is not None and fault <= x <= fault + 1):
            assert ok, f"silence at session {s.session_of(at):.2f}"


# -- cues, fades, preload ------------------------------------------------------------------


def test_fades_follow_the_timeline_at_20_hz_and_starts_are_on_time() -> None:
    s = Session()
    tl = three()
    s.conductor.run()
    assert s.conductor.ended and s.conductor.status().message.endswith("the plan finished")
    for c in tl.cues:
        gains = s.player.gains(c.key)
        times = np.array([s.session_of(t) for t, _ in gains])
        values = np.array([g for _, g in gains])
        # Every gain sent is exactly what the timeline says at that tick's time.
        np.testing.assert_allclose(values, tl.gains_at(times)[c.key], atol=1e-9)
        assert s.player.started_at(c.key) == pytest.approx(T0 + c.start, abs=1e-9)
        release = s.player.calls_to("release", c.key)
        assert len(release) == 1 and s.session_of(release[0].time) == pytest.approx(c.stop)
    # During each crossfade, both voices get a new gain at least 20 times a second.
    for out_key, in_key, a, b in ((0, 1, 90, 100), (1, 2, 180, 190)):
        for key in (out_key, in_key):
            times = [s.session_of(t) for t, _ in s.player.gains(key) if a <= s.session_of(t) <= b]
            steps = np.diff([a, *times, b])
            assert steps.max() <= 0.05 + 1e-9, (key, steps.max())
            assert len(times) >= 20 * (b - a)
        # Outside fades no needless calls: the held section of cue 1 sends nothing.
        held = [t for t, _ in s.player.gains(1) if 101 < s.session_of(t) < 179]
        assert held == []
    assert [round(x.late, 9) for x in s.conductor.starts] == [0.0, 0.0, 0.0]
    assert_no_gap(s, 0, 279.9)


def test_voices_are_opened_five_seconds_ahead_at_their_offset() -> None:
    tl = Timeline((cue(0, 0, 60, fade_out=6), cue(1, 54, 200, fade_in=6, offset=12.5)))
    s = Session(tl)
    s.until(100)
    first, second = s.player.opened(0), s.player.opened(1)
    assert first is not None and second is not None
    assert s.session_of(first.time) == 0.0 and first.args == (uri(0), 0.0)
    assert s.session_of(second.time) == pytest.approx(54 - PRELOAD)
    assert second.args == (uri(1), 12.5)
    assert s.player.voices[1].state is VoiceState.PLAYING
    assert s.player.position(1) == pytest.approx(12.5 + 100 - 54)


def test_start_at_mid_track_opens_every_sounding_voice_at_its_file_offset() -> None:
    tl = replace(three(), cues=tuple(replace(c, offset=3.0) for c in three().cues))
    s = Session(tl, start_at=95.0)
    s.conductor.tick()
    opens = {c.key: c.args for c in s.player.calls_to("open")}
    assert opens == {0: (uri(0), 98.0), 1: (uri(1), 8.0)}  # offset + (95 - start)
    for key in (0, 1):
        assert s.player.gains(key)[0][1] == pytest.approx(float(tl.cue(key).gain_at(95.0)))
    assert s.conductor.status().session_time == pytest.approx(95.0)
    assert [x.late for x in s.conductor.starts] == [0.0, 0.0]
    s.conductor.run()
    assert s.player.started_at(2) == pytest.approx(T0 + 180 - 95)


# -- pause, resume, volume ---------------------------------------------------------------


def test_pause_fades_down_then_freezes_the_session_clock_and_resume_fades_back() -> None:
    s = Session()
    s.until(30)
    sent = s.submit(Action.PAUSE)
    s.conductor.run_for(PAUSE_FADE + 0.5)
    paused = s.player.calls_to("pause", 0)
    assert len(paused) == 1
    assert s.clock.now() - sent > PAUSE_FADE
    fade = [(t, g) for t, g in s.player.gains(0) if sent <= t <= paused[0].time]
    values = [g for _, g in fade]
    assert values[0] < 0.8 and values[-1] == 0.0  # fading from the first tick after submit
    assert np.all(np.diff(values) <= 1e-12) and len(values) >= 20 * PAUSE_FADE
    assert fade[0][0] - sent <= 0.2
    frozen = s.conductor.session_time
    assert frozen == pytest.approx(30 + PAUSE_FADE, abs=0.15)
    s.conductor.run_for(120)  # two minutes of pause: no time passes in the session
    assert s.conductor.session_time == frozen and s.conductor.status().paused
    assert s.player.opened(1) is None  # the next cue's preload waits too
    resumed = s.submit(Action.RESUME)
    s.conductor.run_for(PAUSE_FADE + 0.5)
    assert len(s.player.calls_to("resume", 0)) == 1
    up = [g for t, g in s.player.gains(0) if t >= resumed]
    assert up[0] == 0.0 and up[-1] == pytest.approx(0.8)
    assert np.all(np.diff(up) >= -1e-12)
    assert not s.conductor.status().paused
    s.conductor.run()
    # The rest of the plan moved by exactly the time spent paused.
    held = resumed - paused[0].time
    assert s.player.started_at(1) == pytest.approx(T0 + 90 + held, abs=0.15)
    kinds = [c.method for c in s.player.calls if c.key == 0 and c.method != "set_gain"]
    assert kinds == ["open", "start", "pause", "resume", "release"]


def test_toggle_pauses_and_resumes() -> None:
    s = Session()
    s.until(10)
    s.submit(Action.TOGGLE)
    s.conductor.run_for(3)
    assert s.conductor.status().paused and s.player.voices[0].state is VoiceState.PAUSED
    s.submit(Action.TOGGLE)
    s.conductor.run_for(3)
    assert not s.conductor.status().paused and s.player.voices[0].state is VoiceState.PLAYING


def test_master_volume_ramps_and_is_clamped() -> None:
    s = Session()
    s.until(30)
    sent = s.submit(Action.LOUDER, 6)
    s.conductor.run_for(1.0)
    ramp = [(t - sent, g) for t, g in s.player.gains(0) if t >= sent]
    values = np.array([g for _, g in ramp])
    assert values[-1] == pytest.approx(0.8 * db_to_gain(6.0))
    assert ramp[-1][0] <= MASTER_RAMP + 0.05  # done within the ramp time
    assert len(values) >= 10 and np.all(np.diff(values) > 0)
    steps_db = np.diff(20 * np.log10(values))
    assert steps_db.max() < 1.0  # no audible jump: 6 dB spread over ~12 steps
    assert s.conductor.status().master_db == 6.0
    s.submit(Action.LOUDER)
    s.conductor.run_for(1.0)
    assert s.conductor.status().master_db == MAX_DB and "maximum" in s.conductor.status().message
    s.submit(Action.QUIETER, 100)
    s.conductor.run_for(1.0)
    assert s.conductor.status().master_db == -40.0
    assert s.player.gains(0)[-1][1] == pytest.approx(0.8 * db_to_gain(-40.0))
    # Master volume multiplies every voice, the next one too.
    s.until(95)
    assert s.player.gains(1)[-1][1] == pytest.approx(
        float(three().cue(1).gain_at(s.conductor.session_time)) * db_to_gain(-40), rel=1e-6
    )


def test_master_db_given_at_start_applies_from_the_first_note() -> None:
    s = Session(master_db=-6.0)
    s.until(150)
    assert s.player.gains(1)[-1][1] == pytest.approx(1.2 * db_to_gain(-6.0))


# -- skip, fade-out, stop ------------------------------------------------------------------


def test_skip_crossfades_to_the_next_track_now() -> None:
    s = Session()
    s.until(30)
    sent = s.submit(Action.SKIP)
    s.conductor.run_for(6)
    started = s.player.started_at(1)
    assert started is not None and started - sent <= 0.2
    at = s.session_of(started)
    released = s.player.calls_to("release", 0)[0]
    assert s.session_of(released.time) == pytest.approx(at + 4.0, abs=0.05)
    tl = s.conductor.timeline
    assert tl.length == pytest.approx(280 - (90 - at))
    for key in (0, 1):
        gains = [(s.session_of(t), g) for t, g in s.player.gains(key) if t >= started]
        assert gains, key
        expected = [float(tl.cue(key).gain_at(x)) for x, _ in gains]
        np.testing.assert_allclose([g for _, g in gains], expected, atol=1e-9)
    assert "skipped to 'Track 2'" in s.conductor.status().message
    assert_no_gap(s, 0, 60)


def test_skip_takes_the_phase_crossfade_when_shorter() -> None:
    arc = load_arc("integration-practice")
    name = arc.phases[0].name
    tl = Timeline((cue(0, 0, 100, phase=name), cue(1, 100, 200, phase=name)))
    arc = replace(arc, phases=(replace(arc.phases[0], crossfade=2.0), *arc.phases[1:]))
    s = Session(tl, arc=arc)
    s.until(30)
    s.submit(Action.SKIP)
    s.conductor.run_for(5)
    released = s.player.calls_to("release", 0)[0]
    assert s.session_of(released.time) == pytest.approx(32.0, abs=0.1)


def test_skip_on_the_last_track_fades_out_and_ends() -> None:
    s = Session()
    s.until(200)
    s.submit(Action.SKIP)
    s.conductor.run()
    assert s.conductor.session_time == pytest.approx(204, abs=0.2)
    assert "skipped past the last track" in s.conductor.status().message


def test_fade_out_ends_the_session_after_its_fade() -> None:
    s = Session()
    s.until(95)  # mid-crossfade: both voices fade out together
    sent = s.submit(Action.FADE_OUT, 10)
    s.conductor.run()
    assert s.conductor.ended and s.conductor.status().fading_out
    assert s.conductor.session_time == pytest.approx(95 + 10, abs=0.2)
    assert "faded out (test)" in s.conductor.status().message
    tl = s.conductor.timeline
    for key in (0, 1):
        after = [(s.session_of(t), g) for t, g in s.player.gains(key) if t >= sent]
        expected = [float(tl.cue(key).gain_at(x)) for x, _ in after]
        np.testing.assert_allclose([g for _, g in after], expected, atol=1e-9)
        assert after[-1][1] < 0.01 and after[-1][0] > tl.cue(key).stop - 0.1
        assert tl.cue(key).stop <= 105 + 1e-9
    assert s.player.opened(2) is None


def test_request_stop_is_a_flag_the_next_tick_turns_into_a_fade_out() -> None:
    s = Session()
    s.until(40)
    s.conductor.request_stop(4.0)
    assert s.conductor.status().fading_out is False  # nothing happens until a tick
    s.conductor.run()
    assert s.conductor.session_time == pytest.approx(44, abs=0.2)
    assert s.conductor.status().message == "session ended: faded out (signal)"


def test_stop_while_paused_ends_at_once() -> None:
    s = Session()
    s.until(40)
    s.submit(Action.PAUSE)
    s.conductor.run_for(5)
    frozen = s.conductor.session_time
    s.conductor.request_stop(4.0)
    s.conductor.run_for(0.2)
    assert s.conductor.ended and s.conductor.session_time == frozen


def test_every_control_applies_within_200_ms_of_submit() -> None:
    s = Session()
    checks = [
        (Action.LOUDER, lambda st: st.master_db == 2.0),
        (Action.QUIETER, lambda st: st.master_db == 0.0),
        (Action.SOFTER, lambda st: "softer is unavailable" in st.message),
        (Action.PAUSE, lambda st: st.paused),
        (Action.RESUME, lambda st: not st.paused),
        (Action.SKIP, lambda st: st.now is not None and st.now.key == 1),
        (Action.FADE_OUT, lambda st: st.fading_out),
    ]
    sent: list[float] = []
    seen = s.conductor.on_tick

    def submit_right_after_a_tick(status: Status) -> None:
        # The worst moment: just after a tick, as the loop goes to sleep (idle or not).
        seen(status)  # type: ignore[misc]
        due = T0 + 20.0 + 3.37 * len(sent)
        if len(sent) < len(checks) and s.clock.now() >= due:
            s.conductor.submit(Command(checks[len(sent)][0], origin="test"))
            sent.append(s.clock.now())

    s.conductor.on_tick = submit_right_after_a_tick
    s.conductor.run_for(20 + 3.37 * len(checks) + 5)
    assert len(sent) == len(checks)
    for (action, test), at in zip(checks, sent, strict=True):
        assert 0 < s.applied_after(at + 1e-9, test) <= 0.2, action


# -- re-planning controls --------------------------------------------------------------------


class FakeReplanner:
    """Records requests; softer/stronger shift the later cues' targets, extend shifts them."""

    def __init__(self, *, fail: bool = False, substitute_fails: bool = False) -> None:
        self.requests: list[tuple[float, ReplanRequest]] = []
        self.substituted: list[tuple[float, int]] = []
        self.fail = fail
        self.substitute_fails = substitute_fails
        self.target_shift = 0.0
        self.note = ""
        self.integration_phase = "peak"

    def replan(self, timeline: Timeline, now: float, request: ReplanRequest) -> Timeline:
        self.requests.append((now, request))
        if self.fail:
            raise PlanningError("the library ran dry")
        self.target_shift += request.target_shift
        self.note = f"re-planned ({request.reason})"
        return timeline.shifted_from(now, request.extend)

    def substitute(self, timeline: Timeline, now: float, key: int) -> Timeline:
        self.substituted.append((now, key))
        if self.substitute_fails:
            raise PlanningError("nothing fits")
        old = timeline.cue(key)
        start = max(old.start, now)
        new = Cue(
            timeline.next_key,
            make_track(99, title="Substitute"),
            old.phase,
            start,
            old.stop,
            fade_in=1.5 if old.start <= now else old.fade_in,
            fade_out=old.fade_out,
        )
        kept = timeline.cut(key, now, 0.0) if old.start <= now else timeline
        kept = kept.with_cues(c for c in kept.cues if c.key != key or old.start <= now)
        self.note = "replaced with 'Substitute'"
        return kept.with_cues([*kept.cues, new])

    def target_at(self, t: float) -> float:
        return 0.5 + self.target_shift


def test_replanning_controls_ask_the_replanner_with_the_right_request() -> None:
    r = FakeReplanner()
    s = Session(replanner=r)
    s.until(20)
    for action, amount in (
        (Action.SOFTER, None),
        (Action.STRONGER, 0.3),
        (Action.EXTEND, 5),
        (Action.SHORTEN, 2),
        (Action.INTEGRATION, None),
    ):
        s.submit(action, amount)
        s.conductor.run_for(0.2)
    requests = [req for _, req in r.requests]
    assert requests[0].target_shift == pytest.approx(-0.1)
    assert requests[1].target_shift == pytest.approx(0.3)
    assert requests[2].extend == 300 and requests[3].extend == -120
    assert requests[4].jump_to == "peak"
    assert all(now == pytest.approx(20, abs=1.0) for now, _ in r.requests)
    status = s.conductor.status()
    assert status.target_shift == pytest.approx(0.2)
    assert status.target_intensity == pytest.approx(0.7)
    assert status.message == "integration: re-planned (integration)"
    assert s.conductor.timeline.cue(1).start == pytest.approx(90 + 300 - 120)


def test_a_refused_replan_leaves_the_plan_and_says_why() -> None:
    s = Session(replanner=FakeReplanner(fail=True))
    s.until(20)
    s.submit(Action.EXTEND)
    s.conductor.run_for(0.2)
    assert s.conductor.status().message == "extend not possible: the library ran dry"
    assert s.conductor.timeline == three()


def test_without_a_replanner_replanning_controls_answer_with_a_message(tmp_path: Path) -> None:
    log = SessionLog.create(tmp_path / "s.jsonl", {"setlist": "x"})
    s = Session(log=log)
    s.until(20)
    for action in (Action.SOFTER, Action.STRONGER, Action.EXTEND, Action.SHORTEN):
        s.submit(action)
        s.conductor.run_for(0.2)
        message = s.conductor.status().message
        assert message.startswith(f"{action.value} is unavailable: no music library"), message
    assert s.conductor.timeline == three()
    log.close()
    controls = [e for e in read_log(tmp_path / "s.jsonl") if e["kind"] == "control"]
    assert [c["action"] for c in controls] == ["softer", "stronger", "extend", "shorten"]
    assert all("unavailable" in c["effect"] and c["origin"] == "test" for c in controls)


def test_integration_without_a_replanner_jumps_to_the_closing_tracks() -> None:
    tl = Timeline(
        (
            cue(0, 0, 100, fade_out=10, phase="onset"),
            cue(1, 90, 190, fade_in=10, fade_out=10, phase="onset"),
            cue(2, 180, 280, fade_in=10, phase="integration"),
        ),
        ("onset", "integration"),
    )
    s = Session(tl)
    s.until(20)
    s.submit(Action.INTEGRATION)
    s.conductor.run_for(5)
    assert s.player.opened(1) is None  # the rest of the onset was dropped
    assert s.session_of(s.player.started_at(2) or 0) == pytest.approx(20, abs=0.15)
    assert s.conductor.status().phase == "integration"


# -- never silence by accident -----------------------------------------------------------


def test_missing_file_is_noticed_at_preload_and_the_gap_closed_before_its_start() -> None:
    s = Session(fail_open={uri(1)})
    s.conductor.run()
    # Cue 1 failed when it was opened, 5 s ahead; cue 2 took its slot and its fade-in.
    assert s.session_of(s.player.opened(2).time) == pytest.approx(85)  # type: ignore[union-attr]
    assert s.session_of(s.player.started_at(2) or 0) == pytest.approx(90)
    assert s.conductor.session_time == pytest.approx(190)
    assert_no_gap(s, 0, 189.9)
    assert "moved 'Track 3' up" in s.conductor.status().message or s.conductor.ended


def test_missing_file_is_substituted_by_the_replanner(tmp_path: Path) -> None:
    r = FakeReplanner()
    log = SessionLog.create(tmp_path / "s.jsonl", {"setlist": "x"})
    s = Session(fail_open={uri(1)}, replanner=r, log=log)
    s.until(120)
    assert [k for _, k in r.substituted] == [1]
    assert r.substituted[0][0] == pytest.approx(85.0)
    assert s.session_of(s.player.started_at(3) or 0) == pytest.approx(90)
    assert s.player.voices[3].uri == make_track(99).uri
    log.close()
    fault = next(e for e in read_log(tmp_path / "s.jsonl") if e["kind"] == "fault")
    assert fault["key"] == 1 and "file not found" in fault["reason"]
    assert fault["action"] == "replaced with 'Substitute'" and fault["cues"][0]["key"] == 3


def test_mid_stream_failure_is_replaced_within_a_second() -> None:
    s = Session(fail_after={uri(0): 30.0})
    s.until(60)
    started = s.player.started_at(1)
    assert started is not None and 30 <= s.session_of(started) <= 31
    assert s.player.calls_to("release", 0)
    assert_no_gap(s, 0, 59, fault=30)
    assert "failed" in s.conductor.status().message or s.conductor.status().now.key == 1  # type: ignore[union-attr]


def test_mid_stream_failure_with_replanner_gets_a_substitute() -> None:
    r = FakeReplanner()
    s = Session(fail_after={uri(1): 20.0}, replanner=r)
    s.until(150)
    assert [k for _, k in r.substituted] == [1]
    now, _ = r.substituted[0]
    assert now == pytest.approx(110, abs=0.15)
    assert s.session_of(s.player.started_at(3) or 0) == pytest.approx(now)
    assert_no_gap(s, 0, 149, fault=110)


def test_a_stalled_player_is_noticed_by_the_watchdog_and_replaced() -> None:
    s = Session(stall_after={uri(0): 30.0})
    s.until(60)
    started = s.player.started_at(1)
    assert started is not None
    # Stalled at 30 s; noticed once its position has not moved for STALL seconds; the
    # replacement starts on that same tick (well within 1 s).
    assert 30 + STALL <= s.session_of(started) <= 30 + STALL + 1.0
    assert "stalled" in s.conductor.status().message


def test_a_file_that_ends_early_is_replaced() -> None:
    s = Session(end_after={uri(0): 50.0})
    s.until(60)
    assert 50 <= s.session_of(s.player.started_at(1) or 0) <= 51


def test_a_file_ending_in_its_last_seconds_is_not_a_fault() -> None:
    s = Session(end_after={uri(2): 99.0})
    s.conductor.run()
    assert s.conductor.status().message == "session ended: the plan finished"


def test_nothing_left_to_play_ends_the_session_with_the_reason(tmp_path: Path) -> None:
    log = SessionLog.create(tmp_path / "s.jsonl", {"setlist": "x"})
    s = Session(Timeline((cue(0, 0, 300),)), fail_after={uri(0): 30.0}, log=log)
    s.conductor.run()
    assert s.conductor.session_time == pytest.approx(30, abs=0.2)
    assert "nothing left to play" in s.conductor.status().message
    log.close()
    events = read_log(tmp_path / "s.jsonl")
    assert events[-1]["kind"] == "session-end" and "nothing left" in events[-1]["reason"]
    fault = next(e for e in events if e["kind"] == "fault")
    assert "nothing left to play" in fault["action"]


def test_last_track_missing_lets_the_one_playing_finish() -> None:
    s = Session(fail_open={uri(2)})
    s.conductor.run()
    assert s.conductor.session_time == pytest.approx(190)
    assert s.conductor.status().message == "session ended: the plan finished"


def test_substitute_refused_falls_back_to_the_next_track() -> None:
    r = FakeReplanner(substitute_fails=True)
    s = Session(fail_after={uri(0): 30.0}, replanner=r)
    s.until(40)
    assert r.substituted and 30 <= s.session_of(s.player.started_at(1) or 0) <= 31
    assert "no substitute (nothing fits)" in s.conductor.status().message


def test_a_slow_loading_voice_is_not_mistaken_for_a_stall() -> None:
    s = Session(load_time=1.0)
    s.conductor.run()
    assert s.conductor.status().message == "session ended: the plan finished"
    assert len(s.player.calls_to("open")) == 3


# -- status ------------------------------------------------------------------------------------


def test_status_shows_phase_tracks_and_countdown() -> None:
    arc = load_arc("integration-practice")
    s = Session(arc=arc)
    s.until(50)
    st = s.conductor.status()
    assert st.phase == "onset" and st.next_phase == "peak"
    assert st.phase_left == pytest.approx(185 - 50, abs=0.15)  # the boundary sits mid-crossfade
    assert st.now is not None and st.now.key == 0 and st.now.position == pytest.approx(50, abs=0.15)
    assert st.next is not None and st.next.key == 1
    assert st.next_change_in == pytest.approx(40, abs=0.15)
    assert st.target_intensity == pytest.approx(arc.intensity_at(st.session_time))
    assert st.length == 280 and not st.paused and not st.ended
    assert st.to_dict()["now"]["title"] == "Track 1"  # type: ignore[index]


def test_on_the_real_clock_a_command_from_another_thread_lands_within_200_ms() -> None:
    clock = MonotonicClock()
    player = FakePlayer(clock)
    tl = Timeline((cue(0, 0, 30, fade_out=1), cue(1, 29, 60, fade_in=1)))
    c = Conductor(tl, player, clock)
    applied: list[float] = []
    c.on_tick = lambda st: applied.append(time.monotonic()) if st.master_db == 2.0 else None
    runner = threading.Thread(target=c.run, daemon=True)
    runner.start()
    try:
        time.sleep(0.5)
        sent = time.monotonic()
        c.submit(Command(Action.LOUDER, origin="test"))
        deadline = sent + 5
        while not applied and time.monotonic() < deadline:
            time.sleep(0.005)
        assert applied and applied[0] - sent < 0.2
        c.request_stop(0.2)
        runner.join(5)
        assert c.ended
    finally:
        c.request_stop(0.0)
        runner.join(5)


class RefusingPlayer(FakePlayer):
    """A backend that raises (rather than queueing a fault) for one uri."""

    def __init__(self, clock: FakeClock, bad: str) -> None:
        super().__init__(clock)
        self.bad = bad

    def open(self, key: int, uri: str, offset: float) -> None:
        if uri == self.bad:
            raise PlaybackError("no free libVLC player")
        super().open(key, uri, offset)


def test_a_player_that_raises_on_open_is_a_fault_not_a_crash() -> None:
    clock = FakeClock(T0)
    player = RefusingPlayer(clock, uri(1))
    c = Conductor(three(), player, clock)
    c.run()
    assert player.opened(1) is None
    assert player.started_at(2) == pytest.approx(T0 + 90)
    assert c.status().message == "session ended: the plan finished"


def test_a_second_stop_request_hurries_the_fade() -> None:
    s = Session()
    s.until(40)
    s.conductor.request_stop(4.0)
    s.conductor.run_for(1.0)
    s.conductor.request_stop(0.5)
    s.conductor.run()
    assert s.conductor.session_time == pytest.approx(41.5, abs=0.2)


def test_a_failing_log_never_stops_the_music() -> None:
    fd = os.open("/dev/full", os.O_WRONLY)  # every write: "no space left on device"
    log = SessionLog(fd, Path("/dev/full"), appended=False)
    try:
        s = Session(log=log)
        s.until(150)
        assert "session log failing" in s.conductor.status().message
        s.conductor.run()
        assert s.conductor.session_time == pytest.approx(280)
        assert s.player.started_at(2) == pytest.approx(T0 + 180)
    finally:
        log.close()


def test_with_the_library_replanner_a_failed_track_is_substituted_and_controls_replan() -> None:
    from setlist.models import candidates_from_tracks
    from setlist.planner import PlanOptions, plan
    from setlist.replan import Replanner
    from setlist.testing import make_library

    arc = load_arc("integration-practice")
    candidates = candidates_from_tracks(make_library(400))
    setlist = plan(arc, candidates, options=PlanOptions(seed=1))
    tl = Timeline.from_setlist(setlist)
    failing = tl.cues[1]
    s = Session(tl, fail_after={failing.track.uri: 20.0}, arc=arc)
    s.conductor = Conductor(
        tl, s.player, s.clock, replanner=Replanner(setlist, candidates), arc=arc
    )
    s.conductor.on_tick = lambda st: s.seen.append((s.clock.now(), st))
    s.until(600)
    fault_at = failing.start + 20.0
    replaced = [
        (s.session_of(at), st.message) for at, st in s.seen if "failed (decoding" in st.message
    ]
    assert replaced and replaced[0][0] == pytest.approx(fault_at, abs=0.15)
    assert (
        f"'{failing.track.title}' failed (decoding failed after 20 s): replaced" in (replaced[0][1])
    )
    s.submit(Action.SOFTER)
    s.conductor.run_for(0.2)
    assert s.conductor.status().message.startswith("softer: ")
    assert s.conductor.status().target_shift == pytest.approx(-0.1)
    s.conductor.run()
    assert s.conductor.status().message == "session ended: the plan finished"
    assert_no_gap(s, 1.0, s.conductor.session_time - 0.1, fault=fault_at)
    assert max(x.late for x in s.conductor.starts) == pytest.approx(0.0, abs=1e-6)


def test_with_the_library_replanner_a_skip_keeps_phase_times_and_the_end() -> None:
    from setlist.models import candidates_from_tracks
    from setlist.planner import PlanOptions, plan
    from setlist.replan import Replanner
    from setlist.testing import make_library

    arc = load_arc("integration-practice")
    candidates = candidates_from_tracks(make_library(400))
    setlist = plan(arc, candidates, options=PlanOptions(seed=3))
    tl = Timeline.from_setlist(setlist)
    s = Session(tl, arc=arc)
    s.conductor = Conductor(
        tl, s.player, s.clock, replanner=Replanner(setlist, candidates), arc=arc
    )
    s.until(60)
    second = tl.cues[1]
    s.submit(Action.SKIP)
    s.conductor.run_for(0.2)
    assert s.conductor.status().message == f"skipped to '{second.track.title}'"
    after = s.conductor.timeline
    assert after.cue(second.key).start == pytest.approx(60.0, abs=0.3)
    assert after.length == pytest.approx(tl.length, abs=1.0)  # without a re-plan: ~230 s early
    # Boundaries after the phase now playing land where they were planned.
    names = [m.name for m in tl.phases()]
    later = names.index(second.phase) + 1
    assert later < len(names) - 1
    for mark, planned in zip(after.phases()[later:], tl.phases()[later:], strict=True):
        assert mark.name == planned.name
        assert mark.start == pytest.approx(planned.start, abs=arc.tolerance + 1)
    s.conductor.run()
    assert_no_gap(s, 1.0, s.conductor.session_time - 0.1)


def test_a_crash_after_a_re_plan_resumes_the_re_planned_session(tmp_path: Path) -> None:
    """The log keeps every edited plan, so a resume plays what the room was hearing."""
    from setlist.models import candidates_from_tracks
    from setlist.planner import PlanOptions, plan
    from setlist.playback import _logged_plan, _resume_start
    from setlist.replan import Replanner
    from setlist.sessionlog import resume_point
    from setlist.testing import make_library

    arc = load_arc("integration-practice")
    candidates = candidates_from_tracks(make_library(400))
    setlist = plan(arc, candidates, options=PlanOptions(seed=2))
    tl = Timeline.from_setlist(setlist)
    path = tmp_path / "s.session.jsonl"
    log = SessionLog.create(path, {"setlist": "x.setlist.yaml"})
    replanner = Replanner(setlist, candidates)
    s = Session(tl, arc=arc)
    s.conductor = Conductor(tl, s.player, s.clock, replanner=replanner, arc=arc, log=log)
    s.until(60)
    s.submit(Action.EXTEND, 5)
    s.conductor.run_for(0.2)
    assert s.conductor.status().message.startswith("extend: ")
    edited = s.conductor.timeline
    new = [c for c in edited.cues if c.key >= len(tl.cues) and c.start > 60]
    assert new, "the extend re-planned the rest"
    s.until(new[0].start + 40)  # a re-planned track is playing ...
    crash = s.conductor.session_time
    log.close()  # ... when the process dies: no session-end

    events = read_log(path)
    point = resume_point(events)
    assert point.key == new[0].key
    warnings: list[str] = []
    restored = _logged_plan(events, setlist, warnings)
    assert restored is not None and not warnings
    timeline, phase_ends = restored
    assert timeline.to_data() == s.conductor.timeline.to_data()
    assert phase_ends == [p.end for p in replanner.schedule()]
    assert phase_ends != list(arc.ends)  # the extended schedule, not the arc's
    start_timeline, start_at, note = _resume_start(timeline, point, logged_plan=True)
    assert note is None and start_timeline is timeline
    assert start_at == pytest.approx(crash, abs=10.5)  # within a heartbeat
    playing = start_timeline.current(start_at)
    assert playing is not None and playing.key == new[0].key
    assert playing.file_time(start_at) == pytest.approx(point.position)
    # Without the logged plan (a log from before plans were kept) the track is unknown.
    old = [e for e in events if e["kind"] != "plan"]
    assert _logged_plan(old, setlist, warnings) is None
    _, _, note = _resume_start(Timeline.from_setlist(setlist), resume_point(old))
    assert note is not None and "not in the plan" in note
