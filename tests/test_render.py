"""Offline render: sample-accurate against numpy, windows, faults, atomic writes, memory."""

from __future__ import annotations

import math
import tracemalloc
from dataclasses import replace
from pathlib import Path

import av
import click
import numpy as np
import pytest
from click.testing import CliRunner

from setlist.errors import PlaybackError
from setlist.exports import setlist_yaml
from setlist.library.index import path_to_uri
from setlist.models import (
    Arc,
    Curve,
    Keyframe,
    Phase,
    PhaseSpan,
    PlanMetrics,
    Setlist,
    SetlistEntry,
    Track,
)
from setlist.players import render as render_module
from setlist.players.render import CEILING, KNEE, check_sources, render, soft_clip
from setlist.testing import make_track
from setlist.timeline import Cue, FadeShape, Timeline
from tests.audiofiles import tone, write_audio

RATE = 44100
TOLERANCE = 1e-4  # 16-bit output quantises to 1.5e-5; anything misplaced is ~1e-2


def decode_all(path: Path, layout: str = "stereo") -> np.ndarray:
    """A whole file as float (n, channels), by the plainest route (no seeking, no trims)."""
    with av.open(str(path)) as c:
        res = av.AudioResampler(format="flt", layout=layout, rate=RATE)
        parts = []
        for frame in c.decode(audio=0):
            parts.extend(f.to_ndarray() for f in res.resample(frame))
        parts.extend(f.to_ndarray() for f in res.resample(None))
    ch = 1 if layout == "mono" else 2
    return np.concatenate(parts, axis=1).reshape(-1, ch)


def track_for(path: Path, track_id: int, duration: float) -> Track:
    return replace(make_track(track_id, duration=duration), uri=path_to_uri(path))


def expected_mix(
    tl: Timeline,
    sources: dict[int, np.ndarray],
    start: float,
    end: float,
    master: float = 1.0,
) -> np.ndarray:
    """The oracle: every output sample computed directly from the cue curves."""
    n = round((end - start) * RATE)
    t = start + np.arange(n) / RATE
    ch = next(iter(sources.values())).shape[1]
    out = np.zeros((n, ch))
    for cue in tl.cues:
        src = sources[cue.key]
        idx = np.rint((t - cue.start + cue.offset) * RATE).astype(np.int64)
        ok = (idx >= 0) & (idx < len(src)) & (t >= cue.start) & (t < cue.stop)
        g = cue.gain_at(t) * master
        out[ok] += src[idx[ok]] * g[ok, None]
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("render-src")
    # Different frequencies and a left/right difference, so a swapped, shifted or
    # mis-scaled source shows up as a large error.
    a = tone(6.0, 220.0, 0.3, RATE)
    a[:, 1] *= 0.5
    b = tone(6.0, 330.0, 0.35, RATE)
    b[:, 0] *= 0.7
    return {
        "a": write_audio(d / "a.wav", a, RATE),
        "b": write_audio(d / "b.flac", b, RATE),
        "low": write_audio(d / "low.flac", tone(6.0, 110.0, 0.3, 22050), 22050),
        "noise": write_audio(
            d / "noise.flac", 0.12 * np.random.default_rng(1).standard_normal((8 * RATE, 2)), RATE
        ),
    }


@pytest.fixture(scope="module")
def decoded(files: dict[str, Path]) -> dict[str, np.ndarray]:
    return {k: decode_all(p) for k, p in files.items() if k != "low"}


def two_cues(files: dict[str, Path], shape: FadeShape) -> Timeline:
    """A plays 0-6 s fading out over the last 3 s; B (1 s lead silence skipped) fades in."""
    ta, tb = track_for(files["a"], 1, 6.0), track_for(files["b"], 2, 6.0)
    return Timeline(
        (
            Cue(0, ta, "p", 0.0, 6.0, offset=0.0, fade_out=3.0, gain=1.2, shape=shape),
            Cue(1, tb, "p", 3.0, 8.0, offset=1.0, fade_in=3.0, gain=0.8, shape=shape),
        )
    )


def read_output(path: Path) -> np.ndarray:
    return decode_all(path)


# --- sample accuracy ------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(FadeShape))
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_crossfade_matches_numpy_sample_for_sample(
    tmp_path: Path,
    files: dict[str, Path],
    decoded: dict[str, np.ndarray],
    shape: FadeShape,
    suffix: str,
) -> None:
    tl = two_cues(files, shape)
    out = tmp_path / f"mix{suffix}"
    report = render(tl, out, block_seconds=1.7)  # blocks that split the fades oddly
    got = read_output(out)
    want = expected_mix(tl, {0: decoded["a"], 1: decoded["b"]}, 0.0, 8.0)
    assert got.shape == want.shape == (8 * RATE, 2)
    assert np.max(np.abs(got - want)) < TOLERANCE
    assert report.seconds == pytest.approx(8.0)
    assert report.faults == () and report.gaps == ()
    assert set(report.files) == {files["a"], files["b"]}
    assert report.peak_db == pytest.approx(20 * math.log10(np.max(np.abs(want))), abs=0.01)


@pytest.mark.parametrize(
    ("shape", "curve"),
    [
        (FadeShape.EQUAL_POWER, lambda p: np.sin(p * np.pi / 2)),
        (FadeShape.LINEAR, lambda p: p),
        (FadeShape.S_CURVE, lambda p: 0.5 - 0.5 * np.cos(p * np.pi)),
    ],
)
def test_fade_curves_are_the_documented_shapes(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray], shape, curve
) -> None:
    """Independent of `Cue.gain_at`: the curves written out by hand."""
    cue = Cue(0, track_for(files["noise"], 1, 8.0), "p", 0.0, 6.0, 0.5, 2.0, 2.5, 0.9, shape)
    out = tmp_path / "one.wav"
    render(Timeline((cue,)), out)
    t = np.arange(6 * RATE) / RATE
    env = 0.9 * curve(np.clip(t / 2.0, 0, 1)) * curve(np.clip((6.0 - t) / 2.5, 0, 1))
    want = decoded["noise"][round(0.5 * RATE) : round(6.5 * RATE)] * env[:, None]
    assert np.max(np.abs(read_output(out) - want)) < TOLERANCE


def test_start_end_window_is_the_same_audio_as_the_full_render(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray]
) -> None:
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    full, part = tmp_path / "full.flac", tmp_path / "part.flac"
    render(tl, full)
    # From 4.25 s B's decoder seeks to 2.25 s of its file (past the seek margin).
    report = render(tl, part, start=4.25, end=7.5)
    got = read_output(part)
    assert report.seconds == pytest.approx(3.25)
    assert got.shape == (round(3.25 * RATE), 2)
    assert np.max(np.abs(got - read_output(full)[round(4.25 * RATE) : round(7.5 * RATE)])) < 1e-6


@pytest.mark.parametrize("key", ["a", "b", "noise"])
def test_deep_offsets_seek_sample_exactly(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray], key: str
) -> None:
    cue = Cue(0, track_for(files[key], 1, 6.0), "p", 1.0, 3.5, offset=3.3, gain=1.0)
    out = tmp_path / "deep.wav"
    render(Timeline((cue,)), out)
    want = expected_mix(Timeline((cue,)), {0: decoded[key]}, 0.0, 3.5)
    got = read_output(out)
    assert np.max(np.abs(got - want)) < TOLERANCE
    assert np.all(got[: RATE - 1] == 0)  # nothing before the cue starts


def test_master_gain_and_mono_output(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray]
) -> None:
    tl = two_cues(files, FadeShape.LINEAR)
    out = tmp_path / "mono.wav"
    report = render(tl, out, channels=1, master_db=-6.0)
    assert report.channels == 1
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.channels == 1
    got = decode_all(out, "mono")
    # FFmpeg's standard downmix of the stereo sources, then the same curves.
    mono = {k: decode_all(files[k], "mono") for k in ("a", "b")}
    want = expected_mix(tl, {0: mono["a"], 1: mono["b"]}, 0.0, 8.0, master=10 ** (-6 / 20))
    assert np.max(np.abs(got - want)) < TOLERANCE


def test_other_source_rates_are_resampled_in_time(tmp_path: Path, files: dict[str, Path]) -> None:
    """A 22.05 kHz file lands at the same moments at 44.1 kHz (no resampler delay)."""
    cue = Cue(0, track_for(files["low"], 1, 6.0), "p", 0.5, 5.0, offset=1.25, gain=1.0)
    out = tmp_path / "up.wav"
    render(Timeline((cue,)), out)
    got = read_output(out)[:, 0]
    t = np.arange(len(got)) / RATE
    want = np.where(t >= 0.5, 0.3 * np.sin(2 * np.pi * 110.0 * (t - 0.5 + 1.25)), 0.0)
    body = slice(RATE, 4 * RATE)  # away from the hard start
    assert np.max(np.abs(got[body] - want[body])) < 2e-3


def test_ogg_vorbis_output_is_the_same_music(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray]
) -> None:
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    out = tmp_path / "mix.ogg"
    render(tl, out)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "vorbis"
    got = read_output(out)
    want = expected_mix(tl, {0: decoded["a"], 1: decoded["b"]}, 0.0, 8.0)
    assert abs(len(got) - len(want)) < 0.05 * RATE
    n = min(len(got), len(want))
    err = np.sqrt(np.mean((got[:n] - want[:n]) ** 2)) / np.sqrt(np.mean(want**2))
    assert err < 0.1  # lossy, but aligned and the same signal


def test_overs_are_softened_and_reported(tmp_path: Path, files: dict[str, Path]) -> None:
    cue = Cue(0, track_for(files["a"], 1, 6.0), "p", 0.0, 2.0, gain=4.0)  # peak 1.2
    out = tmp_path / "hot.wav"
    report = render(Timeline((cue,)), out)
    got = read_output(out)
    assert report.peak_db == pytest.approx(20 * math.log10(1.2), abs=0.01)
    assert report.limited > 0
    assert np.max(np.abs(got)) <= CEILING  # never past the plan's -1 dBFS ceiling
    assert np.max(np.abs(got)) > KNEE  # softened, not squashed to the knee


def test_soft_clip_leaves_everything_below_the_knee_alone() -> None:
    x = np.linspace(-1.5, 1.5, 10001, dtype=np.float32)
    y = x.copy()
    n = soft_clip(y)
    below = np.abs(x) <= KNEE
    assert n == int(np.count_nonzero(~below))
    assert np.array_equal(y[below], x[below])
    assert np.all(np.abs(y) < CEILING)
    assert np.all(np.diff(y) >= 0)  # still monotonic: no folding back


# --- faults ---------------------------------------------------------------------------


def test_missing_file_fails_loudly_and_writes_nothing(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    gone = tmp_path / "gone.flac"
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    tl = tl.with_cues([tl.cues[0], replace(tl.cues[1], track=track_for(gone, 2, 6.0))])
    out = tmp_path / "out" / "mix.flac"
    with pytest.raises(PlaybackError) as err:
        render(tl, out)
    assert str(gone) in err.value.message
    assert "--allow-missing" in (err.value.hint or "")
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_allowed_missing_file_is_silent_reported_and_the_rest_intact(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray]
) -> None:
    gone = tmp_path / "gone.flac"
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    tl = tl.with_cues([tl.cues[0], replace(tl.cues[1], track=track_for(gone, 2, 6.0))])
    out = tmp_path / "mix.wav"
    report = render(tl, out, allow_faults=True)
    assert [f.key for f in report.faults] == [1]
    assert str(gone) in report.faults[0].reason
    assert report.gaps == ((1, 3.0, 8.0),)
    got = read_output(out)
    only_a = Timeline((tl.cues[0],))
    assert np.max(np.abs(got - expected_mix(only_a, {0: decoded["a"]}, 0.0, 8.0))) < TOLERANCE
    assert np.all(got[6 * RATE :] == 0)


def test_unreadable_spotify_and_short_sources_are_all_reported(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all" * 100)
    spotify = replace(make_track(3), uri="spotify:track:abc")
    cues = (
        Cue(0, track_for(junk, 1, 6.0), "p", 0.0, 4.0),
        Cue(1, spotify, "p", 3.0, 7.0),
        Cue(2, track_for(files["a"], 4, 6.0), "p", 6.0, 16.0),  # file is only 6 s
        Cue(3, track_for(files["b"], 5, 6.0), "p", 15.0, 20.0, offset=0.5),  # fine
    )
    faults = check_sources(Timeline(cues))
    assert [f.key for f in faults] == [0, 1, 2]
    assert str(junk) in faults[0].reason
    assert "spotify:track:abc" in faults[1].reason and "local" in faults[1].reason
    assert str(files["a"]) in faults[2].reason and "6.0 s long" in faults[2].reason
    assert check_sources(Timeline(cues), start=16.5) == []  # only what the window plays


def _damaged(tmp_path: Path, files: dict[str, Path]) -> Path:
    data = bytearray(files["noise"].read_bytes())
    mid = len(data) // 2
    data[mid : mid + 20000] = np.random.default_rng(2).integers(0, 256, 20000, np.uint8).tobytes()
    bad = tmp_path / "damaged.flac"
    bad.write_bytes(bytes(data))
    return bad


def test_mid_stream_corruption_aborts_and_keeps_the_old_output(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    bad = _damaged(tmp_path, files)
    tl = Timeline((Cue(0, track_for(bad, 1, 8.0), "p", 0.0, 8.0),))
    assert check_sources(tl) == []  # headers are fine: only decoding finds it
    out = tmp_path / "mix.flac"
    out.write_bytes(b"yesterday's render")
    with pytest.raises(PlaybackError, match="corrupt audio"):
        render(tl, out, block_seconds=1.0)
    assert out.read_bytes() == b"yesterday's render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.flac", "mix.flac"]


def test_mid_stream_corruption_allowed_goes_silent_from_the_damage(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    bad = _damaged(tmp_path, files)
    tl = Timeline((Cue(0, track_for(bad, 1, 8.0), "p", 0.0, 8.0),))
    out = tmp_path / "mix.wav"
    report = render(tl, out, allow_faults=True, block_seconds=1.0)
    assert len(report.faults) == 1 and "corrupt audio" in report.faults[0].reason
    ((key, a, b),) = report.gaps
    assert key == 0 and 2.0 <= a <= 5.0 and b == pytest.approx(8.0)
    got = read_output(out)
    assert np.all(got[round(a * RATE) :] == 0)
    assert np.sqrt(np.mean(got[:RATE] ** 2)) > 0.1  # the good part is there


def test_a_truncated_file_is_caught_while_rendering(tmp_path: Path, files: dict[str, Path]) -> None:
    """A cut FLAC still declares its full length, so only decoding it notices."""
    data = files["noise"].read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])
    tl = Timeline((Cue(0, track_for(cut, 1, 8.0), "p", 0.0, 8.0),))
    assert check_sources(tl) == []
    with pytest.raises(PlaybackError, match=r"cut\.flac"):
        render(tl, tmp_path / "mix.wav")
    assert not (tmp_path / "mix.wav").exists()
    report = render(tl, tmp_path / "mix.wav", allow_faults=True)
    assert "cut.flac" in report.faults[0].reason
    assert report.gaps[0][2] == pytest.approx(8.0) and report.gaps[0][1] < 5.0


def test_a_file_that_ends_early_is_a_fault(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding ends cleanly 4 s short of a header that claims more: not silently padded."""
    short = write_audio(tmp_path / "short.wav", tone(4.0, 220.0, 0.3, RATE), RATE)
    real_probe = render_module.probe
    monkeypatch.setattr(render_module, "probe", lambda p: replace(real_probe(p), duration=8.0))
    tl = Timeline((Cue(0, track_for(short, 1, 8.0), "p", 0.0, 8.0),))
    assert check_sources(tl) == []
    with pytest.raises(PlaybackError, match=r"short.wav: ended 4.0 s before its planned stop"):
        render(tl, tmp_path / "mix.wav")
    assert not (tmp_path / "mix.wav").exists()
    report = render(tl, tmp_path / "mix.wav", allow_faults=True)
    assert report.gaps == ((0, pytest.approx(4.0), pytest.approx(8.0)),)
    got = read_output(tmp_path / "mix.wav")
    assert np.all(got[4 * RATE :] == 0) and np.max(np.abs(got[: 4 * RATE])) > 0.29


def test_blocks_after_a_file_ends_are_silent_not_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mixer reuses one buffer: blocks after a file runs out must not repeat old audio."""
    short = write_audio(tmp_path / "short.wav", tone(4.0, 220.0, 0.3, RATE), RATE)
    real_probe = render_module.probe
    monkeypatch.setattr(render_module, "probe", lambda p: replace(real_probe(p), duration=8.0))
    tl = Timeline((Cue(0, track_for(short, 1, 8.0), "p", 0.0, 8.0),))
    render(tl, tmp_path / "mix.wav", allow_faults=True, block_seconds=1.3)
    got = read_output(tmp_path / "mix.wav")
    want = decode_all(short)
    assert got.shape == (8 * RATE, 2)
    assert np.max(np.abs(got[: 4 * RATE] - want[: 4 * RATE])) < TOLERANCE
    assert np.all(got[4 * RATE :] == 0)


def test_interrupted_render_leaves_no_partial_file(tmp_path: Path, files: dict[str, Path]) -> None:
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    out = tmp_path / "mix.flac"
    seen: list[float] = []

    def stop(done: float, total: float) -> None:
        seen.append(done)
        if done > 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(tl, out, block_seconds=1.0, progress=stop)
    assert seen == [1.0, 2.0, 3.0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_long_renders_encode_in_a_child_process_with_the_same_result(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    here = tmp_path / f"here{suffix}"
    render(tl, here)
    monkeypatch.setattr(render_module, "ENCODER_PROCESS_FROM", 0.0)
    spawned: list[object] = []
    real = render_module._EncoderProcess
    monkeypatch.setattr(render_module, "_EncoderProcess", lambda *a: spawned.append(a) or real(*a))
    child = tmp_path / f"child{suffix}"
    render(tl, child)
    assert len(spawned) == 1
    a, b = read_output(here), read_output(child)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) < (1e-6 if suffix == ".flac" else 0.05)


def test_a_failing_encoder_is_an_error_and_leaves_no_file(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_module, "ENCODER_PROCESS_FROM", 0.0)
    monkeypatch.setattr(render_module, "_ENCODER_CHILD", "import sys; sys.exit('disk full')")
    out = tmp_path / "mix.flac"
    with pytest.raises(PlaybackError, match="encoder failed: disk full"):
        render(two_cues(files, FadeShape.EQUAL_POWER), out, block_seconds=0.5)
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_are_one_line_errors(tmp_path: Path, files: dict[str, Path]) -> None:
    tl = two_cues(files, FadeShape.EQUAL_POWER)
    with pytest.raises(PlaybackError, match=r"\.mp3"):
        render(tl, tmp_path / "x.mp3")
    with pytest.raises(PlaybackError, match="nothing to render"):
        render(tl, tmp_path / "x.wav", start=9.0)
    with pytest.raises(PlaybackError, match="nothing to render"):
        render(tl, tmp_path / "x.wav", start=5.0, end=4.0)
    assert list(tmp_path.iterdir()) == []


def test_output_gets_ordinary_permissions(tmp_path: Path, files: dict[str, Path]) -> None:
    out = tmp_path / "mix.wav"
    render(two_cues(files, FadeShape.LINEAR), out, end=1.0)
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- memory ---------------------------------------------------------------------------


def _looped(files: dict[str, Path], cues: int) -> Timeline:
    """`cues` tracks of 6-8 s, overlapping by 2 s, cycling through three files."""
    out, t = [], 0.0
    for i in range(cues):
        key = ("a", "b", "noise")[i % 3]
        length = 8.0 if key == "noise" else 6.0
        tr = track_for(files[key], i + 1, length)
        out.append(Cue(i, tr, "p", t, t + length - 0.5, 0.5, 2.0 if i else 0.0, 2.0))
        t += length - 2.5
    return Timeline(tuple(out))


def _peak_traced(tl: Timeline, out: Path) -> tuple[int, float]:
    tracemalloc.start()
    try:
        report = render(tl, out, rate=16000, block_seconds=2.0)
        return tracemalloc.get_traced_memory()[1], report.seconds
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_session_length(tmp_path: Path, files: dict[str, Path]) -> None:
    short, short_len = _peak_traced(_looped(files, 6), tmp_path / "short.wav")
    long, long_len = _peak_traced(_looped(files, 72), tmp_path / "long.wav")
    assert long_len > 10 * short_len
    # The long mix alone is ~38 MB of float32; a streamed render holds a few blocks
    # (~4 MB here, give or take what the writer thread holds at that moment).
    assert long < short * 1.5 + 1024 * 1024, (short, long)
    assert long < 8 * 1024 * 1024


# --- the command ----------------------------------------------------------------------


def _setlist_file(tmp_path: Path, files: dict[str, Path], missing: bool = False) -> Path:
    arc = Arc(
        name="tiny",
        phases=(Phase("settle", 10.0, Curve((Keyframe(0.3), Keyframe(0.3))), crossfade=3.0),),
    )
    b = tmp_path / "gone.flac" if missing else files["b"]
    entries = (
        SetlistEntry(track_for(files["a"], 1, 6.0), "settle", 0.0, 6.0, fade_out=3.0),
        SetlistEntry(track_for(b, 2, 6.0), "settle", 3.0, 5.0, offset=1.0, fade_in=3.0),
    )
    s = Setlist(
        arc=arc,
        entries=entries,
        phases=(PhaseSpan("settle", 0.0, 10.0, 0.0, 8.0),),
        metrics=PlanMetrics(0.0, 0.0, 0, 0.0, 0.0),
    )
    path = tmp_path / "tiny.setlist.yaml"
    path.write_text(setlist_yaml(s), encoding="utf-8")
    return path


def _command() -> tuple[click.Command, list[str]]:
    """`setlist render` as registered, else the command under the same error boundary."""
    from setlist.cli import SetlistGroup, cli

    if "render" in cli.commands:
        return cli, ["render"]
    from setlist.cli_render import render as command

    return SetlistGroup(commands={"render": command}), ["render"]


def test_cli_renders_a_window_with_progress_lines(
    tmp_path: Path, files: dict[str, Path], decoded: dict[str, np.ndarray]
) -> None:
    command, prefix = _command()
    playlist = _setlist_file(tmp_path, files)
    out = tmp_path / "preview.flac"
    args = [*prefix, str(playlist), "-o", str(out), "--start", "0:02", "--end", "0:07"]
    res = CliRunner().invoke(command, [*args, "--fade-shape", "linear"])
    assert res.exit_code == 0, res.output
    assert "rendered 0:00:05 to" in res.stdout and "peak" in res.stdout
    assert "rendering preview.flac: 0:00:05 / 0:00:05" in res.stderr
    tl = two_cues(files, FadeShape.LINEAR)
    tl = tl.with_cues([replace(c, gain=1.0) for c in tl.cues])
    want = expected_mix(tl, {0: decoded["a"], 1: decoded["b"]}, 2.0, 7.0)
    assert np.max(np.abs(read_output(out) - want)) < TOLERANCE


def test_cli_missing_file_exits_non_zero_naming_it(tmp_path: Path, files: dict[str, Path]) -> None:
    command, prefix = _command()
    playlist = _setlist_file(tmp_path, files, missing=True)
    out = tmp_path / "mix.wav"
    res = CliRunner().invoke(command, [*prefix, str(playlist), "-o", str(out)])
    assert res.exit_code == 1
    assert str(tmp_path / "gone.flac") in res.stderr
    assert "--allow-missing" in res.stderr
    assert not out.exists()
    res = CliRunner().invoke(command, [*prefix, str(playlist), "-o", str(out), "--allow-missing"])
    assert res.exit_code == 0, res.output
    assert "warning" in res.stderr and "gone.flac" in res.stderr
    assert "silent 0:00:03-0:00:08" in res.stderr
    assert out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "soon"], "is not a session time"),
        (["-o", "x.mp3"], ".flac, .wav or .ogg"),
    ],
)
def test_cli_refuses_bad_options(
    tmp_path: Path, files: dict[str, Path], extra: list[str], message: str
) -> None:
    command, prefix = _command()
    playlist = _setlist_file(tmp_path, files)
    res = CliRunner().invoke(
        command, [*prefix, str(playlist), "-o", str(tmp_path / "m.wav"), *extra]
    )
    assert res.exit_code == 2
    assert message in res.output
