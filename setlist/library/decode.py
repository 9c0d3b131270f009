"""The decoding edge: PyAV (FFmpeg bundled in its wheel) turns any audio file into blocks.

PyAV decodes every format a library holds (FLAC, MP3, Ogg Vorbis/Opus, M4A/AAC, WAV) at
650-1,100x realtime here. Channels are kept (mono stays mono; more than two are mixed to
stereo by FFmpeg's standard matrix) because FFmpeg's mono downmix is (L+R)/sqrt(2), 3 dB
hotter than the plain average the analysis uses, and BS.1770 loudness sums channel
powers anyway. Blocks of `block_seconds` bound memory whatever the file's length.

Every failure becomes `AnalysisError("<path>: <reason>")`: missing, a directory, empty,
not audio, no audio stream, or damaged. A file that fails part-way is rejected as a
whole rather than analysed from what was read, because a corrupt file must not reach a
clinical session, where it could stop or glitch mid-track. Part-way failures are caught
three ways: the decoder raises (MP3, AAC and Opus do on damaged frames); timestamps jump
forward (FFmpeg's FLAC decoder skips a damaged stretch silently, but FLAC frames carry
their sample position); or far fewer samples decode than the header declares (a cut
MP3 or FLAC). Known gap: an Ogg file cut at a page boundary reads as a shorter, valid
stream (Ogg has no total length up front), so it passes with its decoded duration, which
is what the timeline then schedules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from setlist.errors import AnalysisError
from setlist.library.analysis import Analyzer
from setlist.models import Features

#: Decoded duration may fall short of the declared one by this much before the file is
#: called truncated (encoder padding and priming, estimated durations of VBR MP3s).
TRUNCATION_TOLERANCE = (1.0, 0.03)  # seconds, fraction of the declared duration
#: A jump of more than this between consecutive frames' timestamps is lost data.
GAP_TOLERANCE = 0.1
_RESAMPLE_FRAME = 16384  # samples per resampled frame (fewer, larger frames)

# What PyAV and the OS raise for unreadable, invalid or unsupported input.
_AV_ERRORS = (av.error.FFmpegError, OSError, EOFError)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the container says about a file's audio, read without decoding it."""

    duration: float
    sample_rate: int
    channels: int
    codec: str
    bitrate: int


def error_reason(exc: BaseException) -> str:
    """A short, path-free reason for an av or OS exception."""
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, av.error.InvalidDataError):
        return "invalid data"
    if isinstance(exc, (EOFError, av.error.EOFError)):
        return "unexpected end of file"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.split(": '")[0].strip()


def _open(path: Path) -> av.container.InputContainer:
    try:
        if path.is_dir():
            raise AnalysisError(f"{path}: is a directory")
        if path.stat().st_size == 0:
            raise AnalysisError(f"{path}: empty file")
    except OSError as exc:
        raise AnalysisError(f"{path}: {error_reason(exc)}") from exc
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except _AV_ERRORS as exc:
        raise AnalysisError(f"{path}: not a readable audio file ({error_reason(exc)})") from exc


def _audio_stream(path: Path, container: av.container.InputContainer) -> av.AudioStream:
    streams = container.streams.audio
    if not streams:
        raise AnalysisError(f"{path}: no audio stream")
    return streams[0]


def _declared_duration(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    """Duration from the stream header, else the container; 0.0 when neither knows."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def probe(path: Path) -> AudioInfo:
    """Container metadata for `path` (cheap: headers only, no decoding)."""
    path = Path(path)
    container = _open(path)
    try:
        stream = _audio_stream(path, container)
        ctx = stream.codec_context
        return AudioInfo(
            duration=_declared_duration(container, stream),
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
            codec=ctx.name or "",
            bitrate=int(ctx.bit_rate or container.bit_rate or 0),
        )
    finally:
        container.close()


def decode_blocks(
    path: Path, rate: int = 22050, block_seconds: float = 20.0
) -> Iterator[npt.NDArray[np.float32]]:
    """Yield float32 blocks shaped (n, channels), 1 or 2 channels, resampled to `rate`.

    Blocks hold about `block_seconds` each (the last one less); only one block and the
    decoder's own buffers are alive at a time. Raises AnalysisError on any failure,
    including mid-stream corruption and truncation against the declared duration.
    """
    path = Path(path)
    container = _open(path)
    decoded = held = 0
    try:
        stream = _audio_stream(path, container)
        channels = 1 if (stream.codec_context.channels or 2) == 1 else 2
        target = max(1, int(block_seconds * rate))
        # Output frames of a fixed size (the last one shorter; samples are unchanged):
        # per-frame overhead matters when codec frames hold 960-1152 samples.
        resampler = av.AudioResampler(
            format="flt",
            layout="mono" if channels == 1 else "stereo",
            rate=rate,
            frame_size=min(max(target // 16, 256), _RESAMPLE_FRAME),
        )
        pending: list[npt.NDArray[np.float32]] = []
        for frame in _frames(path, container, stream):
            for out in resampler.resample(frame):
                pending.append(_samples(out, channels))
                held += out.samples
            if held >= target:
                block = np.concatenate(pending)
                pending, held, decoded = [], 0, decoded + len(block)
                yield block
        for out in resampler.resample(None):
            pending.append(_samples(out, channels))
            held += out.samples
        if held:
            block = np.concatenate(pending)
            decoded, held = decoded + len(block), 0
            yield block
        if decoded == 0:
            raise AnalysisError(f"{path}: no audio decoded")
        declared = _declared_duration(container, stream)
        got = decoded / rate
        allowed = max(TRUNCATION_TOLERANCE[0], TRUNCATION_TOLERANCE[1] * declared)
        if declared > 0 and got < declared - allowed:
            raise AnalysisError(f"{path}: truncated (decoded {got:.1f} s of {declared:.1f} s)")
    except _AV_ERRORS as exc:
        detail = getattr(exc, "strerror", None) or type(exc).__name__
        raise AnalysisError(
            f"{path}: corrupt audio after {(decoded + held) / rate:.1f} s ({detail})"
        ) from exc
    finally:
        container.close()


def _samples(frame: av.AudioFrame, channels: int) -> npt.NDArray[np.float32]:
    """A packed float frame's samples as (n, channels), without PyAV's generic copy."""
    count = frame.samples * channels
    return np.frombuffer(frame.planes[0], dtype=np.float32, count=count).reshape(-1, channels)


def _frames(
    path: Path, container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame]:
    """Decoded frames of `stream`; a forward jump in timestamps means lost data."""
    expected: float | None = None
    seconds_per_tick: float | None = None  # the frames' time base, as a float
    for packet in container.demux(stream):
        for frame in packet.decode():
            pts, rate = frame.pts, frame.sample_rate
            if pts is not None and rate:
                if seconds_per_tick is None:
                    seconds_per_tick = float(frame.time_base or 0)
                start = pts * seconds_per_tick
                if expected is not None and start - expected > GAP_TOLERANCE:
                    raise AnalysisError(
                        f"{path}: corrupt audio ({start - expected:.2f} s lost at {expected:.1f} s)"
                    )
                expected = start + frame.samples / rate
            yield frame


def analyze_file(path: Path, rate: int = 22050) -> Features:
    """Decode `path` block by block into the streaming Analyzer; AnalysisError on failure."""
    path = Path(path)
    analyzer: Analyzer | None = None
    blocks = decode_blocks(path, rate)
    try:
        for block in blocks:
            if analyzer is None:
                analyzer = Analyzer(rate, block.shape[1])
            analyzer.feed(block)
        if analyzer is None:  # pragma: no cover - decode_blocks raises first
            raise AnalysisError("no audio decoded")
        return analyzer.finish()
    except AnalysisError as exc:
        if exc.message.startswith(f"{path}: "):
            raise
        raise AnalysisError(f"{path}: {exc.message}") from exc
    finally:
        blocks.close()
