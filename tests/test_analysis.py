"""Analysis on generated signals: BS.1770/R128 conformance, streaming, tempo, intensity, voice.

Every signal is made here with numpy, so each expectation can be worked out by hand.
Loudness expectations: a sine of peak amplitude A has mean square A^2/2, so at -20 dBFS
(A = 0.1) one channel reads 10*log10(0.005) = -23.01 dB; K-weighting adds +0.69 dB at
997 Hz, which the -0.691 offset cancels. Mono -20 dBFS: -23.0 LUFS. Stereo -20 dBFS per
channel: channel powers add (+3.01 dB): -20.0 LUFS. Stereo -23 dBFS per channel (EBU Tech
3341 case 1): -23.0 LUFS. At 22.05 kHz the pre-warped shelf reads 0.03 dB higher at 1 kHz.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import butter, lfilter, sosfilt
from scipy.stats import spearmanr

from setlist.errors import AnalysisError
from setlist.library.analysis import (
    ENVELOPE_STEP,
    FEATURES_VERSION,
    LOUDNESS_FLOOR_LUFS,
    PEAK_FLOOR_DBFS,
    Analyzer,
    _BlockFilter,
    features_from_samples,
    k_weighting_sos,
)
from setlist.models import Features

RATE = 22050
F32 = npt.NDArray[np.float32]


# --------------------------------------------------------------------------- signals


def seconds(sec: float, rate: int = RATE) -> npt.NDArray[np.float64]:
    return np.arange(round(sec * rate)) / rate


def sine(freq: float, sec: float, dbfs: float = -20.0, rate: int = RATE) -> F32:
    """Sine with peak amplitude `dbfs` (AES17: a full-scale sine is 0 dBFS)."""
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * seconds(sec, rate))).astype(np.float32)


def normalise(x: npt.ArrayLike, lufs: float = -20.0, rate: int = RATE) -> F32:
    """Scale to a measured integrated loudness (as playback normalisation would)."""
    x = np.asarray(x, dtype=np.float32)
    measured = features_from_samples(x, rate).loudness_lufs
    return (x * 10 ** ((lufs - measured) / 20)).astype(np.float32)


def drone(sec: float, rate: int = RATE) -> F32:
    """Soft low drone: a few sines with a very slow, shallow swell."""
    t = seconds(sec, rate)
    x = sum(np.sin(2 * np.pi * f * t + k) / (k + 1) for k, f in enumerate((55, 110, 165.2, 220.3)))
    return (x * (1 + 0.05 * np.sin(2 * np.pi * 0.05 * t))).astype(np.float32)


def pad(sec: float, rate: int = RATE) -> F32:
    """Sawtooth chord (A major) swelling over 8 s."""
    t = seconds(sec, rate)
    x = sum(
        np.sin(2 * np.pi * f * k * t) / k for f in (220, 277.2, 329.6, 440) for k in range(1, 11)
    )
    return (x * (0.55 - 0.45 * np.cos(2 * np.pi * t / 8.0))).astype(np.float32)


def hit(sec: float, f_end: float, f_start: float, decay: float, rate: int = RATE) -> F32:
    """A kick-like pitch-dropping sine burst, faded out so its end does not click."""
    t = seconds(sec, rate)
    freq = f_end + (f_start - f_end) * np.exp(-t / 0.03)
    x = np.sin(2 * np.pi * np.cumsum(freq) / rate) * np.exp(-t / decay)
    fade = min(len(x), int(0.01 * rate))
    x[len(x) - fade :] *= np.linspace(1, 0, fade)
    return x.astype(np.float32)


def place(x: npt.NDArray[np.float64], event: npt.ArrayLike, times: npt.ArrayLike) -> None:
    ev = np.asarray(event)
    for t0 in np.asarray(times):
        i = round(float(t0) * RATE)
        j = min(len(x), i + len(ev))
        if i < len(x):
            x[i:j] += ev[: j - i]


def pulse(sec: float, bpm: float = 70.0) -> F32:
    """The pad, quieter, with a soft kick on every beat."""
    x = pad(sec).astype(np.float64) * 0.3
    place(x, hit(0.5, 50, 120, 0.15), np.arange(0, sec, 60 / bpm))
    return x.astype(np.float32)


def percussion(sec: float, bpm: float = 130.0, seed: int = 3) -> F32:
    """Dense bright kit: kick on beats, snare on 2 and 4, noisy hats on every 16th."""
    rng = np.random.default_rng(seed)
    beat = 60 / bpm
    x = np.zeros(round(sec * RATE))
    place(x, hit(0.4, 50, 160, 0.1), np.arange(0, sec, beat))
    t = seconds(0.25)
    high = butter(4, 6000, "hp", fs=RATE, output="sos")
    mid = butter(2, [1000, 5000], "bp", fs=RATE, output="sos")
    for t0 in np.arange(0, sec, beat / 4):
        place(x, sosfilt(high, rng.standard_normal(len(t))) * np.exp(-t / 0.03) * 0.5, [t0])
    for t0 in np.arange(beat, sec, 2 * beat):
        place(x, sosfilt(mid, rng.standard_normal(len(t))) * np.exp(-t / 0.08) * 1.2, [t0])
    return x.astype(np.float32)


def clicks(sec: float, bpm: float) -> F32:
    """A metronome of short kicks."""
    x = np.zeros(round(sec * RATE))
    place(x, hit(0.2, 60, 200, 0.04), np.arange(0.1, sec, 60 / bpm))
    return (x * 0.5).astype(np.float32)


def vowel(sec: float) -> F32:
    """Voice-like source: glottal pulses (f0 ~150 Hz with intonation and vibrato) through
    three formants (an /a/), in syllables at 4.5 Hz."""
    t = seconds(sec)
    f0 = 150 * (1 + 0.1 * np.sin(2 * np.pi * 0.3 * t) + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    pulses = np.diff(np.floor(np.cumsum(f0) / RATE), prepend=0.0)
    source = lfilter([1.0], [1.0, -0.95], pulses)  # spectral tilt of the glottal source
    out = np.zeros_like(source)
    for fc, bw, gain in ((700, 110, 1.0), (1220, 120, 0.7), (2600, 160, 0.3)):
        r = math.exp(-math.pi * bw / RATE)
        out += gain * lfilter(
            [1 - r], [1, -2 * r * math.cos(2 * math.pi * fc / RATE), r * r], source
        )
    syllables = np.clip(np.sin(2 * np.pi * 4.5 * t), 0, None) ** 0.7
    return (out * syllables).astype(np.float32)


@cache
def features_of(name: str) -> Features:
    """Features of a named 40 s synthetic piece at -20 LUFS (computed once per run)."""
    makers: dict[str, Callable[[float], F32]] = {
        "drone": drone,
        "pad": pad,
        "pulse": pulse,
        "percussion": percussion,
        "vowel": vowel,
    }
    return features_from_samples(normalise(makers[name](40.0)), RATE)


# --------------------------------------------------------------------------- loudness


def test_k_weighting_reproduces_bs1770_coefficients_at_48k() -> None:
    sos = k_weighting_sos(48000)
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241]
    shelf.append(0.73248077421585)
    highpass = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]
    assert sos[0] == pytest.approx(shelf, abs=1e-10)
    assert sos[1] == pytest.approx(highpass, abs=1e-10)


@pytest.mark.parametrize(("rate", "tol"), [(48000, 0.05), (44100, 0.05), (22050, 0.05)])
def test_sine_loudness_matches_the_worked_values(rate: int, tol: float) -> None:
    mono = sine(997, 20, -20, rate)
    assert features_from_samples(mono, rate).loudness_lufs == pytest.approx(-23.0, abs=tol)
    stereo = np.stack([mono, mono], axis=1)
    assert features_from_samples(stereo, rate).loudness_lufs == pytest.approx(-20.0, abs=tol)
    ebu_case1 = stereo * np.float32(10 ** (-3 / 20))
    assert features_from_samples(ebu_case1, rate).loudness_lufs == pytest.approx(-23.0, abs=tol)


def test_1khz_mono_reads_minus_23_at_every_common_rate() -> None:
    for rate in (8000, 16000, 22050, 32000, 44100, 48000, 96000):
        f = features_from_samples(sine(1000, 5, -20, rate), rate)
        assert f.loudness_lufs == pytest.approx(-23.0, abs=0.05), rate


def test_gating_ignores_silence_and_much_quieter_passages() -> None:
    tone = sine(997, 20, -20, 48000)
    with_silence = np.concatenate([tone, np.zeros(60 * 48000, np.float32)])
    assert features_from_samples(with_silence, 48000).loudness_lufs == pytest.approx(-23.0, abs=0.1)
    # -45 dBFS is 25 LU below: under the relative gate, so it does not pull the mean down.
    with_quiet = np.concatenate([tone, sine(997, 60, -45, 48000)])
    assert features_from_samples(with_quiet, 48000).loudness_lufs == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize("rate", [48000, 22050])
def test_loudness_range_of_alternating_levels(rate: int) -> None:
    loud, quiet = sine(1000, 10, -20, rate), sine(1000, 10, -30, rate)
    x = np.concatenate([loud, quiet] * 3)
    f = features_from_samples(np.stack([x, x], axis=1), rate)
    assert f.loudness_range_lu == pytest.approx(10.0, abs=0.5)
    # EBU Tech 3342 case 4: -50/-35/-20/-35/-50 dBFS for 20 s each gives 15 LU.
    levels = [-50, -35, -20, -35, -50]
    x = np.concatenate([sine(1000, 20, db, rate) for db in levels])
    assert features_from_samples(x, rate).loudness_range_lu == pytest.approx(15.0, abs=1.0)


def test_sample_peak_in_dbfs() -> None:
    x = sine(441, 2, -20.0)
    x[1000] = -0.5  # negative excursions count too
    assert features_from_samples(x, RATE).peak_dbfs == pytest.approx(-6.02, abs=0.01)


def test_silence_reports_documented_floors_not_infinities() -> None:
    f = features_from_samples(np.zeros((10 * RATE, 2), np.float32), RATE)
    assert f.loudness_lufs == LOUDNESS_FLOOR_LUFS == -70.0
    assert f.peak_dbfs == PEAK_FLOOR_DBFS
    assert f.intensity == 0.0
    assert f.tempo_bpm is None
    assert f.loudness_range_lu == 0.0
    assert f.lead_silence == pytest.approx(10.0)
    assert all(math.isfinite(v) for v in (f.brightness_hz, f.onset_rate, f.voice))


def test_leading_and_trailing_silence() -> None:
    rng = np.random.default_rng(0)
    body = normalise(pad(12.0), -18.0)
    x = np.concatenate([np.zeros(round(2.5 * RATE)), body, np.zeros(4 * RATE)])
    x = x + rng.standard_normal(len(x)) * 10 ** (-85 / 20)  # a realistic noise floor
    f = features_from_samples(x.astype(np.float32), RATE)
    assert f.lead_silence == pytest.approx(2.5, abs=0.2)
    assert f.trail_silence == pytest.approx(4.0, abs=0.2)


def reference_loudness(x: npt.ArrayLike, rate: int) -> float:
    """BS.1770-4 integrated loudness straight from the standard: scipy's per-sample
    sosfilt per channel, 400 ms blocks every 100 ms, absolute and relative gates."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    power = sum(sosfilt(k_weighting_sos(rate), x[:, c]) ** 2 for c in range(x.shape[1]))
    step = rate // 10
    blocks = np.array(
        [power[i : i + 4 * step].mean() for i in range(0, len(power) - 4 * step + 1, step)]
    )
    loud = -0.691 + 10 * np.log10(blocks)
    kept = blocks[loud > -70]
    relative = -0.691 + 10 * np.log10(kept.mean()) - 10
    return float(-0.691 + 10 * np.log10(blocks[(loud > -70) & (loud > relative)].mean()))


@pytest.mark.parametrize("rate", [22050, 48000])
def test_loudness_equals_the_standard_for_unlike_channels(rate: int) -> None:
    """Stereo is filtered as L+R and L-R; the channel powers must still sum as BS.1770's."""
    rng = np.random.default_rng(5)
    n = 12 * rate
    t = np.arange(n) / rate
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 0.7 * t) > 0.3) * 0.1
    bass = 0.3 * np.sin(2 * np.pi * 45 * t)
    cases = {
        "hard panned": np.stack([bursts, bass], axis=1),
        "out of phase": np.stack([bass + bursts, -(bass + bursts)], axis=1),
        "DC offset": np.stack([0.4 + 0.01 * bursts, 0.4 + 0.02 * bass], axis=1),
        "mono": bass + bursts,
    }
    for name, x in cases.items():
        x = x.astype(np.float32)
        got = features_from_samples(x, rate).loudness_lufs
        assert got == pytest.approx(reference_loudness(x, rate), abs=0.01), name


@pytest.mark.parametrize("rate", [8000, 22050, 48000, 96000])
def test_block_k_weighting_equals_sosfilt(rate: int) -> None:
    """The K-weighting runs as block matrix products in float32; it must be the same
    filter as scipy's sosfilt in float64, across calls, even on a large DC offset
    (the hardest case for float32 filter states)."""
    rng = np.random.default_rng(rate)
    x = (0.2 * rng.standard_normal(256 * 700) + 0.5).astype(np.float32)
    block = _BlockFilter(k_weighting_sos(rate), 256 * 400)
    state, outputs, i = np.zeros(block.order), [], 0
    for groups in (1, 399, 37, 263):
        y, state = block.run(x[i : i + 256 * groups], state)
        outputs.append(y.reshape(-1).copy())
        i += 256 * groups
    expected = sosfilt(k_weighting_sos(rate), x.astype(np.float64))
    assert np.abs(np.concatenate(outputs) - expected).max() < 1e-6


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize(("rate", "channels"), [(RATE, 2), (11025, 1)])
def test_streaming_in_random_blocks_equals_one_shot(rate: int, channels: int) -> None:
    """11025 Hz also exercises 100 ms segments of 1102.5 samples (boundaries alternate)."""
    rng = np.random.default_rng(7)
    left = percussion(25.0) * 0.3 + pad(25.0) * 0.05
    x = np.stack([left, np.roll(left, 333) * 0.8], axis=1).astype(np.float32)[:, :channels]
    whole = features_from_samples(x, rate)
    analyzer = Analyzer(rate, channels)
    i = 0
    sizes = [1, 7, 511, 512, 513, 1102, 1103, 2205, 4096, 65537, 100_000]
    while i < len(x):
        n = int(rng.choice(sizes))
        analyzer.feed(x[i : i + n])
        i += n
    streamed = analyzer.finish()
    for field in Features.__slots__:
        a, b = getattr(whole, field), getattr(streamed, field)
        if isinstance(a, tuple):
            assert a == pytest.approx(b, abs=1e-3), field
        elif isinstance(a, float):
            assert b == pytest.approx(a, rel=1e-4, abs=1e-3), field
        else:
            assert a == b, field


def test_mono_input_may_be_one_dimensional() -> None:
    x = sine(440, 3)
    assert features_from_samples(x, RATE) == features_from_samples(x[:, None], RATE)


def test_analyzer_rejects_misuse() -> None:
    analyzer = Analyzer(RATE, 2)
    with pytest.raises(ValueError, match="expected"):
        analyzer.feed(np.zeros((10, 1), np.float32))
    with pytest.raises(AnalysisError, match="no audio"):
        analyzer.finish()
    with pytest.raises(RuntimeError):
        analyzer.feed(np.zeros((10, 2), np.float32))
    with pytest.raises(AnalysisError, match="NaN"):
        Analyzer(RATE, 1).feed(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError):
        Analyzer(RATE, 6)


def test_features_are_well_formed() -> None:
    f = features_of("percussion")
    assert f.version == FEATURES_VERSION
    assert f.envelope_step == ENVELOPE_STEP
    assert len(f.envelope) == math.ceil(f.duration / ENVELOPE_STEP)
    assert all(0.0 <= v <= 1.0 for v in f.envelope)
    assert f.duration == pytest.approx(40.0)


# --------------------------------------------------------------------------- rhythm


@pytest.mark.parametrize("bpm", [60, 90, 120, 140])
def test_tempo_of_click_tracks_within_two_percent(bpm: float) -> None:
    f = features_from_samples(clicks(30.0, bpm), RATE)
    assert f.tempo_bpm is not None
    assert f.tempo_bpm == pytest.approx(bpm, rel=0.02)
    assert f.tempo_confidence > 0.8


def test_tempo_of_a_groove_with_sixteenth_hats() -> None:
    f = features_of("percussion")
    assert f.tempo_bpm == pytest.approx(130.0, rel=0.02)


def test_drone_has_no_tempo() -> None:
    f = features_of("drone")
    assert f.tempo_bpm is None or f.tempo_confidence < 0.3


def test_onset_rate_counts_events() -> None:
    assert features_from_samples(clicks(30.0, 120), RATE).onset_rate == pytest.approx(2.0, abs=0.1)
    assert features_of("drone").onset_rate < 0.1


def test_brightness_is_the_spectral_centroid() -> None:
    assert features_from_samples(sine(1000, 3), RATE).brightness_hz == pytest.approx(1000, abs=20)
    assert features_of("drone").brightness_hz < features_of("percussion").brightness_hz


# --------------------------------------------------------------------------- intensity


def test_intensity_orders_material_as_a_listener_would() -> None:
    names = ("drone", "pad", "pulse", "percussion")
    values = [features_of(name).intensity for name in names]
    assert all(features_of(n).loudness_lufs == pytest.approx(-20.0, abs=0.05) for n in names)
    for (lo_name, lo), (hi_name, hi) in zip(
        zip(names, values, strict=True), list(zip(names, values, strict=True))[1:], strict=False
    ):
        assert lo + 0.03 < hi, f"{lo_name} {lo} should be below {hi_name} {hi}"


def test_envelope_rises_over_a_crescendo() -> None:
    sec = 60.0
    gain = 10 ** (np.linspace(-36, 0, round(sec * RATE)) / 20)
    x = normalise(pulse(sec) * gain, -16.0)
    env = np.array(features_from_samples(x, RATE).envelope)
    assert env[-5:].mean() > env[:5].mean() + 0.15
    rho = spearmanr(np.arange(len(env)), env).statistic
    assert rho > 0.9


def test_envelope_follows_a_track_that_changes_character() -> None:
    calm, busy = normalise(drone(30.0)), normalise(percussion(30.0))
    env = features_from_samples(np.concatenate([calm, busy]), RATE).envelope
    assert max(env[:9]) + 0.2 < min(env[11:])


# --------------------------------------------------------------------------- voice


def test_voice_likelihood_separates_a_vowel_from_instruments() -> None:
    voice = features_of("vowel").voice
    assert voice > 0.6
    for name in ("pad", "percussion", "drone", "pulse"):
        assert features_of(name).voice < 0.15, name
