"""Offline render: the session timeline mixed to one audio file with numpy, block by block.

The renderer asks the timeline the very question the live conductor asks, once per output
sample (`Cue.gain_at`), so a render is the oracle for what the room should hear; it is
also the way to take a session somewhere no laptop can play it live.

Streamed: only the decoders of the cues sounding in the current block and a few blocks
of audio (decoded, waiting for the mixer thread) are alive, so a 3-hour session renders
in the same memory as a 3-minute one. Decoding, most of the work, runs on the caller's
thread; gain curves, mixing, limiting and writing run on a second one (`_Mixer`). Each
cue gets its own PyAV decoder, opened when the cue begins (seeking to its `offset`) and
closed at its stop; output sample n of the render is file sample n + d of a cue, with one
rounding per cue, so nothing drifts however long the session.

Missing or broken files are a clinical matter, not a detail: a render that quietly left
five minutes of dead air in a session would be trusted and played. Every source is checked
before anything is rendered and every fault is reported with the file's path; unless the
caller allows faults (`--allow-missing`), the render stops and no output file is left
behind. When allowed, a faulty cue's time stays silent apart from its neighbours' fades
(nothing is stretched to cover it, so the rest of the plan keeps its clock times) and the
report says where the gaps are.

The output is written to a temporary file beside the target and renamed into place, so a
failed or interrupted render never leaves a truncated file that looks finished. A soft
clipper above -2 dBFS catches overs (tracks normalised up by a few dB can sum past full
scale in a crossfade) and never lets a sample past the plan's -1 dBFS ceiling, whatever
gains a setlist file holds; the report gives the peak before it and how many samples it
shaped.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import numpy.typing as npt

from setlist.errors import AnalysisError, LibraryError, PlaybackError
from setlist.fsutil import fsync_dir
from setlist.library.decode import GAP_TOLERANCE, TRUNCATION_TOLERANCE, error_reason, probe
from setlist.library.index import uri_to_path
from setlist.players.base import Fault
from setlist.timeline import Cue, Timeline, db_to_gain, gain_to_db

#: Output formats by suffix: the container PyAV writes (WAV goes through `wave`).
FORMATS = {".flac": "flac", ".wav": "wav", ".ogg": "ogg"}
#: Seconds of output mixed per block: large enough that per-block overheads vanish,
#: small enough that a block (plus its gain curves) is a few MB.
BLOCK_SECONDS = 6.0
#: No rendered sample goes above this amplitude: the plan's -1 dBFS ceiling.
CEILING = 10.0 ** (-1.0 / 20.0)
#: Above this amplitude (-2 dBFS) the soft clipper bends the signal towards the ceiling.
KNEE = 10.0 ** (-2.0 / 20.0)
#: Seek this far before a cue's first sample: formats land on a frame boundary before
#: the target, and the margin keeps the resampler's filter primed at the cut.
_SEEK_MARGIN = 0.5
#: Renders at least this long (seconds) encode FLAC/Vorbis in a child process.
ENCODER_PROCESS_FROM = 120.0
_QUEUE = 2  # blocks waiting for the mixer thread
_AV_ERRORS = (av.error.FFmpegError, OSError, EOFError)
_GAIN_SLICE = 8192  # samples of a gain ramp evaluated at once

F32 = npt.NDArray[np.float32]
Progress = Callable[[float, float], None]


@dataclass(frozen=True, slots=True)
class RenderReport:
    """What a render produced, and everything that kept it from matching the plan.

    `peak_db` is the mix's peak before the soft clipper (dBFS; above 0 means overs were
    shaped), `limited` the number of samples the clipper touched, `gaps` the session
    times left silent by faulty cues (key, from, to).
    """

    path: Path
    seconds: float
    rate: int
    channels: int
    peak_db: float
    limited: int
    files: tuple[Path, ...]
    faults: tuple[Fault, ...]
    gaps: tuple[tuple[int, float, float], ...]
    elapsed: float

    @property
    def speed(self) -> float:
        """Seconds of audio rendered per second of wall-clock time."""
        return self.seconds / self.elapsed if self.elapsed > 0 else math.inf


class SourceFault(Exception):
    """A cue's file cannot be played as planned; `reason` names the file."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def source_path(cue: Cue) -> Path:
    """The local file a cue plays; SourceFault for anything a render cannot open."""
    uri = cue.track.uri
    if uri.startswith("file://"):
        try:
            return uri_to_path(uri)
        except LibraryError as exc:
            raise SourceFault(exc.message) from None
    if uri.startswith("/"):
        return Path(uri)
    raise SourceFault(f"{uri}: not a local file (only local files can be rendered)")


def check_sources(timeline: Timeline, start: float = 0.0, end: float | None = None) -> list[Fault]:
    """Faults of the cues sounding in [start, end): missing, unreadable or too short files.

    Reads headers only (no decoding), so a 3-hour plan is checked in well under a second
    per hundred files, before any time is spent rendering.
    """
    stop = timeline.length if end is None else end
    seen: dict[Path, str | float] = {}
    faults: list[Fault] = []
    for cue in timeline.cues:
        if cue.stop <= start or cue.start >= stop:
            continue
        try:
            path = source_path(cue)
        except SourceFault as exc:
            faults.append(Fault(cue.key, exc.reason))
            continue
        if path not in seen:
            try:
                info = probe(path)
            except AnalysisError as exc:
                seen[path] = exc.message
            else:
                ok = info.sample_rate > 0 and info.channels > 0
                seen[path] = info.duration if ok else f"{path}: not a readable audio file"
        known = seen[path]
        if isinstance(known, str):
            faults.append(Fault(cue.key, known))
            continue
        needed = cue.offset + cue.length
        if known > 0 and known < needed - _allowance(needed):
            faults.append(
                Fault(
                    cue.key,
                    f"{path}: {known:.1f} s long, but the plan plays it to {needed:.1f} s",
                )
            )
    return faults


def _allowance(seconds: float) -> float:
    """How much shorter than planned a file may be before it is called short."""
    return max(TRUNCATION_TOLERANCE[0], TRUNCATION_TOLERANCE[1] * seconds)


def _pcm(frame: av.AudioFrame, channels: int) -> F32:
    """A packed float frame's samples as (n, channels), without PyAV's generic copy."""
    count = frame.samples * channels
    return np.frombuffer(frame.planes[0], dtype=np.float32, count=count).reshape(-1, channels)


#: Samples per resampled frame: fewer, larger frames mean fewer Python calls per block.
_RESAMPLE_FRAME = 16384

#: (position in the request, samples) pieces of a voice's output; gaps are silence.
Pieces = list[tuple[int, F32]]


class _Voice:
    """One cue's decoder: hands out consecutive output-rate samples from file sample `first`.

    Position comes from the first decoded frame's timestamp after a seek, so the cut is
    sample-exact for formats with exact seeking and timestamps (WAV, FLAC). Raises
    SourceFault on damage: a decoder error, or a jump in timestamps (lost frames).

    Samples are handed out as views of the resampler's frames (`take`), not copied into a
    buffer: the mixer multiplies them by the gain straight into the output block, so each
    sample is touched once on its way from the decoder to the mix.
    """

    def __init__(self, path: Path, rate: int, channels: int, first: int) -> None:
        self.path, self.rate, self.channels = path, rate, channels
        self.target = max(0, first) / rate  # file seconds of the first sample wanted
        self.lead = max(0, -first)  # zeros before the file's first sample
        self.short = 0  # samples asked for past the end of the file
        self.decoded = 0.0  # file seconds decoded so far (for messages)
        self._pending: deque[F32] = deque()
        self._held = 0
        self._eof = False
        self._ready: list[av.AudioFrame] = []  # decoded, not yet resampled
        self._expected: float | None = None  # file seconds where the next frame should start
        self._tick = 0.0  # the frames' time base as a float (Fractions are slow)
        try:
            self._container = av.open(str(path), mode="r", metadata_errors="ignore")
        except _AV_ERRORS as exc:
            raise SourceFault(f"{path}: cannot open ({error_reason(exc)})") from None
        try:
            streams = self._container.streams.audio
            if not streams:
                raise SourceFault(f"{path}: no audio stream")
            self._stream = streams[0]
            self._base = self._stream.start_time or 0
            self._resampler = av.AudioResampler(
                format="flt",
                layout="mono" if channels == 1 else "stereo",
                rate=rate,
                frame_size=_RESAMPLE_FRAME,
            )
            self._skip: int | None = None
            seek_to = self.target - _SEEK_MARGIN
            self._seeked = seek_to > 0 and self._stream.time_base is not None
            if self._seeked:
                tb = self._stream.time_base
                self._container.seek(int(seek_to / tb) + self._base, stream=self._stream)
            self._packets = self._container.demux(self._stream)
        except SourceFault:
            self.close()
            raise
        except _AV_ERRORS as exc:
            self.close()
            raise SourceFault(f"{path}: cannot read ({error_reason(exc)})") from None

    def _check(self, frame: av.AudioFrame) -> None:
        """Set the head trim from the first frame's timestamp; refuse a jump (lost data)."""
        at: float | None = None
        if frame.pts is not None:
            if not self._tick:
                self._tick = float(frame.time_base or 0)
            at = (frame.pts - self._base) * self._tick if self._tick else None
        expected = self._expected
        if self._skip is None:
            begin = at if (self._seeked and at is not None) else 0.0
            self._skip = round((self.target - begin) * self.rate)
            expected = begin
        if at is not None and expected is not None and at - expected > GAP_TOLERANCE:
            raise SourceFault(
                f"{self.path}: corrupt audio ({at - expected:.2f} s lost at {expected:.1f} s)"
            )
        if expected is not None and frame.sample_rate:
            expected = (at if at is not None else expected) + frame.samples / frame.sample_rate
            self._expected = self.decoded = expected

    def _fill(self, need: int) -> None:
        """Decode and resample until `need` samples are pending or the file has ended."""
        ready, resample, pending = self._ready, self._resampler.resample, self._pending
        channels = self.channels
        try:
            while self._held < need and not self._eof:
                if ready:
                    frame: av.AudioFrame | None = ready.pop(0)
                    self._check(frame)
                else:
                    packet = next(self._packets, None)
                    if packet is not None:
                        ready.extend(packet.decode())
                        continue
                    frame, self._eof = None, True  # flush the resampler's tail
                for out in resample(frame):
                    pcm = _pcm(out, channels)
                    if self._skip:
                        if self._skip > 0:
                            cut = min(self._skip, len(pcm))
                            pcm, self._skip = pcm[cut:], self._skip - cut
                        else:  # the seek landed after the target: the gap is before the file
                            self.lead, self._skip = self.lead - self._skip, 0
                    if len(pcm):
                        pending.append(pcm)
                        self._held += len(pcm)
        except _AV_ERRORS as exc:
            raise SourceFault(
                f"{self.path}: corrupt audio after {self.decoded:.1f} s ({error_reason(exc)})"
            ) from None

    def take(self, n: int) -> Pieces:
        """The next n samples as (position, samples) pieces; what they leave out is silence
        (before the file's first sample, or past its end)."""
        pos = min(self.lead, n)
        self.lead -= pos
        self._fill(n - pos)
        pieces: Pieces = []
        pending = self._pending
        while pos < n and pending:
            head = pending[0]
            take = min(len(head), n - pos)
            if take == len(head):
                pending.popleft()
            else:
                pending[0] = head[take:]
                head = head[:take]
            pieces.append((pos, head))
            pos += take
            self._held -= take
        self.short += n - pos
        return pieces

    def close(self) -> None:
        self._pending.clear()
        self._ready = []
        with contextlib.suppress(*_AV_ERRORS):
            self._container.close()


@dataclass(slots=True)
class _Slot:
    """A cue's place in the output: samples [lo, hi) come from file sample n + shift."""

    cue: Cue
    path: Path
    lo: int
    hi: int
    shift: int
    voice: _Voice | None = None
    dead: bool = False
    gap_from: float | None = None


# --- writers ------------------------------------------------------------------------


class _Writer:
    """Encodes float blocks to the output format; `close()` flushes the encoder."""

    def write(self, block: F32) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _Pcm16:
    """Float blocks to 16-bit PCM in two reused buffers (fresh ones page-fault every block).

    The result is only valid until the next call: writers hand it on before returning.
    """

    def __init__(self) -> None:
        self._float = np.empty(0, dtype=np.float32)
        self._int = np.empty(0, dtype="<i2")

    def __call__(self, block: F32) -> npt.NDArray[np.int16]:
        if self._float.size < block.size:
            self._float = np.empty(block.size, dtype=np.float32)
            self._int = np.empty(block.size, dtype="<i2")
        scaled = self._float[: block.size].reshape(block.shape)
        pcm = self._int[: block.size].reshape(block.shape)
        np.multiply(block, 32768.0, out=scaled)
        np.rint(scaled, out=scaled)
        np.clip(scaled, -32768.0, 32767.0, out=scaled)
        np.copyto(pcm, scaled, casting="unsafe")  # exact: the values are whole already
        return pcm


class _WavWriter(_Writer):
    """16-bit PCM through the standard library: the fastest path, no encoder at all."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 - closed by close()
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._s16 = _Pcm16()

    def write(self, block: F32) -> None:
        self._wav.writeframesraw(self._s16(block))  # a buffer: written without a copy

    def close(self) -> None:
        self._wav.close()


class _AvWriter(_Writer):
    """FLAC (16-bit) or Ogg Vorbis through PyAV's bundled FFmpeg encoders."""

    def __init__(self, path: Path, rate: int, channels: int, container: str) -> None:
        self._out = av.open(str(path), mode="w", format=container)
        codec = "flac" if container == "flac" else "vorbis"
        self._stream = self._out.add_stream(codec, rate=rate)
        self._layout = "mono" if channels == 1 else "stereo"
        self._stream.layout = self._layout
        if codec == "vorbis":  # FFmpeg's own Vorbis encoder (libvorbis is not bundled)
            self._stream.codec_context.options = {"strict": "experimental"}
            self._stream.codec_context.bit_rate = 192_000 if channels == 2 else 128_000
        else:
            self._stream.codec_context.format = "s16"
        self._s16 = _Pcm16()
        self._rate, self._codec, self._pts = rate, codec, 0

    def write(self, block: F32) -> None:
        if self._codec == "flac":
            self._encode(self._s16(block).reshape(1, -1), "s16")
        else:
            self._encode(np.ascontiguousarray(np.clip(block, -1.0, 1.0).T), "fltp")

    def _encode(self, data: np.ndarray, fmt: str) -> None:
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=self._layout)
        frame.sample_rate = self._rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self._rate)
        self._pts += frame.samples
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
        finally:
            self._out.close()

    def abort(self) -> None:
        with contextlib.suppress(*_AV_ERRORS):
            self._out.close()


#: One cue's share of a block: the cue, output samples [a, b), and its pieces (`_Voice.take`).
Entry = tuple[Cue, int, int, Pieces]


class _Mixer:
    """Mixes decoded blocks, masters them (peak, soft clipper) and hands them to a writer,
    all on its own thread, so everything after decoding overlaps the decoding.

    Decoding is most of a render's work and stays on the caller's thread, which hands over
    each block as the decoders' pieces (views, not copies). PyAV's codecs and filters,
    numpy and file writes release the GIL, so on two cores this thread's work (gain
    curves, mix, 16-bit conversion, writing) is nearly free. At most `depth` blocks wait
    in the queue, so memory stays bounded. An error on the thread is raised on the
    caller's next `write` or `close`. `peak` and `limited` are final once `close` returns.
    """

    def __init__(
        self,
        inner: _Writer,
        size: int,
        channels: int,
        start: float,
        rate: int,
        master: float,
        depth: int = _QUEUE,
    ) -> None:
        self._inner = inner
        self._start, self._rate, self._master = start, rate, master
        # Reused buffers (page-faulting fresh ones costs as much as the mix): the writer
        # is done with a block when its `write` returns.
        self._mix = np.empty((size, channels), dtype=np.float32)
        self._scratch = np.empty((size, channels), dtype=np.float32)
        self._gain = np.empty(size, dtype=np.float32)
        self.peak, self.limited = 0.0, 0
        self._queue: queue.Queue[tuple[int, int, list[Entry]] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="render-mixer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None:
                try:
                    block = self._mix_block(*job)
                    if len(block):
                        top = max(float(block.max()), -float(block.min()))
                        self.peak = max(self.peak, top)
                        if not top <= KNEE:  # NaN too
                            self.limited += soft_clip(block)
                    self._inner.write(block)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    self._error = exc

    def _mix_block(self, n0: int, n1: int, entries: list[Entry]) -> F32:
        """Output samples [n0, n1): every cue's pieces times its gain curve, summed."""
        mix = self._mix[: n1 - n0]
        clean = False  # mix holds an old block until zeroed or fully overwritten
        for cue, a, b, pieces in entries:
            factor = _gains(cue, a, b, self._start, self._rate, self._master, self._gain)
            flat = isinstance(factor, np.float32)
            # The first cue covering the whole block writes it (no zeroing pass); the
            # others, and cues starting or stopping inside the block, add into it.
            overwrite = not clean and a == n0 and b == n1
            if not clean and not overwrite:
                mix.fill(0.0)
            part = mix[a - n0 : b - n0]
            done = 0
            for pos, piece in pieces:
                end = pos + len(piece)
                f = factor if flat else factor[pos:end, None]
                if overwrite:
                    part[done:pos] = 0.0  # silence before the file's first sample
                    np.multiply(piece, f, out=part[pos:end])
                else:
                    added = np.multiply(piece, f, out=self._scratch[: end - pos])
                    np.add(part[pos:end], added, out=part[pos:end])
                done = end
            if overwrite:
                part[done:] = 0.0  # past the end of the file
            clean = True
        if not clean:
            mix.fill(0.0)
        return mix

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, n0: int, n1: int, entries: list[Entry]) -> None:
        """Queue output samples [n0, n1) for mixing; blocks while `depth` are waiting."""
        self._check()
        self._queue.put((n0, n1, entries))

    def _join(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        self._join()
        self._check()
        self._inner.close()

    def abort(self) -> None:
        self._join()
        if isinstance(self._inner, (_AvWriter, _EncoderProcess)):
            self._inner.abort()
        else:
            with contextlib.suppress(Exception):
                self._inner.close()


class _EncoderProcess(_Writer):
    """FLAC/Vorbis encoding in a child process fed raw PCM through a pipe.

    PyAV holds the GIL while it encodes, so a thread cannot overlap encoding with
    decoding; a second process can, which on two cores brings a FLAC render close to
    decode speed. The child is a short script (`_ENCODER_CHILD`); its failure (disk full,
    killed) surfaces as a PlaybackError on `write` or `close`. Short renders encode in
    process instead (`ENCODER_PROCESS_FROM`): a child costs a fraction of a second.
    """

    def __init__(self, path: Path, rate: int, channels: int, container: str) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()/abort()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _ENCODER_CHILD, container, str(rate), str(channels), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            bufsize=0,  # blocks go straight to the pipe, no copy through a buffer
        )
        assert self._proc.stdin is not None
        with contextlib.suppress(ImportError, OSError, AttributeError):
            import fcntl  # Linux: a 1 MB pipe means fewer, larger wake-ups

            fcntl.fcntl(self._proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        self._flac = container == "flac"
        self._s16 = _Pcm16()

    def write(self, block: F32) -> None:
        pcm = self._s16(block) if self._flac else np.clip(block, -1.0, 1.0)
        data = memoryview(np.ascontiguousarray(pcm, dtype="<i2" if self._flac else "<f4"))
        try:
            assert self._proc.stdin is not None
            raw = data.cast("B")
            while raw:  # an unbuffered pipe write may take only part of a large block
                raw = raw[self._proc.stdin.write(raw) or 0 :]
        except (BrokenPipeError, OSError):
            self._proc.wait()
            raise self._failure() from None

    def _failure(self) -> PlaybackError:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit status {self._proc.returncode}"
        return PlaybackError(f"the audio encoder failed: {why}")

    def close(self) -> None:
        try:
            assert self._proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise self._failure()
        finally:
            self._log.close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.kill()
        with contextlib.suppress(OSError, ValueError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        self._proc.wait()
        self._log.close()


#: The encoder child: only PyAV and numpy (imported in ~0.2 s, not the whole package).
#: argv = container rate channels path; 16-bit (FLAC) or float32 (Vorbis) PCM on stdin.
_ENCODER_CHILD = """
import sys
from fractions import Fraction
import av
import numpy as np

container, rate, channels, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
flac = container == "flac"
layout = "mono" if channels == 1 else "stereo"
out = av.open(path, mode="w", format=container)
stream = out.add_stream("flac" if flac else "vorbis", rate=rate)
stream.layout = layout
if flac:
    stream.codec_context.format = "s16"
else:
    stream.codec_context.options = {"strict": "experimental"}
    stream.codec_context.bit_rate = 192000 if channels == 2 else 128000
width = (2 if flac else 4) * channels
pts, pending = 0, b""
while True:
    data = sys.stdin.buffer.read(4 * width * rate)
    if not data:
        break
    data = pending + data
    usable = len(data) - len(data) % width
    pending = data[usable:]
    pcm = np.frombuffer(data[:usable], dtype="<i2" if flac else "<f4").reshape(-1, channels)
    if flac:
        arr, fmt = np.ascontiguousarray(pcm).reshape(1, -1), "s16"
    else:
        arr, fmt = np.ascontiguousarray(pcm.T), "fltp"
    frame = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
    pts += len(pcm)
    for packet in stream.encode(frame):
        out.mux(packet)
for packet in stream.encode(None):
    out.mux(packet)
out.close()
"""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- the mix -----------------------------------------------------------------------


def soft_clip(x: F32) -> int:
    """Bend samples above `KNEE` smoothly towards `CEILING`, in place; returns how many.

    Below the knee nothing changes (slope 1 at the knee, so no kink); above it the curve
    is a tanh approaching the ceiling, so overs become gentle saturation instead of hard
    clips, and nothing (not even `inf`; NaN becomes silence) passes the ceiling.
    """
    np.nan_to_num(x, copy=False, nan=0.0, posinf=CEILING, neginf=-CEILING)
    over = np.abs(x) > KNEE
    count = int(np.count_nonzero(over))
    if count:
        v = x[over]
        room = CEILING - 2.0 / 32768 - KNEE  # 16-bit rounding must not land on it
        x[over] = np.sign(v) * (KNEE + room * np.tanh((np.abs(v) - KNEE) / room))
    return count


def render(
    timeline: Timeline,
    out: Path,
    *,
    rate: int = 44100,
    channels: int = 2,
    start: float = 0.0,
    end: float | None = None,
    master_db: float = 0.0,
    allow_faults: bool = False,
    block_seconds: float = BLOCK_SECONDS,
    progress: Progress | None = None,
) -> RenderReport:
    """Mix `timeline` from `start` to `end` (session seconds) into `out` (.flac/.wav/.ogg).

    Without `allow_faults`, any missing, unreadable, short or damaged source raises
    PlaybackError naming the file and no output is written; with it, faulty cues are left
    silent and listed in the report. `progress(done, total)` gets seconds after each block.
    """
    began = time.perf_counter()
    out = Path(out)
    container = FORMATS.get(out.suffix.lower())
    if container is None:
        raise PlaybackError(
            f"{out}: cannot render to '{out.suffix or 'no suffix'}'",
            hint="name the output .flac, .wav or .ogg",
        )
    if channels not in (1, 2):
        raise PlaybackError(f"{channels} channels: a render is mono or stereo")
    if not 8000 <= rate <= 192000:
        raise PlaybackError(f"{rate} Hz: choose a sample rate between 8000 and 192000")
    length = timeline.length
    stop = length if end is None else min(end, length)
    if start < 0 or start >= stop:
        raise PlaybackError(
            f"nothing to render between {start:.1f} s and {stop:.1f} s "
            f"(the session is {length:.1f} s long)"
        )

    faults = check_sources(timeline, start, stop)
    if faults and not allow_faults:
        raise _fault_error(faults)
    bad = {f.key for f in faults}
    total = round((stop - start) * rate)
    slots: list[_Slot] = []
    gaps: list[tuple[int, float, float]] = []
    for cue in timeline.cues:
        lo = max(0, math.ceil((cue.start - start) * rate - 1e-6))
        hi = min(total, math.ceil((cue.stop - start) * rate - 1e-6))
        if hi <= lo:
            continue
        if cue.key in bad:
            gaps.append((cue.key, start + lo / rate, start + hi / rate))
            continue
        shift = round((start - cue.start + cue.offset) * rate)
        slots.append(_Slot(cue, source_path(cue), lo, hi, shift))

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    writer: _Mixer | None = None
    active: list[_Slot] = []
    used: dict[Path, None] = {}
    master = db_to_gain(master_db)
    block = max(1, round(block_seconds * rate))
    try:
        inner: _Writer
        if container == "wav":
            inner = _WavWriter(tmp, rate, channels)
        elif total / rate >= ENCODER_PROCESS_FROM:
            inner = _EncoderProcess(tmp, rate, channels, container)
        else:
            inner = _AvWriter(tmp, rate, channels, container)
        writer = _Mixer(inner, min(block, total), channels, start, rate, master)
        waiting = iter(slots)
        upcoming = next(waiting, None)
        for n0 in range(0, total, block):
            n1 = min(total, n0 + block)
            while upcoming is not None and upcoming.lo < n1:
                active.append(upcoming)
                upcoming = next(waiting, None)
            entries: list[Entry] = []
            for slot in active:
                a, b = max(slot.lo, n0), min(slot.hi, n1)
                if a >= b or slot.dead:
                    continue
                pieces = _take(slot, a, b, rate, channels, faults, allow_faults, start)
                if pieces is not None:
                    used[slot.path] = None
                    entries.append((slot.cue, a, b, pieces))
            for slot in [s for s in active if s.hi <= n1]:
                _finish(slot, rate, faults, allow_faults, start, gaps)
            active = [s for s in active if s.hi > n1]
            writer.write(n0, n1, entries)
            if progress is not None:
                progress(n1 / rate, total / rate)
        writer.close()
        peak, limited = writer.peak, writer.limited
        writer = None
        tmp.chmod(0o666 & ~_umask())
        _fsync(tmp)
        tmp.replace(out)
        fsync_dir(out.parent)
    except BaseException:
        if writer is not None:
            writer.abort()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        for slot in active:
            if slot.voice is not None:
                slot.voice.close()
    return RenderReport(
        path=out,
        seconds=total / rate,
        rate=rate,
        channels=channels,
        peak_db=gain_to_db(peak),
        limited=limited,
        files=tuple(used),
        faults=tuple(faults),
        gaps=tuple(sorted(gaps, key=lambda g: g[1])),
        elapsed=time.perf_counter() - began,
    )


def _gains(
    cue: Cue, a: int, b: int, start: float, rate: int, master: float, out: F32
) -> np.float32 | F32:
    """`cue.gain_at` times `master` for output samples [a, b): one number where it is flat,
    else the curve in `out[: b - a]`.

    Between the end of the fade-in and the start of the fade-out (or a cut) every curve
    is exactly 1.0, so the gain there is exactly `cue.gain`; the curves are evaluated
    (by `gain_at` itself, so live play and render share them) only on the ramps, a slice
    at a time so its float64 temporaries stay in cache instead of page-faulting.
    """
    ramp_in = cue.start + cue.fade_in if cue.fade_in > 1e-9 else cue.start
    planned = cue.cut.planned_stop if cue.cut is not None else cue.stop
    ramp_out = planned - cue.fade_out if cue.fade_out > 1e-9 else planned
    if cue.cut is not None:
        ramp_out = min(ramp_out, cue.cut.at)
    ramp_out = min(ramp_out, cue.stop)
    # A level ramp (join match, phase volume) is a curve too; past it the gain is flat.
    ramp_in = max(ramp_in, cue.ramp_end)
    ramp_out = max(ramp_out, min(ramp_in, cue.stop))
    # First sample at or after the fade-in's end; first sample at or after the ramp out.
    flat_a = max(a, min(b, math.ceil((ramp_in - start) * rate - 1e-6)))
    flat_b = max(flat_a, min(b, math.ceil((ramp_out - start) * rate - 1e-6)))
    held = cue.gain * (10.0 ** (cue.ramp[-1][1] / 20.0) if cue.ramp else 1.0)
    if flat_a == a and flat_b == b and start + a / rate >= cue.start:
        return np.float32(held * master)
    gain = out[: b - a]
    gain[flat_a - a : flat_b - a] = held * master
    for lo, hi in ((a, flat_a), (flat_b, b)):
        for i in range(lo, hi, _GAIN_SLICE):
            j = min(hi, i + _GAIN_SLICE)
            gain[i - a : j - a] = cue.gain_at(start + np.arange(i, j) / rate) * master
    return gain


def _take(
    slot: _Slot,
    a: int,
    b: int,
    rate: int,
    channels: int,
    faults: list[Fault],
    allow: bool,
    start: float,
) -> Pieces | None:
    """Samples [a, b) of a slot's cue (`_Voice.take`), opening its decoder on first use;
    None once the cue is dead."""
    try:
        if slot.voice is None:
            slot.voice = _Voice(slot.path, rate, channels, slot.lo + slot.shift)
        return slot.voice.take(b - a)
    except SourceFault as exc:
        faults.append(Fault(slot.cue.key, exc.reason))
        if not allow:
            raise _fault_error([faults[-1]]) from None
        slot.dead, slot.gap_from = True, start + a / rate
        if slot.voice is not None:
            slot.voice.close()
            slot.voice = None
        return None


def _finish(
    slot: _Slot,
    rate: int,
    faults: list[Fault],
    allow: bool,
    start: float,
    gaps: list[tuple[int, float, float]],
) -> None:
    """Close a cue's decoder at its stop; a file that ran out early is a fault too."""
    end = start + slot.hi / rate
    voice, slot.voice = slot.voice, None
    if slot.dead and slot.gap_from is not None:
        gaps.append((slot.cue.key, slot.gap_from, end))
    if voice is None:
        return
    voice.close()
    missing = voice.short / rate
    if missing > _allowance(slot.cue.length):
        faults.append(
            Fault(slot.cue.key, f"{slot.path}: ended {missing:.1f} s before its planned stop")
        )
        gaps.append((slot.cue.key, end - missing, end))
        if not allow:
            raise _fault_error([faults[-1]])


def _fault_error(faults: list[Fault]) -> PlaybackError:
    more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
    return PlaybackError(
        f"cannot render: {faults[0].reason}{more}",
        hint="fix or replace the file, or pass --allow-missing to render its time as silence",
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "FORMATS",
    "RenderReport",
    "SourceFault",
    "check_sources",
    "render",
    "soft_clip",
    "source_path",
]
