"""The conductor: plays a `Timeline` on a `Player`, to the second, and never falls silent.

One loop (`run`, or `tick` from tests) owns the player. Each tick it reads the injected
clock, applies the therapist's commands and the player's faults, opens voices
`PRELOAD` seconds before their cue, starts them on time, sets every sounding voice's gain
from the timeline (times the master volume and the pause fade) and releases voices after
their stop. Between ticks it sleeps until the next tick or the next cue event, whichever
comes first, so starts land on their planned time rather than on a tick grid; during
fades it ticks at least 20 times a second.

Session time is the clock since the start minus time spent paused: a pause fades the
room down (~1.5 s, the music still moving), then pauses the players and freezes the
session clock; a resume picks both up again and fades back in. Nothing here knows about
libVLC: the player backends and the clock are injected, and tests run whole sessions in
virtual time with `setlist.testing.FakeClock` and `FakePlayer`.

Never silence by accident: a voice that fails to open, faults mid-stream, stalls (its
position stops moving for `STALL` seconds) or ends well before its stop is replaced on
the same tick, by the replanner's substitute when there is one, else by moving the next
cue up; only when nothing is left does the session fade out, with the reason logged.

Thread safety: `submit`, `status` and `request_stop` may be called from any thread;
`request_stop` only sets a flag, so it is safe inside a signal handler.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from setlist.controls import Action, Command, Status, TrackInfo
from setlist.errors import PlanningError, SetlistError
from setlist.levels import MasterLimit
from setlist.models import Arc
from setlist.players.base import Clock, MonotonicClock, Player, VoiceState
from setlist.sessionlog import SessionLog
from setlist.timeline import Cue, Timeline, db_to_gain

#: Pause fades the room down (and resume back up) over this many seconds.
PAUSE_FADE = 1.5
#: Master volume changes ramp over this long, never jump.
MASTER_RAMP = 0.5
#: Master volume limits, in dB.
MIN_DB, MAX_DB = -40.0, 6.0
#: A skip cross-fades over the phase's crossfade, at most this long, at least MIN_FADE.
SKIP_FADE = 4.0
MIN_FADE = 1.0
#: Fade-in of the next track brought forward to replace a failed one.
REPLACE_FADE = 1.5
#: Fade of a session ended because nothing is left to play, or on an error.
END_FADE = 2.0
#: While the session log cannot be written, try the disk again this often (seconds).
LOG_RETRY = 2.0
#: A playing voice whose position has not moved for this long is stalled.
STALL = 1.5
#: A voice that ends (or stalls) this close to its planned stop is just the file's end.
END_GRACE = 2.0
#: Longest sleep between ticks when nothing is fading (commands still wake the loop).
IDLE = 0.1
#: A position heartbeat is logged this often, so a power cut loses at most this much.
HEARTBEAT = 10.0
#: Cue events this close ahead count as due now (float session times never quite meet).
EPS = 1e-6
#: A gain change smaller than this is not worth a call to the player.
GAIN_EPSILON = 1e-5


class ReplannerLike(Protocol):
    """What the conductor asks of a re-planner (`setlist.replan.Replanner` is one).

    Both calls return a new timeline or raise `PlanningError`, leaving things as they
    were. Optional extras read with `getattr`: `note` (what the last call did),
    `target_shift`, `integration_phase`, `target_at(t)`.
    """

    def replan(self, timeline: Timeline, now: float, request: object) -> Timeline: ...

    def substitute(self, timeline: Timeline, now: float, key: int) -> Timeline: ...


class _Pause(Enum):
    PLAYING = "playing"
    PAUSING = "pausing"  # fading down, session clock still running
    PAUSED = "paused"  # players paused, session clock frozen
    RESUMING = "resuming"  # players running again, fading up


@dataclass(slots=True)
class _Ramp:
    """A value moving from `a` to `b` over `span` seconds of clock time (S-curve)."""

    a: float
    b: float
    t0: float
    span: float

    def at(self, now: float) -> float:
        if self.span <= 0 or now >= self.t0 + self.span:
            return self.b
        x = max(0.0, (now - self.t0) / self.span)
        return self.a + (self.b - self.a) * (0.5 - 0.5 * math.cos(math.pi * x))

    def busy(self, now: float) -> bool:
        return now < self.t0 + self.span and self.a != self.b


@dataclass(slots=True)
class _Voice:
    key: int
    uri: str
    offset: float  # file position the voice was opened at
    started: float | None = None  # session time it was started
    gain: float = -1.0  # last gain sent
    last_pos: float | None = None
    moved_at: float = 0.0  # clock time the position last moved


@dataclass(frozen=True, slots=True)
class Lateness:
    """One start: planned and actual session time (lateness = actual - planned)."""

    key: int
    planned: float
    actual: float

    @property
    def late(self) -> float:
        return self.actual - self.planned


class Conductor:
    """Runs a timeline on a player; see the module docstring."""

    def __init__(
        self,
        timeline: Timeline,
        player: Player,
        clock: Clock,
        *,
        log: SessionLog | None = None,
        replanner: ReplannerLike | None = None,
        arc: Arc | None = None,
        start_at: float = 0.0,
        tick: float = 0.04,
        master_db: float = 0.0,
        metadata: Mapping[str, object] | None = None,
        master_limit: MasterLimit | None = None,
    ) -> None:
        if not 0 < tick <= 0.05:
            raise ValueError("the tick must be within (0, 0.05] s: fades need 20+ updates/s")
        self._timeline = timeline
        self._player = player
        self._clock = clock
        self._log = log
        self._replanner = replanner
        self._arc = arc
        self._start_at = float(start_at)
        self._tick = tick
        self._metadata = dict(metadata or {})
        self.on_tick: Callable[[Status], None] | None = None

        self._lock = threading.Lock()
        self._commands: deque[Command] = deque()
        self._wake = threading.Event()
        # Filled by request_stop (maybe in a signal handler): append/popleft are atomic.
        self._stops: deque[float] = deque()

        self._began = False
        self._anchor_clock = 0.0  # session time = anchor_session + (now - anchor_clock)
        self._anchor_session = self._start_at
        self._pause = _Pause.PLAYING
        self._paused_at_clock = 0.0
        self._duck = _Ramp(1.0, 1.0, 0.0, 0.0)
        self._limit = master_limit or MasterLimit(MAX_DB)
        self._max_db = min(MAX_DB, self._limit.db)
        db = float(master_db) if math.isfinite(float(master_db)) else 0.0
        db = min(self._max_db, max(MIN_DB, db))
        self._master_db = db
        self._master = _Ramp(db, db, 0.0, 0.0)  # in dB

        self._voices: dict[int, _Voice] = {}
        self._done: set[int] = set()  # keys started and finished (or skipped over)
        self._failed: set[int] = set()
        self._ending: str | None = None  # why the session is fading out
        self._ending_from: float | None = None
        self._ended = False
        self._end_reason = ""
        self._phase = ""
        self._heartbeat_at = 0.0
        self._message = ""
        self._log_warned = False
        self._log_failing = ""
        self._log_retry_at = 0.0
        self._t = self._start_at
        self._now = 0.0
        self.starts: list[Lateness] = []  # every start, for lateness figures
        self.ticks = 0
        self._status = self._snapshot(self._start_at)

    # -- public API ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    @property
    def session_time(self) -> float:
        """Session seconds as of the last tick."""
        return self._t

    def note(self, text: str) -> None:
        """Show `text` as the status message; for `on_tick` observers (the tick thread)."""
        self._message = text

    def submit(self, command: Command) -> None:
        """Queue a command (any thread); it is applied on the next tick."""
        with self._lock:
            self._commands.append(command)
        self._wake.set()

    def status(self) -> Status:
        """The snapshot taken at the end of the last tick (any thread)."""
        with self._lock:
            return self._status

    def request_stop(self, fade: float = 4.0) -> None:
        """Fade out over `fade` seconds and end. Only sets a flag: signal-handler safe."""
        self._stops.append(max(0.0, float(fade)))

    def run(self) -> None:
        """Tick until the session ends, sleeping on the injected clock between ticks."""
        self._loop(None)

    def run_for(self, seconds: float) -> None:
        """Run for `seconds` of clock time (or until the end): for tests and tools."""
        self._loop(self._clock.now() + seconds)

    def _loop(self, until: float | None) -> None:
        real = isinstance(self._clock, MonotonicClock)
        while not self._ended:
            self.tick()
            now = self._clock.now()
            if self._ended or (until is not None and now >= until - 1e-9):
                break
            wake = self._next_wake(now)
            if until is not None:
                wake = min(wake, until)
            delay = max(wake - now, EPS)  # always move on: a clock can round tiny steps away
            if real:
                self._wake.wait(delay)  # a submitted command cuts the wait short
                self._wake.clear()
            else:
                self._clock.sleep(delay)

    def tick(self) -> None:
        """One step: commands, faults, cue events, watchdog, gains, log, status."""
        if self._ended:
            return
        now = self._clock.now()
        self._now = now
        self.ticks += 1
        if not self._began:
            self._begin(now)
        while self._stops:
            fade = self._stops.popleft()
            self._apply(Command(Action.FADE_OUT, fade, "signal"), now)
        with self._lock:
            commands = list(self._commands)
            self._commands.clear()
        for command in commands:
            if not self._ended:
                self._apply(command, now)
        if not self._ended:
            self._advance_pause(now)
            t = self._session(now)
            self._t = t
            self._phase_note(t)  # a phase's first track starts after the phase heading
            self._drain_faults(t)
            self._schedule(t)
            if self._watchdog(t, now):
                self._schedule(t)  # the replacement opens and starts on this tick
            self._set_gains(t, now)
            self._notes(t, now)
            self._retry_log(now)
            self._check_end(t)
        status = self._snapshot(self._t)
        with self._lock:
            self._status = status
        if self.on_tick is not None:
            self.on_tick(status)

    # -- time ------------------------------------------------------------------------------

    def _begin(self, now: float) -> None:
        self._began = True
        self._anchor_clock = now
        self._heartbeat_at = now
        if self._log is not None and getattr(self._log, "appended", False):
            fields = {**self._metadata, "start_at": round(self._start_at, 3)}
            self._write("restart", session=self._start_at, **fields)
        if not self._timeline.cues or self._start_at >= self._timeline.length:
            self._ending = "nothing left to play"

    def _session(self, now: float) -> float:
        if self._pause is _Pause.PAUSED:
            return self._anchor_session
        return self._anchor_session + (now - self._anchor_clock)

    def _fading(self, t: float) -> bool:
        for key in self._voices:
            v = self._voices[key]
            if v.started is None:
                continue
            cue = self._cue(key)
            if cue is not None and (
                t < cue.start + cue.fade_in or t >= cue.fade_out_at or cue.ramping(t)
            ):
                return True
        return False

    def _next_wake(self, now: float) -> float:
        """Clock time of the next tick: the next point of the session's tick grid while
        anything fades, else `IDLE` from now; never later than the next cue event, so
        starts land on their planned time rather than on the grid."""
        if self._ended:
            return now
        t = self._session(now)
        if (
            self._pause in (_Pause.PAUSING, _Pause.RESUMING)
            or self._duck.busy(now)
            or self._master.busy(now)
            or self._fading(t)
        ):
            # On the session clock's tick grid: steps never drift, whatever a tick costs.
            step = self._tick
            due = (math.floor(t / step + 1e-6) + 1) * step
            wake = now + max(due - t, 1e-4)
        else:
            wake = now + max(IDLE, self._tick)
        if self._pause is _Pause.PAUSED:
            return wake
        # Wake at the next cue event even mid-fade: starts land on time, not on the grid.
        for cue in self._timeline.cues:
            if cue.key in self._done or cue.stop <= t + EPS:
                continue
            for e in (cue.preload_at, cue.start, cue.fade_out_at, cue.stop):
                if e > t + EPS:
                    wake = min(wake, now + (e - t))
                    break
        return wake

    # -- commands --------------------------------------------------------------------------

    def _apply(self, command: Command, now: float) -> None:
        t = self._session(now)
        action = command.action
        if action is Action.STATUS:
            return
        if action is Action.TOGGLE:
            paused = self._pause in (_Pause.PAUSING, _Pause.PAUSED)
            action = Action.RESUME if paused else Action.PAUSE
        if action is Action.PAUSE:
            effect = self._pause_now(now, t)
        elif action is Action.RESUME:
            effect = self._resume_now(now, t)
        elif action is Action.SKIP:
            effect = self._skip(t)
        elif action in (Action.LOUDER, Action.QUIETER):
            sign = 1.0 if action is Action.LOUDER else -1.0
            effect = self._volume(self._master_db + sign * command.value, now)
        elif action is Action.FADE_OUT:
            effect = self._fade_out(t, command.value, f"faded out ({command.origin})")
        else:
            effect = self._replan(action, command.value, t)
        self._message = effect
        self._write(
            "control",
            session=t,
            action=action.value,
            amount=command.amount,
            origin=command.origin,
            effect=effect,
            master_db=round(self._master_db, 2),
            target_shift=round(self._target_shift(), 3),
        )

    def _pause_now(self, now: float, t: float) -> str:
        if self._pause in (_Pause.PAUSING, _Pause.PAUSED):
            return "already paused"
        if self._ending is not None:
            return "the session is ending: fading out instead of pausing"
        self._pause = _Pause.PAUSING
        self._duck = _Ramp(self._duck.at(now), 0.0, now, PAUSE_FADE)
        self._write("pause", session=t)
        return "paused"

    def _resume_now(self, now: float, t: float) -> str:
        if self._pause in (_Pause.PLAYING, _Pause.RESUMING):
            return "already playing"
        held = 0.0
        if self._pause is _Pause.PAUSED:
            held = now - self._paused_at_clock
            self._anchor_clock = now  # the session clock runs again from where it froze
            for key, v in self._silence_started():
                self._player.resume(key)
                v.moved_at = now
                v.last_pos = None
        self._pause = _Pause.RESUMING
        self._duck = _Ramp(self._duck.at(now), 1.0, now, PAUSE_FADE)
        self._heartbeat_at = now
        self._write("resume", session=t, paused_for=round(held, 1))
        return "resumed"

    def _silence_started(self) -> list[tuple[int, _Voice]]:
        """Set every started voice to silence; they are then paused or resumed silent."""
        started = [(key, v) for key, v in self._voices.items() if v.started is not None]
        for key, v in started:
            self._player.set_gain(key, 0.0)
            v.gain = 0.0
        return started

    def _advance_pause(self, now: float) -> None:
        if self._pause is _Pause.PAUSING and not self._duck.busy(now):
            t = self._session(now)
            for key, _ in self._silence_started():
                self._player.pause(key)
            self._anchor_session = t
            self._paused_at_clock = now
            self._pause = _Pause.PAUSED
        elif self._pause is _Pause.RESUMING and not self._duck.busy(now):
            self._pause = _Pause.PLAYING

    def _volume(self, db: float, now: float) -> str:
        # The plan's headroom caps the top: no peak over the ceiling, no listener over
        # their max_volume_db (levels.master_limit), whatever amount was asked for.
        target = min(self._max_db, max(MIN_DB, db))
        self._master = _Ramp(self._master.at(now), target, now, MASTER_RAMP)
        self._master_db = target
        limit = ""
        if db > self._max_db + 1e-9:
            limit = (
                " (the maximum)"
                if self._max_db >= MAX_DB
                else f" (the limit: {self._limit.reason})"
            )
        elif db < MIN_DB:
            limit = " (the minimum)"
        return f"volume {target:+.1f} dB{limit}"

    def _skip_fade(self, t: float) -> float:
        fade = SKIP_FADE
        cue = self._timeline.current(t)
        if self._arc is not None and cue is not None:
            for p in self._arc.phases:
                if p.name == cue.phase:
                    fade = min(fade, p.crossfade)
        return max(MIN_FADE, fade)

    def _skip(self, t: float) -> str:
        if self._ending is not None:
            return "the session is ending"
        later = self._timeline.upcoming(t)
        if not later:
            return self._fade_out(t, self._skip_fade(t), "skipped past the last track")
        nxt = later[0]
        skipped = self._timeline.skip(t, self._skip_fade(t))
        self._timeline = skipped
        message = f"skipped to '{nxt.track.title}'"
        if self._replanner is None:
            self._log_plan(t)
            return message
        # A skip pulls the rest of the plan forward; with a library the rest is re-planned
        # behind the new track so phase boundaries and the session end stay where they were.
        from setlist.replan import ReplanRequest

        try:
            timeline = self._replanner.replan(skipped, t, ReplanRequest(reason="skip"))
        except PlanningError:
            self._log_plan(t)
            return message + " (later tracks moved up)"
        self._adopt(timeline, t)
        self._write(
            "replan",
            session=t,
            reason="skip",
            note="phase times kept after a skip",
            cues=self._cue_summary(c for c in timeline.cues if c.start > t),
        )
        return message

    def _fade_out(self, t: float, fade: float, reason: str) -> str:
        if self._ending is not None and fade >= self._timeline.length - t:
            return "already fading out"
        self._timeline = self._timeline.end(t, max(0.0, fade))
        if self._ending is None:
            self._ending = reason
            self._ending_from = t
        if self._pause is _Pause.PAUSED:
            self._timeline = self._timeline.end(t, 0.0)  # the room is already quiet
        return f"fading out over {fade:g} s" if fade > 0 else "stopped"

    def _target_shift(self) -> float:
        return float(getattr(self._replanner, "target_shift", 0.0) or 0.0)

    def _replan(self, action: Action, amount: float, t: float) -> str:
        if self._ending is not None:
            return f"{action.value}: the session is ending"
        if self._replanner is None:
            if action is Action.INTEGRATION:
                return self._jump_to_last_phase(t)
            return (
                f"{action.value} is unavailable: no music library to re-plan from "
                "(index the library with 'setlist library scan')"
            )
        from setlist.replan import ReplanRequest

        if action is Action.SOFTER:
            request = ReplanRequest(target_shift=-min(amount, 1.0), reason="softer")
        elif action is Action.STRONGER:
            request = ReplanRequest(target_shift=min(amount, 1.0), reason="stronger")
        elif action is Action.EXTEND:
            request = ReplanRequest(extend=amount * 60.0, reason="extend")
        elif action is Action.SHORTEN:
            request = ReplanRequest(extend=-amount * 60.0, reason="shorten")
        else:
            phase = getattr(self._replanner, "integration_phase", None) or self._last_phase()
            request = ReplanRequest(jump_to=phase, reason="integration")
        try:
            timeline = self._replanner.replan(self._timeline, t, request)
        except PlanningError as exc:
            return f"{action.value} not possible: {exc.message}"
        self._adopt(timeline, t)
        note = str(getattr(self._replanner, "note", "") or "re-planned")
        self._write(
            "replan",
            session=t,
            reason=action.value,
            note=note,
            cues=self._cue_summary(c for c in timeline.cues if c.start > t),
        )
        return f"{action.value}: {note}"

    def _last_phase(self) -> str:
        if self._timeline.phase_order:
            return self._timeline.phase_order[-1]
        return self._timeline.cues[-1].phase if self._timeline.cues else ""

    def _jump_to_last_phase(self, t: float) -> str:
        """Without a library: cross-fade now into the plan's own first closing track."""
        last = self._last_phase()
        cur = self._timeline.current(t)
        if cur is not None and cur.phase == last:
            return f"already in '{last}'"
        target = next((c for c in self._timeline.upcoming(t) if c.phase == last), None)
        if target is None:
            return f"no '{last}' tracks left to jump to"
        kept = [c for c in self._timeline.cues if not (t < c.start < target.start)]
        self._timeline = self._timeline.with_cues(kept).skip(t, self._skip_fade(t))
        self._log_plan(t)
        return f"jumped to '{last}': '{target.track.title}'"

    def _adopt(self, timeline: Timeline, t: float) -> None:
        """Take an edited timeline; voices of cues it dropped are let go at once."""
        self._timeline = timeline
        keys = {c.key for c in timeline.cues}
        for key in [k for k in self._voices if k not in keys]:
            self._release(key, t, "re-planned")
        self._log_plan(t)

    def _log_plan(self, t: float) -> None:
        """Log the whole edited plan, so a resume after a crash plays it and not the
        setlist's (with the re-planner's phase schedule, so later re-plans keep it)."""
        if self._log is None:
            return
        fields: dict[str, object] = {"timeline": self._timeline.to_data()}
        schedule = getattr(self._replanner, "schedule", None)
        if callable(schedule):
            fields["phase_ends"] = [p.end for p in schedule()]
        self._write("plan", session=t, **fields)

    @staticmethod
    def _cue_summary(cues: object) -> list[dict[str, object]]:
        return [
            {
                "key": c.key,
                "track_id": c.track.id,
                "title": c.track.title,
                "phase": c.phase,
                "start": round(c.start, 2),
                "stop": round(c.stop, 2),
            }
            for c in cues  # type: ignore[attr-defined]
        ]

    # -- faults ------------------------------------------------------------------------

    def _drain_faults(self, t: float) -> None:
        try:
            faults = self._player.faults()
        except SetlistError as exc:
            self._write("fault", session=t, key=-1, reason=f"player: {exc.message}", action="none")
            return
        for fault in faults:
            self._on_fault(fault.key, fault.reason, t)

    def _on_fault(self, key: int, reason: str, t: float) -> None:
        cue = self._cue(key)
        if key in self._failed:
            return
        if cue is None or cue.stop <= t or key in self._done:
            self._write("fault", session=t, key=key, reason=reason, action="ignored: cue over")
            self._release(key, t, "failed")
            return
        self._failed.add(key)
        self._release(key, t, "failed")
        action, cues = self._replace(cue, t)
        self._message = f"'{cue.track.title}' failed ({reason}): {action}"
        self._write(
            "fault",
            session=t,
            key=key,
            track_id=cue.track.id,
            title=cue.track.title,
            artist=cue.track.artist,
            phase=cue.phase,
            reason=reason,
            action=action,
            cues=cues,
        )

    def _replace(self, cue: Cue, t: float) -> tuple[str, list[dict[str, object]]]:
        """Fill the failed cue's place; returns what was done, for the log."""
        before = {c.key for c in self._timeline.cues}
        if self._replanner is not None and self._ending is None:
            try:
                timeline = self._replanner.substitute(self._timeline, t, cue.key)
            except PlanningError as exc:
                note = f"no substitute ({exc.message}); "
            else:
                self._adopt(timeline, t)
                note = str(getattr(self._replanner, "note", "") or "replaced")
                new = [c for c in timeline.cues if c.key not in before]
                return self._after_replace(note, t), self._cue_summary(new)
        else:
            note = ""
        return self._after_replace(note + self._drop(cue, t), t), []

    def _after_replace(self, action: str, t: float) -> str:
        sounding = [c for c in self._timeline.cues if c.stop > t and c.key not in self._failed]
        if not sounding and self._ending is None:
            self._ending = "nothing left to play"
            self._ending_from = t
            self._timeline = self._timeline.end(t, END_FADE)
            return action + "; nothing left to play: the session ends"
        return action

    def _drop(self, cue: Cue, t: float) -> str:
        """No substitute: close the gap with the next cue (later ones move with it)."""
        tl = self._timeline
        started = cue.start <= t
        if started:
            tl = tl.cut(cue.key, t, 0.0)
            at, fade_in = t, REPLACE_FADE
        else:
            tl = tl.with_cues(c for c in tl.cues if c.key != cue.key)
            at, fade_in = cue.start, cue.fade_in
        if started and any(c.start > cue.start and c.start <= t for c in tl.cues):
            # It failed in its own fade-out: the next track is already coming in.
            self._adopt(tl, t)
            return "let the next track, already fading in, carry on"
        nxt = next((c for c in tl.cues if c.start > at and c.key != cue.key), None)
        if nxt is None:
            self._adopt(tl, t)
            left = [c for c in tl.cues if c.stop > t and c.key != cue.key]
            if left:
                return f"no track left after it; the session ends after '{left[-1].track.title}'"
            return "no track left after it"
        delta = at - nxt.start
        moved = [c.shifted(delta) if c.start >= nxt.start else c for c in tl.cues]
        fade_in = min(fade_in, (nxt.stop - nxt.start) / 2)
        moved = [replace(c, fade_in=fade_in) if c.key == nxt.key else c for c in moved]
        self._adopt(tl.with_cues(moved), t)
        return f"moved '{nxt.track.title}' up"

    def _watchdog(self, t: float, now: float) -> bool:
        """Check every voice's state and progress; True if a fault edited the timeline."""
        if self._pause is _Pause.PAUSED:
            return False
        tl = self._timeline
        self._drain_faults(t)  # the player's own reason beats "the voice failed"
        for key in list(self._voices):
            v = self._voices.get(key)
            cue = self._cue(key)
            if v is None or cue is None or key in self._failed:
                continue
            state = self._player.state(key)
            if state is VoiceState.FAILED:
                self._on_fault(key, "the player reports the voice failed", t)
                continue
            if v.started is None or t >= cue.stop:
                continue
            near_end = cue.stop - t <= END_GRACE
            if state in (VoiceState.ENDED, VoiceState.GONE) and not near_end:
                what = "ended" if state is VoiceState.ENDED else "vanished"
                self._on_fault(key, f"the file {what} {cue.stop - t:.1f} s before its stop", t)
                continue
            pos = self._player.position(key)
            if pos is not None and (v.last_pos is None or abs(pos - v.last_pos) > 1e-6):
                v.last_pos, v.moved_at = pos, now
            elif now - v.moved_at > STALL and not near_end and self._pause is _Pause.PLAYING:
                self._on_fault(key, f"stalled: no progress for {now - v.moved_at:.1f} s", t)
        return self._timeline is not tl

    # -- cues and gains -----------------------------------------------------------------

    def _cue(self, key: int) -> Cue | None:
        try:
            return self._timeline.cue(key)
        except KeyError:
            return None

    def _schedule(self, t: float) -> None:
        """Open, start and release voices; starts over when a fault edits the timeline."""
        for _ in range(len(self._timeline.cues) + 2):
            done = self._schedule_pass(t)
            tl = self._timeline
            self._drain_faults(t)  # a file that failed to open is replaced at once
            if done and self._timeline is tl:
                return

    def _schedule_pass(self, t: float) -> bool:
        tl = self._timeline
        keys = {c.key for c in tl.cues}
        for key in [k for k in self._voices if k not in keys]:
            self._release(key, t, "re-planned")
        for cue in tl.cues:
            if self._timeline is not tl:
                return False
            if cue.key in self._done or cue.key in self._failed:
                continue
            v = self._voices.get(cue.key)
            if cue.stop <= t + EPS:
                if v is not None:
                    self._release(cue.key, t, "planned" if cue.cut is None else "cut")
                self._done.add(cue.key)
                continue
            if v is None and cue.preload_at <= t + EPS:
                v = self._open(cue, t)
                if v is None:
                    continue
            elif v is not None and v.started is None and cue.preload_at > t + 1.0:
                self._release(cue.key, t, "moved later")  # re-opened at its new load time
                continue
            # A voice started while paused would run on while the session clock stands.
            if (
                v is not None
                and v.started is None
                and cue.start <= t + EPS
                and self._pause is not _Pause.PAUSED
            ):
                self._start(cue, v, t)
        return self._timeline is tl

    def _open(self, cue: Cue, t: float) -> _Voice | None:
        offset = cue.file_time(t) if cue.start < t - EPS else cue.offset
        voice = _Voice(cue.key, cue.track.uri, offset, moved_at=self._now)
        self._voices[cue.key] = voice
        try:
            self._player.open(cue.key, cue.track.uri, offset)
        except (SetlistError, OSError, ValueError) as exc:
            reason = exc.message if isinstance(exc, SetlistError) else str(exc)
            self._on_fault(cue.key, f"cannot open: {reason}", t)
            return None
        return voice

    def _start(self, cue: Cue, v: _Voice, t: float) -> None:
        gain = self._gain(cue, t, self._now)
        try:
            self._player.start(cue.key, gain)
        except SetlistError as exc:
            self._on_fault(cue.key, f"cannot start: {exc.message}", t)
            return
        v.started, v.gain, v.moved_at, v.last_pos = t, gain, self._now, None
        # A cue begun mid-track (start_at, resume) was never due earlier than the start.
        due = max(cue.start, self._start_at)
        self.starts.append(Lateness(cue.key, due, t))
        self._write(
            "track-start",
            session=t,
            key=cue.key,
            track_id=cue.track.id,
            title=cue.track.title,
            artist=cue.track.artist,
            phase=cue.phase,
            planned=round(cue.start, 3),
            late=round(t - due, 3),
            joined=cue.start < due,
            offset=round(v.offset, 3),
            uri=cue.track.uri,
        )

    def _release(self, key: int, t: float, reason: str) -> None:
        v = self._voices.pop(key, None)
        if v is None:
            return
        self._player.release(key)
        if v.started is not None:
            cue = self._cue(key)
            self._write(
                "track-stop",
                session=t,
                key=key,
                track_id=cue.track.id if cue else None,
                title=cue.track.title if cue else "",
                planned=round(cue.stop, 3) if cue else None,
                played=round(t - v.started, 3),
                reason=reason,
            )

    def _gain(self, cue: Cue, t: float, now: float) -> float:
        g = float(cue.gain_at(t)) * db_to_gain(self._master.at(now)) * self._duck.at(now)
        return g if g > 1e-7 else 0.0

    def _set_gains(self, t: float, now: float) -> None:
        if self._pause is _Pause.PAUSED:
            return
        failed: list[tuple[int, str]] = []
        for key, v in self._voices.items():
            if v.started is None:
                continue
            cue = self._cue(key)
            if cue is None:
                continue
            gain = self._gain(cue, t, now)
            if abs(gain - v.gain) > GAIN_EPSILON:
                try:
                    self._player.set_gain(key, gain)
                except SetlistError as exc:
                    failed.append((key, f"cannot set its volume: {exc.message}"))
                    continue
                v.gain = gain
        for key, reason in failed:
            self._on_fault(key, reason, t)

    # -- log, end, status -----------------------------------------------------------------

    def _write(self, kind: str, **fields: object) -> None:
        if self._log is None:
            return
        try:
            self._log.write(kind, **fields)  # type: ignore[arg-type]
        except SetlistError as exc:
            if not self._log_warned:  # the music goes on; say so once
                self._log_warned = True
                self._message = f"session log failing: {exc.message}"
        self._log_state()

    def _log_state(self) -> None:
        """Keep the status's log warning current: set while events wait for the disk."""
        failing = str(getattr(self._log, "failing", "") or "")
        if failing:
            held = int(getattr(self._log, "pending", 0) or 0)
            self._log_failing = f"session log failing: {failing}; {held} events held in memory"
            if not self._log_warned:
                self._log_warned = True
                self._message = f"session log failing: {failing}"
        elif self._log_failing:
            self._log_failing = ""
            self._log_warned = False
            self._message = "session log writing again: every held event is saved"

    def _retry_log(self, now: float) -> None:
        """While the log is failing, try the disk again every LOG_RETRY seconds."""
        if self._log is None or not self._log_failing or now - self._log_retry_at < LOG_RETRY:
            return
        self._log_retry_at = now
        flush = getattr(self._log, "flush", None)
        if callable(flush):
            with contextlib.suppress(SetlistError, OSError):
                flush()
        self._log_state()

    def _phase_note(self, t: float) -> None:
        mark = self._timeline.phase_at(t)
        if mark is not None and mark.name != self._phase and self._pause is not _Pause.PAUSED:
            self._phase = mark.name
            self._write("phase", session=t, name=mark.name)

    def _notes(self, t: float, now: float) -> None:
        self._phase_note(t)  # an edit this tick may have moved a boundary
        if self._pause is _Pause.PLAYING and now - self._heartbeat_at >= HEARTBEAT:
            self._heartbeat_at = now
            cue = self._timeline.current(t)
            v = self._voices.get(cue.key) if cue is not None else None
            fields: dict[str, object] = {}
            if cue is not None and v is not None and v.started is not None:
                fields = {
                    "key": cue.key,
                    "track_id": cue.track.id,
                    "position": round(v.offset + (t - v.started), 3),
                }
            self._write(
                "position",
                session=t,
                master_db=round(self._master_db, 2),
                target_shift=round(self._target_shift(), 3),
                **fields,
            )

    def _check_end(self, t: float) -> None:
        if any(c.stop > t + EPS for c in self._timeline.cues if c.key not in self._failed):
            return
        if self._pause is _Pause.PAUSED and self._ending is None:
            return
        self._finish(self._ending or "the plan finished", t)

    def _finish(self, reason: str, t: float) -> None:
        for key in list(self._voices):
            self._release(key, t, "session end")
        self._ended = True
        self._end_reason = reason
        self._message = f"session ended: {reason}"
        fields: dict[str, object] = {"reason": reason}
        if self._ending_from is not None:
            fields["from"] = round(self._ending_from, 3)
        self._write("session-end", session=t, **fields)

    def _info(self, cue: Cue | None, t: float) -> TrackInfo | None:
        if cue is None:
            return None
        return TrackInfo(
            key=cue.key,
            title=cue.track.title,
            artist=cue.track.artist,
            phase=cue.phase,
            start=cue.start,
            stop=cue.stop,
            position=max(0.0, t - cue.start),
        )

    def _target_at(self, t: float, cue: Cue | None) -> float:
        target_at = getattr(self._replanner, "target_at", None)
        if callable(target_at):
            try:
                return float(target_at(t))
            except (ValueError, IndexError, TypeError):
                pass
        if self._arc is not None:
            return float(self._arc.intensity_at(min(max(t, 0.0), self._arc.length)))
        return cue.target if cue is not None else 0.0

    def _snapshot(self, t: float) -> Status:
        tl = self._timeline
        marks = tl.phases()
        phase, phase_left, next_phase = "", 0.0, ""
        for i, m in enumerate(marks):
            if t < m.end or i == len(marks) - 1:
                phase, phase_left = m.name, max(0.0, m.end - t)
                next_phase = marks[i + 1].name if i + 1 < len(marks) else ""
                break
        cur = tl.current(t)
        later = tl.upcoming(t)
        change = tl.next_change(t)
        return Status(
            session_time=t,
            length=tl.length,
            paused=self._pause in (_Pause.PAUSING, _Pause.PAUSED),
            ended=self._ended,
            phase=phase,
            phase_left=phase_left,
            next_phase=next_phase,
            now=self._info(cur, t),
            next=self._info(later[0] if later else None, t),
            next_change_in=None if change is None else max(0.0, change - t),
            master_db=self._master_db,
            target_shift=self._target_shift(),
            fading_out=self._ending is not None,
            target_intensity=self._target_at(t, cur),
            message=self._message,
            log_failing=self._log_failing,
        )
