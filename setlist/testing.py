"""Factories shipped with the package for tests, benchmarks and anyone extending setlist.

Synthetic tracks carry realistic features (an intensity envelope that drifts, a tempo
that rises with intensity, silences, loudness spread) so planner tests and benchmarks
exercise the same code paths as an analysed library, at any size, without audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from setlist.models import Candidates, Features, Track, candidates_from_tracks
from setlist.players.base import Clock, Fault, VoiceState

GENRES = ("ambient", "drone", "neoclassical", "piano", "choral", "downtempo", "world", "pulse")
ENVELOPE_STEP = 3.0


def make_track(
    track_id: int,
    *,
    intensity: float = 0.5,
    duration: float = 300.0,
    artist: str = "",
    title: str = "",
    tempo: float | None = 80.0,
    vocals: str = "none",
    tags: tuple[str, ...] = (),
    loudness: float = -20.0,
    peak: float = -3.0,
    slope: float = 0.0,
) -> Track:
    """One analysed track whose envelope runs from `intensity - slope/2` to `+ slope/2`."""
    steps = max(1, int(np.ceil(duration / ENVELOPE_STEP)))
    env = np.clip(intensity + slope * (np.linspace(0, 1, steps) - 0.5), 0.0, 1.0)
    features = Features(
        duration=duration,
        loudness_lufs=loudness,
        loudness_range_lu=6.0,
        peak_dbfs=peak,
        intensity=float(np.clip(intensity, 0.0, 1.0)),
        envelope=tuple(float(v) for v in env),
        envelope_step=ENVELOPE_STEP,
        tempo_bpm=tempo,
        tempo_confidence=0.8 if tempo else 0.0,
        lead_silence=0.0,
        trail_silence=0.0,
        brightness_hz=1500.0,
        onset_rate=1.0,
        voice=0.8 if vocals == "lyrics" else 0.0,
        version=1,
    )
    return Track(
        id=track_id,
        uri=f"file:///music/{track_id}.flac",
        title=title or f"Track {track_id}",
        duration=duration,
        artist=artist or f"Artist {track_id % 97}",
        tags=tags,
        vocals=vocals,
        features=features,
    )


def make_library(
    n: int, seed: int = 0, *, lyrics: float = 0.15, artists: int | None = None
) -> list[Track]:
    """`n` varied synthetic tracks spanning the intensity range, deterministic per seed."""
    rng = np.random.default_rng(seed)
    artists = artists or max(4, n // 8)
    intensity = rng.beta(1.3, 1.3, n)
    duration = np.clip(rng.lognormal(np.log(300), 0.35, n), 100, 900)
    slope = rng.normal(0, 0.15, n)
    loudness = -30 + 20 * intensity + rng.normal(0, 3, n)
    tracks = []
    for i in range(n):
        x = float(intensity[i])
        tempo = None if x < 0.2 and rng.random() < 0.7 else float(55 + 80 * x + rng.normal(0, 8))
        genre = GENRES[min(len(GENRES) - 1, int(x * len(GENRES)))]
        base = make_track(
            i + 1,
            intensity=x,
            duration=float(round(duration[i], 1)),
            artist=f"Artist {int(rng.integers(artists)):04d}",
            title=f"Piece {i + 1}",
            tempo=tempo,
            vocals="lyrics" if rng.random() < lyrics else "none",
            tags=(genre,),
            loudness=float(loudness[i]),
            peak=float(min(-0.3, loudness[i] + 14 + rng.normal(0, 2))),
            slope=float(slope[i]),
        )
        assert base.features is not None
        env = np.asarray(base.features.envelope)
        wobble = np.cumsum(rng.normal(0, 0.01, env.size))
        env = np.clip(env + wobble - wobble.mean(), 0, 1)
        features = replace(
            base.features,
            envelope=tuple(float(v) for v in env),
            intensity=float(np.clip(env.mean(), 0, 1)),
        )
        tracks.append(replace(base, features=features))
    return tracks


def make_candidates(n: int, seed: int = 0, **kwargs: float) -> Candidates:
    """`make_library` as planner input arrays."""
    return candidates_from_tracks(make_library(n, seed, **kwargs))  # type: ignore[arg-type]


class FakeClock:
    """A `Clock` in virtual time: `sleep` advances it, so sessions run instantly in tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.slept = 0.0

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.time += seconds
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.time += seconds


@dataclass(frozen=True, slots=True)
class PlayerCall:
    """One call a `FakePlayer` received, at the clock's (virtual) time."""

    time: float
    method: str
    key: int | None
    args: tuple[object, ...] = ()


@dataclass(slots=True)
class _FakeVoice:
    key: int
    uri: str
    offset: float
    state: VoiceState
    gain: float = 0.0
    started: float | None = None  # clock time of the last start/resume
    played: float = 0.0  # seconds played before `started`
    reported: bool = False  # its fault was queued


class FakePlayer:
    """A `Player` that makes no sound and records every call with its clock time.

    Faults are configured per uri, like what real files do: `fail_open` (cannot be
    opened: FAILED at once, a fault queued, as libVLC does for a missing file);
    `fail_after` (decoding fails that many seconds into playing: FAILED, fault queued);
    `stall_after` (the position stops moving, the state stays PLAYING: only a watchdog
    notices); `end_after` (the file runs out early: ENDED, no fault). `load_time` keeps
    voices LOADING that long after `open`, as a real player's preroll does.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        fail_open: Iterable[str] = (),
        fail_after: Mapping[str, float] | None = None,
        stall_after: Mapping[str, float] | None = None,
        end_after: Mapping[str, float] | None = None,
        load_time: float = 0.0,
    ) -> None:
        self.clock = clock or FakeClock(0.0)
        self.fail_open = set(fail_open)
        self.fail_after = dict(fail_after or {})
        self.stall_after = dict(stall_after or {})
        self.end_after = dict(end_after or {})
        self.load_time = load_time
        self.calls: list[PlayerCall] = []
        self.voices: dict[int, _FakeVoice] = {}
        self._opened_at: dict[int, float] = {}
        self._faults: list[Fault] = []
        self.closed = False

    # -- Player protocol ----------------------------------------------------------------

    def open(self, key: int, uri: str, offset: float) -> None:
        self._record("open", key, uri, offset)
        if key in self.voices:
            self.voices.pop(key)
        voice = _FakeVoice(key, uri, offset, VoiceState.LOADING)
        self.voices[key] = voice
        self._opened_at[key] = self.clock.now()
        if uri in self.fail_open:
            voice.state = VoiceState.FAILED
            voice.reported = True
            self._faults.append(Fault(key, f"file not found: {uri}"))
        elif self.load_time <= 0:
            voice.state = VoiceState.READY

    def start(self, key: int, gain: float) -> None:
        self._record("start", key, gain)
        voice = self._voice(key)
        if voice is None:
            self._faults.append(Fault(key, "start of a voice that was never opened"))
            return
        voice.gain = gain
        if voice.state in (VoiceState.LOADING, VoiceState.READY):
            voice.state = VoiceState.PLAYING
            voice.started = self.clock.now()

    def set_gain(self, key: int, gain: float) -> None:
        self._record("set_gain", key, gain)
        voice = self._voice(key)
        if voice is not None:
            voice.gain = gain

    def pause(self, key: int) -> None:
        self._record("pause", key)
        voice = self._voice(key)
        if voice is not None and voice.state is VoiceState.PLAYING:
            voice.played = self._played(voice)
            voice.started = None
            voice.state = VoiceState.PAUSED

    def resume(self, key: int) -> None:
        self._record("resume", key)
        voice = self._voice(key)
        if voice is not None and voice.state is VoiceState.PAUSED:
            voice.started = self.clock.now()
            voice.state = VoiceState.PLAYING

    def release(self, key: int) -> None:
        self._record("release", key)
        self.voices.pop(key, None)

    def state(self, key: int) -> VoiceState:
        voice = self._voice(key)
        return VoiceState.GONE if voice is None else voice.state

    def position(self, key: int) -> float | None:
        voice = self._voice(key)
        if voice is None or voice.state in (VoiceState.FAILED, VoiceState.GONE):
            return None
        return voice.offset + self._played(voice)

    def faults(self) -> list[Fault]:
        for voice in list(self.voices.values()):
            self._voice(voice.key)
        out, self._faults = self._faults, []
        return out

    def close(self) -> None:
        self._record("close", None)
        self.voices.clear()
        self.closed = True

    # -- for tests -----------------------------------------------------------------------

    def calls_to(self, method: str, key: int | None = None) -> list[PlayerCall]:
        return [c for c in self.calls if c.method == method and (key is None or c.key == key)]

    def gains(self, key: int) -> list[tuple[float, float]]:
        """(clock time, gain) of every start and set_gain for voice `key`."""
        return [
            (c.time, float(c.args[0]))  # type: ignore[arg-type]
            for c in self.calls
            if c.key == key and c.method in ("start", "set_gain")
        ]

    def started_at(self, key: int) -> float | None:
        starts = self.calls_to("start", key)
        return starts[0].time if starts else None

    def opened(self, key: int) -> PlayerCall | None:
        opens = self.calls_to("open", key)
        return opens[0] if opens else None

    # -- internals -----------------------------------------------------------------------

    def _record(self, method: str, key: int | None, *args: object) -> None:
        self.calls.append(PlayerCall(self.clock.now(), method, key, args))

    def _played(self, voice: _FakeVoice) -> float:
        played = voice.played
        if voice.started is not None:
            played += self.clock.now() - voice.started
        stall = self.stall_after.get(voice.uri)
        if stall is not None:
            played = min(played, stall)
        return played

    def _voice(self, key: int) -> _FakeVoice | None:
        """The voice with its scripted state brought up to the clock's time."""
        voice = self.voices.get(key)
        if voice is None:
            return None
        now = self.clock.now()
        if voice.state is VoiceState.LOADING and now - self._opened_at[key] >= self.load_time:
            voice.state = VoiceState.READY
        if voice.state is VoiceState.PLAYING:
            played = voice.played + (now - voice.started if voice.started is not None else 0.0)
            fail = self.fail_after.get(voice.uri)
            end = self.end_after.get(voice.uri)
            if fail is not None and played >= fail and not voice.reported:
                voice.state, voice.reported = VoiceState.FAILED, True
                self._faults.append(Fault(key, f"decoding failed after {fail:g} s"))
            elif end is not None and played >= end:
                voice.played, voice.started = end, None
                voice.state = VoiceState.ENDED
        return voice
