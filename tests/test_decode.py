"""Decoding real files written here with PyAV: formats, channels, failures, bounded memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from setlist.errors import AnalysisError
from setlist.library.analysis import features_from_samples
from setlist.library.decode import AudioInfo, analyze_file, decode_blocks, probe

#: suffix -> (encoder, sample format it takes, sample rate to write at)
FORMATS: dict[str, tuple[str, str, int]] = {
    ".flac": ("flac", "s16", 44100),
    ".mp3": ("libmp3lame", "fltp", 44100),
    ".ogg": ("libopus", "flt", 48000),  # Ogg Opus; FFmpeg's own Vorbis encoder is stereo-only
    ".opus": ("libopus", "flt", 48000),
    ".m4a": ("aac", "fltp", 44100),
    ".wav": ("pcm_s16le", "s16", 44100),
}
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_audio(
    path: Path, samples: npt.ArrayLike, rate: int, codec: str | None = None, fmt: str | None = None
) -> Path:
    """Encode (n,) or (n, channels) float samples into `path` with PyAV, chunk by chunk."""
    x = np.asarray(samples, dtype=np.float32)
    x = x[:, None] if x.ndim == 1 else x
    default_codec, default_fmt, _ = FORMATS[path.suffix]
    codec, fmt = codec or default_codec, fmt or default_fmt
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=LAYOUTS[x.shape[1]], format=fmt)
        for i in range(0, len(x), 1 << 15):
            chunk = x[i : i + (1 << 15)]
            if fmt == "s16":
                data = (np.clip(chunk, -1, 1) * 32767).round().astype(np.int16).reshape(1, -1)
            elif fmt == "flt":
                data = np.ascontiguousarray(chunk.reshape(1, -1))
            else:
                data = np.ascontiguousarray(chunk.T)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=LAYOUTS[x.shape[1]])
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tones(sec: float, rate: int, channels: int) -> npt.NDArray[np.float32]:
    """A different tone per channel, so a lost or merged channel shows."""
    t = np.arange(round(sec * rate)) / rate
    cols = [0.3 * np.sin(2 * np.pi * (330 + 110 * c) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def decode_all(path: Path, rate: int = 22050) -> npt.NDArray[np.float32]:
    return np.concatenate(list(decode_blocks(path, rate)))


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("suffix", list(FORMATS))
def test_every_format_decodes_to_its_duration_and_channels(
    tmp_path: Path, suffix: str, channels: int
) -> None:
    rate = FORMATS[suffix][2]
    path = write_audio(tmp_path / f"tone{suffix}", tones(7.3, rate, channels), rate)
    x = decode_all(path)
    assert x.dtype == np.float32
    assert x.shape[1] == channels
    assert len(x) / 22050 == pytest.approx(7.3, abs=0.05)
    info = probe(path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.channels) == (rate, channels)
    assert info.duration == pytest.approx(7.3, abs=0.05)
    assert info.codec and info.bitrate > 0


def test_channels_are_kept_not_downmixed_by_ffmpeg(tmp_path: Path) -> None:
    t = np.arange(3 * 22050) / 22050
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = write_audio(tmp_path / "left.wav", np.stack([left, np.zeros_like(left)], 1), 22050)
    x = decode_all(path)
    assert np.abs(x[:, 1]).max() == 0.0
    assert np.abs(x[:, 0]).max() == pytest.approx(0.5, abs=1e-3)


def test_more_than_two_channels_are_mixed_to_stereo(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "surround.flac", tones(2.0, 44100, 6) * 0.3, 44100)
    assert decode_all(path).shape[1] == 2


def test_blocks_are_bounded_and_cover_the_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.flac", tones(10.0, 44100, 2), 44100)
    sizes = [len(b) for b in decode_blocks(path, 22050, block_seconds=1.0)]
    assert max(sizes) < 1.2 * 22050
    assert sum(sizes) == pytest.approx(10 * 22050, abs=50)


@pytest.mark.parametrize(("suffix", "channels"), [(".flac", 2), (".mp3", 2), (".opus", 1)])
def test_blocks_hold_exactly_what_plain_pyav_resampling_gives(
    tmp_path: Path, suffix: str, channels: int
) -> None:
    """decode_blocks asks the resampler for large fixed-size frames and reads their
    memory directly; the samples must be those of PyAV's plain per-frame path."""
    rate = FORMATS[suffix][2]
    path = write_audio(tmp_path / f"tone{suffix}", tones(9.7, rate, channels), rate)
    expected = []
    with av.open(str(path)) as container:
        layout = "mono" if channels == 1 else "stereo"
        resampler = av.AudioResampler(format="flt", layout=layout, rate=22050)
        for frame in container.decode(audio=0):
            expected += [
                out.to_ndarray().reshape(-1, channels) for out in resampler.resample(frame)
            ]
        expected += [out.to_ndarray().reshape(-1, channels) for out in resampler.resample(None)]
    for block_seconds in (20.0, 0.3):
        got = np.concatenate(list(decode_blocks(path, block_seconds=block_seconds)))
        assert np.array_equal(got, np.concatenate(expected))


def test_analyze_file_matches_the_samples(tmp_path: Path) -> None:
    x = tones(12.0, 22050, 2) * np.float32(0.5)
    path = write_audio(tmp_path / "same.flac", x, 22050)
    from_file, from_samples = analyze_file(path), features_from_samples(x, 22050)
    assert from_file.loudness_lufs == pytest.approx(from_samples.loudness_lufs, abs=0.01)
    assert from_file.duration == pytest.approx(12.0, abs=1e-3)
    # 16-bit quantisation noise nudges a magnitude-weighted centroid of pure tones a little.
    assert from_file.brightness_hz == pytest.approx(from_samples.brightness_hz, rel=0.03)


def _encoded(tmp_path: Path, suffix: str) -> bytes:
    return write_audio(tmp_path / f"source{suffix}", tones(20.0, 44100, 2), 44100).read_bytes()


def _flac_bytes(tmp_path: Path) -> bytes:
    return _encoded(tmp_path, ".flac")


def _noise(n: int) -> bytes:
    return np.random.default_rng(1).bytes(n)


def _damage(data: bytes, patch: bytes) -> bytes:
    """`data` with `patch` written over it a third of the way in (mid-stream damage)."""
    at = len(data) // 3
    return data[:at] + patch + data[at + len(patch) :]


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("random.mp3", lambda tmp: np.random.default_rng(0).bytes(60_000)),
        ("empty.flac", lambda tmp: b""),
        ("notes.ogg", lambda tmp: b"not audio at all\n" * 200),
        ("truncated.flac", lambda tmp: _flac_bytes(tmp)[: len(_flac_bytes(tmp)) // 2]),
        ("zeroed.flac", lambda tmp: _damage(_flac_bytes(tmp), bytes(30_000))),
        ("garbled.flac", lambda tmp: _damage(_flac_bytes(tmp), _noise(30_000))),
        ("garbled.mp3", lambda tmp: _damage(_encoded(tmp, ".mp3"), _noise(30_000))),
        ("garbled.m4a", lambda tmp: _damage(_encoded(tmp, ".m4a"), _noise(30_000))),
    ],
)
def test_bad_files_raise_analysis_error_naming_the_path(
    tmp_path: Path, name: str, make: Callable[[Path], bytes]
) -> None:
    path = tmp_path / name
    path.write_bytes(make(tmp_path))
    with pytest.raises(AnalysisError) as info:
        analyze_file(path)
    assert str(path) in str(info.value)


def test_truncated_mp3_is_rejected_not_analysed_in_part(tmp_path: Path) -> None:
    data = write_audio(tmp_path / "whole.mp3", tones(20.0, 44100, 2), 44100).read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AnalysisError, match="truncated"):
        analyze_file(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path in (tmp_path / "absent.flac", tmp_path):
        for call in (analyze_file, probe, lambda p: list(decode_blocks(p))):
            with pytest.raises(AnalysisError) as info:
                call(path)
            assert str(path) in str(info.value)


def test_file_without_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "picture.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(AnalysisError, match="no audio stream"):
        analyze_file(path)


def test_long_file_is_analysed_in_bounded_memory(tmp_path: Path) -> None:
    """20 minutes decoded at 22.05 kHz would be 106 MB of float32; the heap stays far below."""
    rate, minutes = 8000, 20
    path = tmp_path / "long.flac"
    t = np.arange(60 * rate) / rate
    minute = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono", format="s16")
        stream.codec_context.options = {"frame_size": "8192"}  # fewer frames: a quick test
        block = (minute * 32767).astype(np.int16).reshape(1, -1)
        for _ in range(minutes):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded_bytes = minutes * 60 * 22050 * 4
    tracemalloc.start()
    try:
        features = analyze_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert features.duration == pytest.approx(minutes * 60, abs=0.1)
    assert peak < decoded_bytes / 4, f"peak {peak / 1e6:.1f} MB"
