"""The libVLC player against real libVLC: generated files, the memory output as the ear.

`aout="amem"` hands each player's PCM (after libVLC's own volume) to a `Capture`, paced
like a sound card, so these tests hear what a room would: fades, pauses, blasts.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from setlist.errors import PlaybackError
from setlist.library.decode import decode_blocks
from setlist.players.base import Player, VoiceState
from setlist.players.vlc import (
    CAPTURE_RATE,
    MAX_GAIN,
    VlcPlayer,
    devices,
    gain_for_volume,
    volume_for_gain,
)
from setlist.testing import make_track
from setlist.timeline import Cue, FadeShape, Timeline
from tests.audiofiles import tone, write_audio

RATE = CAPTURE_RATE
WINDOW = 0.1  # envelope resolution, seconds


def _tone_file(tmp_path: Path, name: str, seconds: float, freq: float, level: float) -> Path:
    return write_audio(tmp_path / name, tone(seconds, freq, level, RATE), RATE)


def _rms(x: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _db(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 20 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), 1e-9))


def _envelope(x: npt.NDArray[np.float32], window: float = WINDOW) -> npt.NDArray[np.float64]:
    n = int(window * RATE)
    frames = len(x) // n
    mono = x[: frames * n].reshape(frames, n, -1).astype(np.float64)
    return np.sqrt(np.mean(mono**2, axis=(1, 2)))


def _amplitude_at(x: npt.NDArray[np.float32], freq: float) -> npt.NDArray[np.float64]:
    """Per-window amplitude of one sine (lock-in on `freq`): separates two voices."""
    n = int(WINDOW * RATE)
    frames = len(x) // n
    mono = x[: frames * n, 0].reshape(frames, n).astype(np.float64)
    t = np.arange(frames * n).reshape(frames, n) / RATE
    i = (mono * np.sin(2 * np.pi * freq * t)).mean(axis=1)
    q = (mono * np.cos(2 * np.pi * freq * t)).mean(axis=1)
    return 2 * np.hypot(i, q)


@pytest.fixture
def amem() -> VlcPlayer:
    player = VlcPlayer(aout="amem")
    yield player
    player.close()


def _session_start(player: VlcPlayer) -> float:
    assert player.capture is not None
    return time.monotonic()


# -- pure mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gain", "volume"),
    [(1.0, 100), (0.125, 50), (8.0, 200), (20.0, 200), (0.0, 0), (-1.0, 0), (0.001, 10)],
)
def test_volume_is_the_cube_root_of_amplitude_clamped(gain: float, volume: int) -> None:
    assert volume_for_gain(gain) == volume


def test_volume_steps_stay_fine_enough_for_fades() -> None:
    gains = np.geomspace(0.01, MAX_GAIN, 400)
    back = np.array([gain_for_volume(volume_for_gain(g)) for g in gains])
    error = np.abs(_db(back) - _db(gains))
    assert error.max() < 0.6  # half a 1 % step at -40 dB
    assert error[gains > 0.25].max() < 0.22  # near unity a step is 0.26 dB
    assert pytest.approx(8.0) == MAX_GAIN


# -- open, start, stop, faults ---------------------------------------------------------


def test_a_real_file_opens_silently_plays_and_releases(tmp_path: Path) -> None:
    path = _tone_file(tmp_path, "a.flac", 4.0, 440, 0.3)
    with VlcPlayer(aout="adummy") as player:
        assert isinstance(player, Player)
        player.open(1, path.as_uri(), offset=1.0)
        assert player.wait_ready(1) is VoiceState.READY
        assert player.volume(1) == 0
        time.sleep(0.3)  # READY holds its place: prerolled and paused at the offset
        assert player.position(1) == pytest.approx(1.0, abs=0.3)
        player.start(1, 0.8)
        assert player.state(1) is VoiceState.PLAYING
        assert player.volume(1) == volume_for_gain(0.8)
        time.sleep(0.8)
        position = player.position(1)
        assert position is not None and 1.3 < position < 2.5
        player.release(1)
        assert player.state(1) is VoiceState.GONE
        assert player.position(1) is None
        assert player.faults() == []


@pytest.mark.parametrize("name", ["garbage.mp3", "garbage.flac", "missing.flac"])
def test_an_unplayable_file_is_a_fault_within_a_second(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.startswith("garbage"):
        path.write_bytes(np.random.default_rng(5).bytes(200_000))
    with VlcPlayer(aout="adummy") as player:
        began = time.monotonic()
        player.open(7, path.as_uri(), offset=0.0)
        faults = []
        while not faults and time.monotonic() - began < 2.0:
            faults = player.faults()
            time.sleep(0.01)
        took = time.monotonic() - began
        assert [f.key for f in faults] == [7], faults
        assert took < 1.0
        assert player.state(7) is VoiceState.FAILED
        player.start(7, 1.0)  # starting a failed voice neither raises nor plays
        assert player.state(7) is VoiceState.FAILED
        assert player.faults() == []  # reported once
        # The slot is usable again after release: the next cue plays.
        player.release(7)
        good = _tone_file(tmp_path, "good.flac", 2.0, 330, 0.3)
        player.open(8, good.as_uri(), 0.0)
        assert player.wait_ready(8) is VoiceState.READY


def test_a_start_before_the_preroll_finishes_plays_at_the_asked_gain(
    tmp_path: Path, amem: VlcPlayer
) -> None:
    """A skip opens and starts at once: no blast, the voice plays when ready."""
    path = _tone_file(tmp_path, "a.flac", 3.0, 440, 0.6)
    t0 = _session_start(amem)
    amem.open(1, path.as_uri(), 0.0)
    amem.start(1, 0.5)
    for _ in range(30):  # a conductor's ticks: the player acts when it is called
        assert amem.faults() == []
        time.sleep(0.04)
    assert amem.state(1) is VoiceState.PLAYING
    assert amem.volume(1) == volume_for_gain(0.5)
    amem.release(1)
    env = _envelope(amem.capture.mix(t0))
    full = 0.6 / np.sqrt(2)
    assert env.max() < 0.5 * full * 1.15  # never above the asked gain
    assert np.sum(env > 0.5 * full * 0.85) >= 4  # and it did play


# -- what the output receives ----------------------------------------------------------


def test_no_blast_on_open_or_on_a_quiet_start(tmp_path: Path, amem: VlcPlayer) -> None:
    level = 0.9
    path = _tone_file(tmp_path, "loud.flac", 4.0, 440, level)
    t0 = _session_start(amem)
    amem.open(1, path.as_uri(), 0.5)
    assert amem.wait_ready(1) is VoiceState.READY
    time.sleep(0.4)
    before = amem.capture.mix(t0)
    started = time.monotonic()
    amem.start(1, 0.01)  # -40 dB: a fade-in's first step
    time.sleep(0.8)
    amem.release(1)
    full = level / np.sqrt(2)
    assert len(before) > 0
    # What leaks while prerolling stays under the guard (about -40 dB), never the track.
    assert _db(_envelope(before, 0.02).max() / full) < -30
    after = amem.capture.mix(started)
    env = _envelope(after, 0.02)
    assert env.max() < 0.01 * full * 1.3  # no first block at full volume
    assert np.sum(env > 0.01 * full * 0.7) >= 10  # the quiet start was heard


def test_half_gain_is_minus_6_db_in_the_output(tmp_path: Path, amem: VlcPlayer) -> None:
    path = _tone_file(tmp_path, "a.flac", 4.0, 440, 0.3)
    t0 = _session_start(amem)
    amem.open(1, path.as_uri(), 0.0)
    assert amem.wait_ready(1) is VoiceState.READY
    amem.start(1, 1.0)
    switch = time.monotonic()
    time.sleep(1.0)
    amem.set_gain(1, 0.5)
    changed = time.monotonic()
    amem.set_gain(1, 0.5)  # redundant: skipped, nothing changes
    time.sleep(1.0)
    amem.release(1)
    x = amem.capture.mix(t0)

    def span(a: float, b: float) -> float:
        return _rms(x[int((a - t0) * RATE) : int((b - t0) * RATE)])

    loud = span(switch + 0.3, changed - 0.05)
    soft = span(changed + 0.35, changed + 0.9)
    assert loud == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    assert 20 * np.log10(soft / loud) == pytest.approx(-6.02, abs=1.0)


def test_pause_and_resume(tmp_path: Path, amem: VlcPlayer) -> None:
    path = _tone_file(tmp_path, "a.flac", 4.0, 440, 0.3)
    t0 = _session_start(amem)
    amem.open(1, path.as_uri(), 0.0)
    assert amem.wait_ready(1) is VoiceState.READY
    amem.start(1, 1.0)
    time.sleep(0.8)
    amem.pause(1)
    paused = time.monotonic()
    assert amem.state(1) is VoiceState.PAUSED
    where = amem.position(1)
    time.sleep(0.8)
    assert amem.position(1) == where  # the file does not move while paused
    amem.resume(1)
    resumed = time.monotonic()
    assert amem.state(1) is VoiceState.PLAYING
    time.sleep(0.8)
    amem.release(1)
    x = amem.capture.mix(t0)
    full = 0.3 / np.sqrt(2)

    def span(a: float, b: float) -> float:
        return _rms(x[int((a - t0) * RATE) : int((b - t0) * RATE)])

    assert span(paused + 0.3, resumed) < 0.02 * full  # silence (after the buffer drains)
    assert span(resumed + 0.3, resumed + 0.7) == pytest.approx(full, rel=0.1)
    # Heard in total: about 0.8 s + 0.8 s of the file, not the 0.8 s paused as well.
    heard = np.sum(_envelope(x) > 0.5 * full) * WINDOW
    assert 1.2 < heard < 2.0


# -- devices ---------------------------------------------------------------------------


def test_devices_are_listed_and_unknown_ones_refused() -> None:
    assert devices("adummy") == []  # the dummy output has no devices
    alsa = devices("alsa")
    assert "null" in [d.id for d in alsa]
    with pytest.raises(PlaybackError) as err:
        VlcPlayer(aout="alsa", device="no-such-card")
    assert "no-such-card" in str(err.value)
    assert "null" in (err.value.hint or "")
    with pytest.raises(PlaybackError) as err:
        VlcPlayer(aout="adummy", device="speakers")
    assert "none" in (err.value.hint or "")


def test_a_named_device_plays(tmp_path: Path) -> None:
    """ALSA's null device: a real output module and device, silent on any machine."""
    path = _tone_file(tmp_path, "a.flac", 3.0, 440, 0.3)
    with VlcPlayer(aout="alsa", device="Default") as player:  # description match
        assert player.device == "default"
    with VlcPlayer(aout="alsa", device="null") as player:
        player.open(1, path.as_uri(), 0.0)
        assert player.wait_ready(1) is VoiceState.READY
        player.start(1, 0.5)
        time.sleep(0.6)
        position = player.position(1)
        assert position is not None and position > 0.2
        assert player.faults() == []


# -- the end-to-end proof --------------------------------------------------------------


def _expected(timeline: Timeline, files: dict[int, Path], length: float) -> npt.NDArray:
    """The timeline applied to the decoded source audio: what the room should hear."""
    n = int(length * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for cue in timeline.cues:
        src = np.concatenate(list(decode_blocks(files[cue.key], RATE)))[:, 0]
        idx = np.round((t - cue.start + cue.offset) * RATE).astype(int)
        ok = (t >= cue.start) & (t < cue.stop) & (idx >= 0) & (idx < len(src))
        part = np.zeros(n)
        part[ok] = src[idx[ok]]
        out += part * cue.gain_at(t)
    return out[:, None].astype(np.float32)


def test_crossfade_end_to_end_matches_the_timeline(tmp_path: Path, amem: VlcPlayer) -> None:
    """Two real players cross-fade over 3 s, driven at 25 Hz on the real clock."""
    freqs = {0: 330.0, 1: 550.0}
    files = {
        0: _tone_file(tmp_path, "a.flac", 6.0, freqs[0], 0.4),
        1: _tone_file(tmp_path, "b.mp3", 7.0, freqs[1], 0.4),
    }
    base = make_track(1, duration=7.0)
    a = Cue(0, replace(base, id=1, uri=files[0].as_uri()), "onset", 0.0, 5.0, fade_out=3.0)
    b = Cue(
        1,
        replace(base, id=2, uri=files[1].as_uri()),
        "onset",
        2.0,
        7.5,
        offset=0.5,
        fade_in=3.0,
        fade_out=1.5,
        gain=0.8,
        shape=FadeShape.EQUAL_POWER,
    )
    timeline = Timeline((a, b))
    length = timeline.length

    # Preload (both cues load within PRELOAD of the start), then drive at 25 Hz.
    for cue in timeline.cues:
        amem.open(cue.key, cue.track.uri, cue.offset)
    for cue in timeline.cues:
        assert amem.wait_ready(cue.key) is VoiceState.READY
    started: set[int] = set()
    t0 = time.monotonic()
    tick = 0
    while True:
        now = time.monotonic() - t0
        if now >= length:
            break
        gains = timeline.gains_at(now)[:, 0]
        for cue, gain in zip(timeline.cues, gains, strict=True):
            if cue.key not in started and now >= cue.start:
                amem.start(cue.key, float(gain))
                started.add(cue.key)
            elif cue.key in started:
                amem.set_gain(cue.key, float(gain))
        assert amem.faults() == []
        tick += 1
        time.sleep(max(0.0, t0 + tick * 0.04 - time.monotonic()))
    time.sleep(0.2)
    for cue in timeline.cues:
        amem.release(cue.key)

    heard = amem.capture.mix(t0, length)
    want = _expected(timeline, files, length)
    env_heard, env_want = _envelope(heard), _envelope(want)
    assert len(env_heard) == len(env_want)

    # Latency: the envelope that fits best lags by a small, device-like delay.
    fine_h, fine_w = _envelope(heard, 0.01), _envelope(want, 0.01)
    lags = range(31)  # 0..300 ms
    err = [np.mean(np.abs(fine_h[lag:] - fine_w[: len(fine_w) - lag])) for lag in lags]
    lag = int(np.argmin(err)) * 0.01
    assert lag <= 0.2

    # Crossfade timing: the two voices cross where the plan says (lock-in per tone).
    ha, hb = (_amplitude_at(heard, freqs[k]) for k in (0, 1))
    wa, wb = (_amplitude_at(want, freqs[k]) for k in (0, 1))
    span = slice(int(2.0 / WINDOW), int(5.0 / WINDOW))

    def crossing(x: npt.NDArray, y: npt.NDArray) -> float:
        d = _db(x[span]) - _db(y[span])
        i = int(np.argmax(d < 0))  # first window where b is louder
        frac = d[i - 1] / (d[i - 1] - d[i])
        return (span.start + i - 1 + frac + 0.5) * WINDOW

    assert crossing(ha, hb) == pytest.approx(crossing(wa, wb), abs=0.15)

    # Shape: per-100 ms level within 1.5 dB wherever it matters (above -40 dB), once the
    # constant output latency is taken out; the hard start at 0 s is left out.
    shift = round(lag / 0.01)
    env_heard = _envelope(heard[shift * int(0.01 * RATE) :])
    env_want = env_want[: len(env_heard)]
    audible = _db(env_want / 0.4) > -40
    audible[:3] = False
    diff = np.abs(_db(env_heard) - _db(env_want))[audible]
    assert np.percentile(diff, 95) < 1.5, np.round(diff, 2)
    # Equal power: the level through the crossfade moves as planned (no extra dip).
    mid = slice(int(2.5 / WINDOW), int(4.5 / WINDOW))
    swing_heard = _db(env_heard[mid].min() / env_heard[mid].max())
    swing_want = _db(env_want[mid].min() / env_want[mid].max())
    assert swing_heard == pytest.approx(swing_want, abs=1.0)
    # The offline render is the oracle: what the room heard is what `setlist render`
    # writes for the same timeline, within the same tolerance.
    from setlist.players.render import render

    oracle = tmp_path / "oracle.wav"
    render(timeline, oracle, rate=RATE, channels=2)
    rendered = np.concatenate(list(decode_blocks(oracle, rate=RATE)))
    env_render = _envelope(rendered)[: len(env_heard)]
    n = min(len(env_render), len(env_heard))
    diff_render = np.abs(_db(env_heard[:n]) - _db(env_render[:n]))[audible[:n]]
    assert np.percentile(diff_render, 95) < 1.5, np.round(diff_render, 2)
    assert crossing(ha, hb) == pytest.approx(
        crossing(*(_amplitude_at(rendered, freqs[k]) for k in (0, 1))), abs=0.15
    )
