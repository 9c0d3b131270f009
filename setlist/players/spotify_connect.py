"""Spotify Connect as a `Player`: the conductor's timeline approximated on one device.

A Connect device plays ONE track at a time and has ONE volume, reached over HTTP with a
rate limit. So this player keeps the conductor's voices *virtual* (each with its own gain
and a position that runs on the clock) and decides which one is on the device:

- **Deferred starts instead of cuts.** When a cue starts while another is still on the
  device, its track is not started yet: the outgoing track keeps the device until its
  requested gain has fallen below `HANDOFF` (a quarter) of the incoming one's, or it
  stops. (A ratio of the two, not a fraction of a peak, so a pause or master-volume ramp,
  which scales both, never triggers a change; it is judged on gains of one conductor
  tick, never on a tick half-applied.) Then the incoming track starts where it should
  already be (its file offset plus the time since its cue started), at the level the
  outgoing one had reached, and rises to the incoming voice's gain over about as long as
  it waited (`MIN_RISE` to `MAX_RISE` s). The room hears a fade down, a quiet change, a
  fade up. For equal-power fades of equal gains the change falls 84 % into the fade.
- **Volume follows the track on the device.** Its gain, clamped to 1.0, sets the device
  volume relative to a *reference*: the device's own volume when the session began
  (the level the therapist set for the room), so a session is never louder than that.
  The curve is cubic (`percent = reference * g^(1/3)`) by default: Spotify's percent is
  a perceptual, not linear, scale -- its desktop clients use a logarithmic slider,
  librespot (many Connect speakers) defaults to a 60 dB log curve and offers cubic,
  PulseAudio/PipeWire stream volumes are cubic -- and the cubic mapping sits between:
  exact on cubic devices, deeper fades on log ones (the safe side: handoffs quieter,
  never louder). `VolumeCurve.LOG` is exact for librespot's default.
- **Few HTTP calls.** Percentages are whole numbers, changes under `MIN_STEP` points
  wait, and at most one volume call per `VOLUME_INTERVAL` (two a second; one a second
  for small changes) goes out, latest value wins: a 25 Hz fade becomes a handful of
  calls. What is playing is read at most every `POLL` seconds and extrapolated on the
  clock in between.
- **The conductor never waits for the network.** Every call only updates state under a
  lock and wakes a worker thread, which does all HTTP (the client honours Retry-After
  and retries 5xx itself). Problems come back as `Fault`s drained by `faults()` on the
  conductor's thread, exactly like the libVLC player's.
- **A volume changed on the device from elsewhere** (the therapist's phone, a
  speaker's knob) is seen at the next poll and becomes the session's level: the
  reference is scaled so the room stays where it was put, and later fades ramp within
  it instead of back up to the old level.
- **Devices without volume control** (most phones) get hard cuts at the middle of each
  crossfade (where the incoming gain overtakes the outgoing one), said once through
  `notices()`; a device that refuses its first volume call switches to cuts too.

What makes a voice fail (the conductor then substitutes or moves on): a uri that is not
a Spotify track, Spotify playing another track than the one started (changed from
another app or device), nothing playing any more, playback moved to another device,
no active device, Premium required, or Spotify refusing or failing the start.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from setlist.errors import (
    NoActiveDevice,
    PremiumRequired,
    RateLimited,
    SpotifyAuthError,
    SpotifyError,
)
from setlist.players.base import Clock, Fault, MonotonicClock, VoiceState
from setlist.sources.spotify import Device, Playback, SpotifyClient, SpotifyRefused

#: The outgoing track keeps the device until its gain falls below this fraction of the
#: incoming one's (1.0, i.e. the crossing point, on devices without volume control).
HANDOFF = 0.25
#: Gains set this close together belong to one conductor tick: a handoff is judged only
#: once a tick's calls are over (the conductor ticks every 40 ms).
SETTLE = 0.01
#: After a handoff the incoming track rises over as long as it waited, within these.
MIN_RISE, MAX_RISE = 3.0, 8.0
#: Volume calls: at most one per VOLUME_INTERVAL s, one per SMALL_INTERVAL s when the
#: change is under BIG_STEP points; changes under MIN_STEP points are not sent.
VOLUME_INTERVAL, SMALL_INTERVAL = 0.5, 1.0
MIN_STEP, BIG_STEP = 2, 3
#: Read what is playing at most this often (seconds).
POLL = 2.0
#: A device volume this many points off the last one set was changed from elsewhere
#: (devices that round to coarser steps stay within it).
MANUAL_STEP = 5
#: Spotify reports the previous state for a moment after a command: no verdicts sooner.
GRACE = 2.5
#: With no voice to play for this long the device is paused (not between two calls of
#: one conductor tick, which releases a cue just before it starts the next).
IDLE_PAUSE = 0.5
#: A track that stops this close to its end has ended, not been paused by someone.
END_NEAR = 2.0
#: The worker looks at the clock at least this often (real seconds) when nothing calls.
WORKER_IDLE = 0.05
#: Decibels spanned by the LOG curve (librespot's default volume range).
DB_RANGE = 60.0

CONNECT_HINT = (
    "open Spotify on the room's computer or phone and play anything for a moment, then "
    "start the session again (or pick a device with --device); playback control needs "
    "Spotify Premium"
)

_TRACK_URI = re.compile(r"spotify:track:[A-Za-z0-9]+")
_TRACK_URL = re.compile(r"https?://open\.spotify\.com/(?:intl-[a-z-]+/)?track/([A-Za-z0-9]+)")
_EPS = 1e-6


class VolumeCurve(StrEnum):
    """How a device turns its volume percent into loudness (see the module docstring)."""

    CUBIC = "cubic"
    LOG = "log"


def volume_percent(
    gain: float, reference: float = 100.0, curve: VolumeCurve = VolumeCurve.CUBIC
) -> int:
    """Device volume percent for linear amplitude `gain` (clamped to 1.0 = `reference`)."""
    if not gain > 0:  # also NaN
        return 0
    g = min(1.0, gain)
    if curve is VolumeCurve.CUBIC:
        p = reference * g ** (1.0 / 3.0)
    else:
        p = reference + 100.0 * 20.0 * math.log10(g) / DB_RANGE
    return int(min(100, max(0, round(p))))


def track_uri(uri: str) -> str | None:
    """`spotify:track:ID` for a track uri or open.spotify.com link; None for anything else."""
    text = uri.strip()
    if _TRACK_URI.fullmatch(text):
        return text
    m = _TRACK_URL.match(text)
    return f"spotify:track:{m.group(1)}" if m else None


@dataclass(slots=True)
class _Voice:
    """One cue as the player sees it; its position runs on the clock while it plays."""

    key: int
    uri: str
    offset: float
    state: VoiceState = VoiceState.READY
    gain: float = 0.0
    seq: int = 0  # start order
    started_at: float | None = None  # clock time of start()
    base: float = 0.0  # file position at `since`
    since: float | None = None  # clock time the position runs from; None: it stands
    duration: float = 0.0  # as Spotify reports it (0: not known yet)

    def pos(self, now: float) -> float:
        p = self.base + (now - self.since if self.since is not None else 0.0)
        return min(p, self.duration) if self.duration > 0 else p

    def run(self, now: float) -> None:
        if self.since is None:
            self.since = now

    def stand(self, now: float) -> None:
        self.base, self.since = self.pos(now), None

    @property
    def sounding(self) -> bool:
        return self.state in (VoiceState.PLAYING, VoiceState.PAUSED)


@dataclass(frozen=True, slots=True)
class _Rise:
    """After a handoff: the device level climbs from `level` to the voice's gain."""

    t0: float
    level: float
    span: float


@dataclass(frozen=True, slots=True)
class _Want:
    """What the device should be doing, as the worker reads it at the start of a pass."""

    key: int | None
    uri: str
    gen: int
    playing: bool  # the lead voice is playing (not paused, failed or ended)
    paused: bool  # the lead voice is paused by the conductor
    idle: bool  # no voice has wanted the device for IDLE_PAUSE s


class SpotifyConnectPlayer:
    """`Player` on one Spotify Connect device; see the module docstring.

    `client` is used only by the player's worker thread from here on (the caller keeps
    ownership and closes it after `close()`). `reference`: the device volume a gain of
    1.0 maps to (default: the device's volume now). `pause_on_close` pauses the device
    and puts its volume back to where it was when the session began.
    """

    def __init__(
        self,
        client: SpotifyClient,
        device: Device,
        *,
        clock: Clock | None = None,
        reference: int | None = None,
        curve: VolumeCurve = VolumeCurve.CUBIC,
        pause_on_close: bool = True,
        handoff: float = HANDOFF,
    ) -> None:
        self.client = client
        self.device = device
        self.clock: Clock = clock or MonotonicClock()
        self.curve = curve
        self.pause_on_close = pause_on_close
        self.handoff = handoff
        self.original_volume = device.volume_percent
        if reference is None:
            reference = device.volume_percent if device.volume_percent is not None else 50
        self.reference = int(min(100, max(0, reference)))

        self._cond = threading.Condition()
        self._voices: dict[int, _Voice] = {}
        self._faults: list[Fault] = []
        self._notes: list[str] = []
        self._said: set[str] = set()
        self.errors: list[str] = []  # unexpected worker exceptions (bugs), for tests
        self._seq = 0
        self._lead: int | None = None
        self._gen = 0
        self._rise: _Rise | None = None
        self._idle_since: float | None = self.clock.now()
        self._changed_at = -math.inf  # clock time of the last call that changed a voice
        self._unsettled = False  # a handoff may be due once the tick's calls are over
        self._outgoing: tuple[float, float] | None = None  # (gain, when) of a released lead
        self._supports_volume = device.supports_volume

        # Worker-only state (touched by the worker thread alone once it runs).
        self._sent_gen = 0
        self._device_playing = False
        self._device_percent: int | None = device.volume_percent
        self._last_volume_at = -math.inf
        self._last_command_at = -math.inf
        self._last_poll_at = -math.inf
        self._blocked_until = -math.inf
        self._missing = 0
        self.counts = {"start": 0, "pause": 0, "volume": 0, "poll": 0}

        self._dirty = False
        self._requested = 0
        self._completed = 0
        self._closing = False
        self._stopped = False
        if not self._supports_volume:
            self._notice(
                f"Spotify device '{device.name}' does not let setlist set its volume: "
                "crossfades become cuts at their midpoint; set the room's level on the "
                "device itself"
            )
        elif self.reference == 0:
            self._notice(
                f"Spotify device '{device.name}' is at volume 0 %: the session will be "
                "silent; raise the device's volume before starting"
            )
        self._thread = threading.Thread(target=self._run, name="spotify-connect", daemon=True)
        self._thread.start()

    # -- Player protocol (the conductor's thread: never blocks on the network) ---------

    def open(self, key: int, uri: str, offset: float) -> None:
        """Remember the voice; only Spotify track uris can play here."""
        with self._cond:
            if key in self._voices:
                self._drop(key)
            canonical = track_uri(uri)
            voice = _Voice(key, canonical or uri, max(0.0, offset), base=max(0.0, offset))
            self._voices[key] = voice
            if canonical is None:
                kind = "a local file" if uri.startswith(("file:", "/")) else repr(uri)
                self._fail(
                    voice,
                    f"not a Spotify track ({kind}): the Spotify player plays only "
                    "spotify:track: uris; play local files with the VLC backend",
                )

    def start(self, key: int, gain: float) -> None:
        with self._cond:
            voice = self._voices.get(key)
            if voice is None:
                self._faults.append(Fault(key, "start of a voice that was never opened"))
                return
            if voice.state is not VoiceState.READY:
                return
            now = self.clock.now()
            self._seq += 1
            voice.seq, voice.started_at = self._seq, now
            voice.state = VoiceState.PLAYING
            voice.run(now)
            self._set(voice, gain)
            self._changed(now)

    def set_gain(self, key: int, gain: float) -> None:
        with self._cond:
            voice = self._voices.get(key)
            if voice is None or not voice.sounding:
                return
            now = self.clock.now()
            self._settle(now)
            self._set(voice, gain)
            self._changed(now)

    def pause(self, key: int) -> None:
        with self._cond:
            voice = self._voices.get(key)
            if voice is not None and voice.state is VoiceState.PLAYING:
                now = self.clock.now()
                voice.stand(now)
                voice.state = VoiceState.PAUSED
                self._changed(now)

    def resume(self, key: int) -> None:
        with self._cond:
            voice = self._voices.get(key)
            if voice is not None and voice.state is VoiceState.PAUSED:
                now = self.clock.now()
                voice.run(now)
                voice.state = VoiceState.PLAYING
                self._changed(now)

    def release(self, key: int) -> None:
        with self._cond:
            if key in self._voices:
                self._drop(key)
                self._changed(self.clock.now())

    def state(self, key: int) -> VoiceState:
        with self._cond:
            self._settle(self.clock.now())
            voice = self._voices.get(key)
            return VoiceState.GONE if voice is None else voice.state

    def position(self, key: int) -> float | None:
        with self._cond:
            voice = self._voices.get(key)
            if voice is None or voice.state is VoiceState.FAILED:
                return None
            return voice.pos(self.clock.now())

    def faults(self) -> list[Fault]:
        with self._cond:
            self._settle(self.clock.now())
            out, self._faults = self._faults, []
            return out

    def close(self, timeout: float = 15.0) -> None:
        """Stop the worker; it pauses the device and restores its volume first."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> SpotifyConnectPlayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- extras ------------------------------------------------------------------------

    def notices(self) -> list[str]:
        """Things the therapist should know that are not a voice's fault (drained)."""
        with self._cond:
            out, self._notes = self._notes, []
            return out

    @property
    def supports_volume(self) -> bool:
        with self._cond:
            return self._supports_volume

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until the worker has acted on everything called so far (tests, tools)."""
        with self._cond:
            self._requested += 1
            ticket = self._requested
            self._dirty = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._completed >= ticket or self._stopped, timeout)

    # -- the mix (under the lock) ---------------------------------------------------------

    def _wake(self) -> None:
        self._dirty = True
        self._cond.notify_all()

    def _notice(self, text: str) -> None:
        if text not in self._said:
            self._said.add(text)
            self._notes.append(text)

    def _set(self, voice: _Voice, gain: float) -> None:
        voice.gain = gain if gain > 0 else 0.0  # NaN too

    def _changed(self, now: float) -> None:
        """A voice changed: act at once where no comparison is needed, and let the
        worker know."""
        self._changed_at = now
        self._unsettled = True
        self._arrange(now, compare=False)
        self._wake()

    def _settle(self, now: float) -> None:
        """Once a tick's calls are over, judge a handoff on its consistent gains."""
        if self._unsettled and now - self._changed_at >= SETTLE - _EPS:
            self._unsettled = False
            self._arrange(now, compare=True)

    def _fail(self, voice: _Voice, reason: str) -> None:
        if voice.state is not VoiceState.FAILED:
            now = self.clock.now()
            voice.stand(now)
            voice.state = VoiceState.FAILED
            self._faults.append(Fault(voice.key, reason))
            self._arrange(now, compare=False)

    def _drop(self, key: int) -> None:
        voice = self._voices.pop(key, None)
        if key == self._lead:
            self._lead = None
            if voice is not None and voice.sounding:
                # The device still plays it at this level: a successor that was waiting
                # for it starts there rather than with a jump.
                self._outgoing = (voice.gain, self.clock.now())

    def _arrange(self, now: float, *, compare: bool) -> None:
        """Decide which voice owns the device (see the module docstring); `compare`
        allows a handoff judged on the two voices' gains."""
        lead = self._voices.get(self._lead) if self._lead is not None else None
        if lead is not None and not lead.sounding:
            lead = None  # failed or ended: its successor follows its own gain
        newer = [
            v
            for v in self._voices.values()
            if v.started_at is not None
            and v.sounding
            and v.key != self._lead
            and (lead is None or v.seq > lead.seq)
        ]
        cand = max(newer, key=lambda v: v.seq) if newer else None
        if cand is not None and cand.started_at is not None:
            if lead is None:
                out = self._outgoing
                waited = out is not None and cand.started_at < out[1] - _EPS
                self._switch(cand, now, out[0] if waited and out is not None else None)
            elif (
                compare
                and lead.state is VoiceState.PLAYING
                and cand.state is VoiceState.PLAYING
                and lead.gain < self._threshold * cand.gain
            ):
                self._switch(cand, now, lead.gain)
        current = self._voices.get(self._lead) if self._lead is not None else None
        if current is not None and current.sounding:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        if current is None:
            self._lead = None

    @property
    def _threshold(self) -> float:
        # Without volume control a handoff is a cut: at the crossing point, the midpoint.
        return self.handoff if self._supports_volume else 1.0

    def _switch(self, voice: _Voice, now: float, outgoing: float | None) -> None:
        """Give `voice` the device; `outgoing`: the level of the track it waited for."""
        self._lead = voice.key
        self._gen += 1
        self._rise = None
        if outgoing is not None and voice.started_at is not None:
            span = min(MAX_RISE, max(MIN_RISE, now - voice.started_at))
            self._rise = _Rise(now, min(outgoing, voice.gain), span)

    def _target(self, now: float) -> int | None:
        """Device volume the lead voice asks for now (None: no voice owns the device)."""
        lead = self._voices.get(self._lead) if self._lead is not None else None
        if lead is None or not lead.sounding:
            return None
        g = lead.gain
        rise = self._rise
        if rise is not None:
            x = (now - rise.t0) / rise.span
            if x >= 1.0:
                self._rise = None
            elif g > rise.level:
                g = rise.level + (g - rise.level) * (0.5 - 0.5 * math.cos(math.pi * max(0.0, x)))
        return volume_percent(g, self.reference, self.curve)

    def _want(self, now: float) -> _Want:
        lead = self._voices.get(self._lead) if self._lead is not None else None
        idle = self._idle_since is not None and now - self._idle_since >= IDLE_PAUSE - _EPS
        if lead is None:
            return _Want(None, "", self._gen, False, False, idle)
        return _Want(
            lead.key,
            lead.uri,
            self._gen,
            lead.state is VoiceState.PLAYING,
            lead.state is VoiceState.PAUSED,
            idle,
        )

    # -- the worker thread: all HTTP ------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._dirty and not self._closing:
                    self._cond.wait(WORKER_IDLE)
                if self._closing:
                    break
                self._dirty = False
                ticket = self._requested
            self._guarded(self._pass)
            with self._cond:
                self._completed = max(self._completed, ticket)
                self._cond.notify_all()
        self._guarded(self._finish)
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 -- a bug must not stop the music unsaid
            with self._cond:
                self.errors.append(repr(exc))
                self._notice(f"Spotify player error: {exc!r}")

    def _pass(self) -> None:
        now = self.clock.now()
        with self._cond:
            self._settle(now)
            want = self._want(now)
        if now < self._blocked_until:
            return  # Spotify asked for quiet; the voices' positions run on meanwhile
        self._transport(want)
        self._volume()
        self._poll(want)

    def _transport(self, want: _Want) -> None:
        if want.key is not None and want.playing:
            if want.gen != self._sent_gen or not self._device_playing:
                self._start(want)
            return
        if self._device_playing and (want.paused or want.idle):
            key = want.key if want.paused else None
            if self._attempt(key, "pause", lambda: self.client.pause(self.device.id)):
                self.counts["pause"] += 1
                self._device_playing = False
                self._last_command_at = self.clock.now()

    def _start(self, want: _Want) -> None:
        """Put the lead voice's track on the device where it should be now, quietly."""
        assert want.key is not None
        if self._supports_volume:
            with self._cond:
                target = self._target(self.clock.now())
            if target is not None and (
                self._device_percent is None or abs(self._device_percent - target) >= MIN_STEP
            ):
                self._send_volume(target)
        with self._cond:
            voice = self._voices.get(want.key)
            if voice is None or self._gen != want.gen or voice.state is not VoiceState.PLAYING:
                return  # changed meanwhile: the next pass sees the new state
            position = voice.pos(self.clock.now())
        ok = self._attempt(
            want.key,
            "start",
            lambda: self.client.start_playback(
                [want.uri], device_id=self.device.id, position=position
            ),
        )
        if ok:
            self.counts["start"] += 1
            self._sent_gen = want.gen
            self._device_playing = True
            self._last_command_at = self.clock.now()
            # First look once Spotify's report can be trusted (after the grace).
            self._last_poll_at = self._last_command_at + GRACE - POLL
            self._missing = 0

    def _volume(self) -> None:
        if not self._supports_volume:
            return
        now = self.clock.now()
        with self._cond:
            target = self._target(now)
        if target is None or target == self._device_percent:
            return
        current = self._device_percent
        delta = abs(target - current) if current is not None else 100
        if delta < MIN_STEP and target != 0:
            return
        interval = VOLUME_INTERVAL if delta >= BIG_STEP or target == 0 else SMALL_INTERVAL
        if now - self._last_volume_at < interval - _EPS:
            return
        self._send_volume(target)

    def _send_volume(self, percent: int) -> None:
        with self._cond:
            key = self._lead
        if self._attempt(key, "volume", lambda: self.client.set_volume(percent, self.device.id)):
            self.counts["volume"] += 1
            self._device_percent = percent
            self._last_volume_at = self.clock.now()

    def _poll(self, want: _Want) -> None:
        if want.key is None or not want.playing or not self._device_playing:
            return
        if self._sent_gen != want.gen:
            return
        now = self.clock.now()
        if now - self._last_poll_at < POLL - _EPS:
            return
        self._last_poll_at = now
        result: list[Playback | None] = []
        if self._attempt(want.key, "poll", lambda: result.append(self.client.playback())):
            self.counts["poll"] += 1
            with self._cond:
                self._observe(want, result[0], self.clock.now())

    def _observe(self, want: _Want, now_playing: Playback | None, now: float) -> None:
        """Check Spotify's report against the lead voice (under the lock)."""
        voice = self._voices.get(want.key) if want.key is not None else None
        if voice is None or self._gen != want.gen or voice.state is not VoiceState.PLAYING:
            return
        settled = now - self._last_command_at >= GRACE - _EPS
        pb = now_playing
        if pb is None or not pb.uri:
            if settled:
                self._missing += 1
                if self._missing >= 2:
                    self._fail(
                        voice,
                        "nothing is playing on the Spotify device any more (closed, "
                        "or stopped from another app?)",
                    )
            return
        if pb.uri != voice.uri:
            if settled:
                self._fail(
                    voice,
                    f"Spotify is playing {pb.uri} instead of this track: it was changed "
                    "from another app or device",
                )
            return
        if pb.device_id and pb.device_id != self.device.id and settled:
            self._fail(voice, "Spotify playback moved to another device")
            return
        if pb.duration > 0:
            voice.duration = pb.duration
        self._follow_manual_volume(pb, now)
        if pb.is_playing:
            self._missing = 0
            voice.base, voice.since = pb.progress, now
            return
        if not settled:
            return
        near_end = voice.duration > 0 and (
            pb.progress >= voice.duration - END_NEAR
            or (pb.progress < 1.0 and voice.pos(now) >= voice.duration - END_NEAR)
        )
        if near_end:
            voice.base, voice.since = voice.duration, None
            voice.state = VoiceState.ENDED
            self._device_playing = False
            self._arrange(now, compare=False)
            return
        self._missing += 1
        if self._missing >= 2:
            self._fail(
                voice,
                "Spotify paused the track on the device (paused from another app or device?)",
            )

    def _follow_manual_volume(self, pb: Playback, now: float) -> None:
        """A volume set on the device from another app (the therapist's phone, the
        speaker's knob) becomes the session's level, scaled for where the fades are now:
        otherwise the next fade would ramp back to the old level, a sudden rise in the
        room. Judged only once Spotify's report can include our own last change."""
        ours = self._device_percent
        if pb.volume is None or ours is None or not self._supports_volume:
            return
        if min(now - self._last_volume_at, now - self._last_command_at) < GRACE - _EPS:
            return
        seen = pb.volume
        if abs(seen - ours) < MANUAL_STEP:
            return
        if self.curve is VolumeCurve.LOG:
            reference = self.reference + (seen - ours)
        else:
            reference = self.reference * seen / ours if ours > 0 else seen
        self.reference = int(min(100, max(0, round(reference))))
        self._device_percent = seen
        self._notice(
            f"the volume of Spotify device '{self.device.name}' was set to {seen} % from "
            f"elsewhere: the session follows it (its full level is now {self.reference} %)"
        )

    def _attempt(self, key: int | None, what: str, call: Callable[[], Any]) -> bool:
        """Run one HTTP call; a refusal becomes a fault, a notice or a wait."""
        try:
            call()
        except RateLimited as exc:
            self._blocked_until = self.clock.now() + exc.retry_after
            with self._cond:
                self._notice(
                    f"Spotify's rate limit: no calls for {exc.retry_after:.0f} s; "
                    "the music on the device carries on meanwhile"
                )
            return False
        except SpotifyRefused as exc:
            with self._cond:
                refused = exc.reason == "VOLUME_CONTROL_DISALLOW" or exc.status == 403
                if what == "volume" and refused:
                    self._supports_volume = False
                    self._notice(
                        f"Spotify device '{self.device.name}' refuses volume changes: "
                        "crossfades become cuts at their midpoint"
                    )
                elif what in ("start", "pause") and key is not None:
                    self._fail_key(key, exc.message)
                else:
                    self._notice(exc.message)
            return False
        except (NoActiveDevice, PremiumRequired, SpotifyAuthError) as exc:
            with self._cond:
                if key is not None:
                    self._fail_key(key, exc.message)
                else:
                    self._notice(exc.message)
            return False
        except SpotifyError as exc:  # unreachable, kept failing: the start is what matters
            with self._cond:
                if what == "start" and key is not None:
                    self._fail_key(key, exc.message)
                else:
                    self._notice(exc.message)
            return False
        return True

    def _fail_key(self, key: int, reason: str) -> None:
        voice = self._voices.get(key)
        if voice is not None:
            self._fail(voice, reason)

    def _finish(self) -> None:
        """At close: pause what is playing and give the device its volume back."""
        if not self.pause_on_close:
            return
        if self._device_playing and self._attempt(
            None, "pause", lambda: self.client.pause(self.device.id)
        ):
            self.counts["pause"] += 1
            self._device_playing = False
        if (
            self._supports_volume
            and not self._device_playing
            and self.original_volume is not None
            and self._device_percent != self.original_volume
            and self.clock.now() >= self._blocked_until
        ):
            self._send_volume(self.original_volume)


def connect_player(
    client: SpotifyClient,
    device: str | None = None,
    *,
    clock: Clock | None = None,
    reference: int | None = None,
    curve: VolumeCurve = VolumeCurve.CUBIC,
    pause_on_close: bool = True,
) -> SpotifyConnectPlayer:
    """The player on the device called `device` (else the active one), with playback
    moved there and paused, so the session starts from silence.

    Raises NoActiveDevice or PremiumRequired with a one-line message and a hint.
    """
    try:
        found = client.find_device(device)
        if found.is_restricted:
            raise NoActiveDevice(
                f"Spotify device '{found.name}' does not accept remote control",
                hint="pick another device with --device ('setlist spotify devices')",
            )
        client.transfer(found.id, play=False)
        now = client.playback()
        if now is not None and now.is_playing:
            client.pause(found.id)
    except PremiumRequired:
        raise PremiumRequired(
            "Spotify Premium is required to play a session through Spotify Connect",
            hint="playback control needs a Premium account; without it, export the "
            "session as a playlist ('setlist spotify export') and play that",
        ) from None
    except NoActiveDevice as exc:
        hint = CONNECT_HINT if not exc.hint else f"{exc.hint}; {CONNECT_HINT}"
        raise NoActiveDevice(f"cannot play through Spotify: {exc.message}", hint=hint) from None
    except SpotifyRefused as exc:
        if exc.status == 404:
            raise NoActiveDevice(
                "cannot play through Spotify: the device went offline", hint=CONNECT_HINT
            ) from None
        raise
    return SpotifyConnectPlayer(
        client,
        found,
        clock=clock,
        reference=reference,
        curve=curve,
        pause_on_close=pause_on_close,
    )
