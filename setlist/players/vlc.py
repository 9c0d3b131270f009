"""The live player: libVLC voices mixed by the system's audio output.

The only module that imports `vlc` (lazily: a machine without libVLC can still plan,
export and render, and gets a `PlaybackError` with an install hint only when it tries to
play). Facts this design rests on, measured with libVLC 3.0 (see FINDINGS):

- **Volume is cubic.** libVLC's percentage v scales amplitude by (v/100)^3, so a linear
  amplitude gain g is sent as v = 100·g^(1/3). The scale stops at 200 %, i.e. at most 8x
  (+18 dB); quiet tracks whose loudness gain asks for more are clamped there.
- **A new audio stream starts at full volume.** `audio_set_volume` fails until the output
  exists, and every new stream (each `play()` of a new media) restarts at 100 %, so
  whatever is decoded before the first successful call is heard unattenuated, and an
  output that accepts audio ahead of time (memory output, ALSA's buffer) can take a whole
  second of it. The guard: each voice opens behind an equalizer at -20 dB preamp and
  -20 dB in every band (about -40 dB; the only per-player gain libVLC applies from the
  first sample), is held at volume 0 once its stream exists, paused and sought back to
  its offset, and only then has the equalizer removed. What can leak is a few hundred ms
  of the *next* track at -40 dB or less, five seconds before its cue.
- **libVLC is not re-entrant.** Its event callbacks (end reached, error) only put a
  note on a queue; the player acts on it on the caller's thread, checking the media
  player's real state, the next time it is called (`faults()`, `state()`, ...).
- **libVLC 3 has no gapless playback**, so a small pool of persistent media players
  (default 4: a preload plus a crossfade pair fit) is reused across cues.

`Capture` (output `aout="amem"`) receives every player's decoded PCM after libVLC's own
volume was applied, paced like a sound card with a short buffer, and mixes it onto the
session clock: what the room would have heard, for tests and the end-to-end proof.
"""

from __future__ import annotations

import ctypes
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import numpy.typing as npt

from setlist.errors import PlaybackError
from setlist.players.base import Fault, VoiceState

#: Instance options: headless, no video, no interface, no replay gain (the timeline
#: already folds loudness in: never apply it twice).
BASE_OPTIONS = (
    "--no-video",
    "--intf=dummy",
    "--quiet",
    "--no-xlib",
    "--audio-replay-gain-mode=none",
    "--no-volume-save",
)
MAX_VOLUME = 200  # libVLC's ceiling, in percent: (200/100)^3 = 8x = +18 dB
MAX_GAIN = (MAX_VOLUME / 100) ** 3
#: A voice that has decoded no audio this long after `open` is reported as failed.
LOAD_TIMEOUT = 4.0
#: Guard equalizer: the quietest libVLC allows (preamp and every band at -20 dB).
GUARD_DB = -20.0
DEFAULT_VOICES = 4
MAX_VOICES = 8
#: Capture format: what the memory output is asked to deliver.
CAPTURE_RATE = 44100
CAPTURE_CHANNELS = 2
#: The capture takes each block this long before it is due, like a sound card with a
#: short buffer; unpaced, libVLC pushes a second of audio ahead (its file caching) and
#: gain changes would land that late in what is captured.
CAPTURE_LEAD = 0.03

_INSTALL_HINT = (
    "install VLC's library and the Python binding, e.g. "
    "`apt-get install libvlc5 vlc-plugin-base` and `pip install python-vlc`"
)


def _vlc() -> Any:
    """The `vlc` module, imported on first use; missing libVLC becomes PlaybackError."""
    try:
        import vlc
    except (ImportError, OSError) as exc:
        raise PlaybackError(f"libVLC is not available: {exc}", hint=_INSTALL_HINT) from exc
    return vlc


def volume_for_gain(gain: float) -> int:
    """libVLC volume percent for linear amplitude `gain` (cubic scale, clamped 0..200)."""
    if not gain > 0:  # also catches NaN
        return 0
    return min(MAX_VOLUME, round(100.0 * gain ** (1.0 / 3.0)))


def gain_for_volume(volume: int) -> float:
    """Linear amplitude libVLC applies at `volume` percent."""
    return (max(0, volume) / 100.0) ** 3


@dataclass(frozen=True, slots=True)
class OutputDevice:
    """An audio device as libVLC names it (`id` is what `--device` takes)."""

    id: str
    description: str


# -- diagnostics: libVLC's and ALSA's messages go to the session log, never the screen --

#: At most this many diagnostics are kept per DIAG_WINDOW seconds (ALSA repeats the same
#: dozen lines at every output open); the rest are counted, and the count is kept.
DIAG_BURST = 20
DIAG_WINDOW = 60.0
#: libVLC log levels: only warnings and errors are worth a line in the notes.
_VLC_WARNING = 3


class Diagnostics:
    """Messages libVLC and alsa-lib would print on stderr (over the live view), caught by
    their own log hooks and held, rate-limited, for the session log (`drain`).

    The hooks run on libVLC's and ALSA's threads, so they only format and append under a
    lock; nothing here calls back into libVLC.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._held: list[str] = []
        self._clock = clock
        self._window = -math.inf
        self._count = 0
        self.suppressed = 0

    def add(self, source: str, text: str) -> None:
        text = " ".join(text.split())[:300]
        if not text:
            return
        with self._lock:
            now = self._clock()
            if now - self._window >= DIAG_WINDOW:
                if self.suppressed:
                    self._held.append(f"{self.suppressed} more diagnostics not kept")
                    self.suppressed = 0
                self._window, self._count = now, 0
            if self._count >= DIAG_BURST or (self._held and self._held[-1] == f"{source}: {text}"):
                self.suppressed += 1
                return
            self._count += 1
            self._held.append(f"{source}: {text}")

    def drain(self) -> list[str]:
        with self._lock:
            out, self._held = self._held, []
            return out


#: One process-wide collector: alsa-lib's error handler is global to the process.
DIAGNOSTICS = Diagnostics()
_HOOKS: list[object] = []  # ctypes callbacks must outlive every call into them


def _libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None)
    libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    libc.vsnprintf.restype = ctypes.c_int
    return libc


def _hook_vlc_log(vlc: Any, inst: Any) -> None:
    """Route libVLC's log through `Instance.log_set`: a ctypes callback that formats each
    message with the C library's `vsnprintf` (libVLC hands over a va_list)."""
    import ctypes

    libc = _libc()
    buf = ctypes.create_string_buffer(1024)

    @vlc.CallbackDecorators.LogCb  # type: ignore[misc]
    def on_log(_data: object, level: int, _ctx: object, fmt: bytes, args: object) -> None:
        if level < _VLC_WARNING:
            return
        try:
            n = libc.vsnprintf(buf, len(buf), fmt, args)
            text = buf.value.decode("utf-8", "replace") if n >= 0 else str(fmt)
        except Exception:  # noqa: BLE001 - never raise into libVLC's thread
            return
        DIAGNOSTICS.add("libVLC", text)

    _HOOKS.append(on_log)
    inst.log_set(on_log, None)


def _hook_alsa() -> None:
    """Give alsa-lib an error handler (`snd_lib_error_set_handler`) so its "ALSA lib ..."
    lines are kept for the log instead of printed. The handler is variadic in C; the fixed
    arguments (file, line, function, error, format) say enough without the values."""
    if any(getattr(h, "_alsa", False) for h in _HOOKS):
        return
    import ctypes

    try:
        asound = ctypes.CDLL("libasound.so.2")
    except OSError:
        return  # no ALSA on this system: nothing will print
    handler_t = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )
    asound.snd_strerror.restype = ctypes.c_char_p
    asound.snd_strerror.argtypes = [ctypes.c_int]

    def on_error(file: bytes, line: int, func: bytes, err: int, fmt: bytes) -> None:
        try:
            where = f"{(file or b'?').decode(errors='replace')}:{line}"
            what = (fmt or b"").decode(errors="replace")
            why = asound.snd_strerror(err).decode(errors="replace") if err else ""
            name = (func or b"").decode(errors="replace")
            DIAGNOSTICS.add("ALSA", f"{where} ({name}) {what}" + (f": {why}" if why else ""))
        except Exception:  # noqa: BLE001 - never raise into ALSA
            return

    hook = handler_t(on_error)
    hook._alsa = True  # type: ignore[attr-defined]
    _HOOKS.append(hook)
    asound.snd_lib_error_set_handler(hook)


def _instance(vlc: Any, aout: str | None) -> Any:
    opts = [*BASE_OPTIONS]
    if aout is not None:
        opts.append(f"--aout={aout}")
    _hook_alsa()  # before any output module can open ALSA
    inst = vlc.Instance(opts)
    if inst is not None:
        _hook_vlc_log(vlc, inst)
    if inst is None:
        raise PlaybackError(
            f"libVLC could not start with audio output {aout or 'default'!r}",
            hint="outputs libVLC offers: " + ", ".join(_output_modules(vlc)),
        )
    return inst


def _output_modules(vlc: Any) -> list[str]:
    inst = vlc.Instance(["--quiet", "--intf=dummy"])
    if inst is None:
        return []
    try:
        return [m["name"].decode() for m in inst.audio_output_enumerate_devices()]
    finally:
        inst.release()


def _enum_devices(vlc: Any, player: Any) -> list[OutputDevice]:
    head = player.audio_output_device_enum()
    out: list[OutputDevice] = []
    node = head
    while node:
        dev = node.contents
        out.append(
            OutputDevice(
                (dev.device or b"").decode(errors="replace"),
                (dev.description or b"").decode(errors="replace"),
            )
        )
        node = dev.next
    if head:
        vlc.libvlc_audio_output_device_list_release(head)
    return out


def devices(aout: str | None = None) -> list[OutputDevice]:
    """Devices of audio output `aout` (None: libVLC's default output), for `--device`."""
    vlc = _vlc()
    inst = _instance(vlc, aout)
    try:
        player = inst.media_player_new()
        try:
            return _enum_devices(vlc, player)
        finally:
            player.release()
    finally:
        inst.release()


def _match_device(name: str, available: Sequence[OutputDevice]) -> str:
    for dev in available:
        if name == dev.id:
            return dev.id
    for dev in available:
        if name.casefold() in (dev.id.casefold(), dev.description.casefold()):
            return dev.id
    listed = "; ".join(f"{d.id} ({d.description})" for d in available) or "none"
    raise PlaybackError(
        f"unknown audio device {name!r}",
        hint=f"devices this output offers: {listed}",
    )


def _local_path(uri: str) -> Path | None:
    """The file behind a file:// URI or plain path; None for other schemes."""
    if "://" not in uri:
        return Path(uri)
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


# -- capture ---------------------------------------------------------------------------


@dataclass
class _Track:
    """What one media player delivered: (due time in monotonic seconds, PCM) blocks."""

    blocks: list[tuple[float, npt.NDArray[np.int16]]] = field(default_factory=list)


class Capture:
    """PCM every player delivered through libVLC's memory output, after its volume.

    No volume callback is installed, so libVLC applies its own (cubic, soft) volume to
    the samples: a fade the player makes is in the data. Blocks are kept with the time
    they are due (libVLC's pts, on the same monotonic clock as `time.monotonic`) and
    `mix` lays them onto one session-time signal.
    """

    def __init__(self, rate: int = CAPTURE_RATE, lead: float = CAPTURE_LEAD) -> None:
        self.rate = rate
        self.lead = lead
        self._tracks: list[_Track] = []
        self._lock = threading.Lock()
        self._keep: list[object] = []  # ctypes callbacks must outlive the players
        vlc = _vlc()
        self._clock_offset = time.monotonic() - vlc.libvlc_clock() / 1e6

    def attach(self, player: Any) -> None:
        """Route `player`'s audio here (before it plays anything)."""
        vlc = _vlc()
        track = _Track()
        with self._lock:
            self._tracks.append(track)
        frame_bytes = 2 * CAPTURE_CHANNELS
        offset = self._clock_offset

        @vlc.CallbackDecorators.AudioPlayCb
        def play(_opaque: object, samples: int, count: int, pts: int) -> None:
            due = pts / 1e6 + offset
            data = np.frombuffer(ctypes.string_at(samples, count * frame_bytes), np.int16)
            with self._lock:
                track.blocks.append((due, data.copy()))
            # Pace like a device with a `lead`-deep buffer: hold this block until just
            # before it has played out, so the next one (and the volume libVLC applies
            # to it) arrives `lead` before it is due, not a second early.
            wait = due + count / self.rate - self.lead - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 1.0))

        @vlc.CallbackDecorators.AudioFlushCb
        def flush(_opaque: object, _pts: int) -> None:
            # A seek or stop drops what a device had buffered but not yet played.
            now = time.monotonic()
            with self._lock:
                track.blocks[:] = [b for b in track.blocks if b[0] <= now]

        self._keep += [play, flush]
        player.audio_set_callbacks(play, None, None, flush, None, None)
        player.audio_set_format("S16N", self.rate, CAPTURE_CHANNELS)

    def blocks(self) -> list[list[tuple[float, npt.NDArray[np.int16]]]]:
        """A snapshot of each player's blocks (due time, interleaved int16)."""
        with self._lock:
            return [list(t.blocks) for t in self._tracks]

    def clear(self) -> None:
        with self._lock:
            for t in self._tracks:
                t.blocks.clear()

    def mix(self, t0: float, duration: float | None = None) -> npt.NDArray[np.float32]:
        """All players summed onto session time (sample 0 = monotonic time `t0`).

        Returns float32 (n, 2) in [-1, 1] scale (sums may exceed it).
        """
        snap = [b for blocks in self.blocks() for b in blocks]
        if duration is None:
            end = max((due + len(x) / 2 / self.rate for due, x in snap), default=t0)
            duration = max(0.0, end - t0)
        n = round(duration * self.rate)
        out = np.zeros((n, CAPTURE_CHANNELS), np.float32)
        for due, x in snap:
            frames = x.reshape(-1, CAPTURE_CHANNELS).astype(np.float32) / 32768.0
            i = round((due - t0) * self.rate)
            lo, hi = max(i, 0), min(i + len(frames), n)
            if hi > lo:
                out[lo:hi] += frames[lo - i : hi - i]
        return out


# -- the player ------------------------------------------------------------------------


@dataclass
class _Voice:
    """One cue on one pooled media player (mutable, owned by the caller's thread)."""

    key: int
    slot: int
    uri: str
    offset: float
    media: Any
    opened: float
    state: VoiceState = VoiceState.LOADING
    volume: int | None = None  # last percentage libVLC accepted
    pending: float | None = None  # gain asked by a start() that came before the preroll


class VlcPlayer:
    """`Player` on libVLC: one instance, a pool of persistent media players (voices).

    `aout`: None for the system's default output, "adummy" (silent, headless), "amem"
    (a `Capture` at `self.capture`), or any libVLC output module name. `device`: an
    output device id or description from `devices(aout)`; unknown names raise
    PlaybackError listing the real ones.

    Single-threaded by design: prerolls advance and libVLC's events are acted on when
    the player is called (`faults()` or `state()` each tick is enough), never on
    libVLC's threads. A voice becomes READY about 0.3 s after `open`.
    """

    def __init__(
        self,
        *,
        aout: str | None = None,
        device: str | None = None,
        voices: int = DEFAULT_VOICES,
    ) -> None:
        if not 3 <= voices <= MAX_VOICES:
            raise ValueError(f"voices must be 3..{MAX_VOICES} (a preload and a crossfade)")
        self._vlc = vlc = _vlc()
        self.aout = aout
        self.capture: Capture | None = Capture() if aout == "amem" else None
        self._instance = _instance(vlc, "adummy" if aout == "amem" else aout)
        self._players: list[Any] = []
        self._keep: list[object] = []
        self._events: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._voices: dict[int, _Voice] = {}
        self._faults: list[Fault] = []
        self._stats = vlc.MediaStats()
        self._guard = vlc.AudioEqualizer()
        self._guard.set_preamp(GUARD_DB)
        for band in range(vlc.libvlc_audio_equalizer_get_band_count()):
            self._guard.set_amp_at_index(GUARD_DB, band)
        self._device: str | None = None
        try:
            for _ in range(voices):
                self._add_player()
            if device is not None:
                if self.capture is not None:
                    raise PlaybackError("--device does not apply to the capture output")
                self._device = _match_device(device, _enum_devices(vlc, self._players[0]))
                for p in self._players:
                    p.audio_output_device_set(None, self._device)
        except BaseException:
            self.close()
            raise
        self._closed = False

    # -- pool --------------------------------------------------------------------------

    def _add_player(self) -> int:
        vlc = self._vlc
        slot = len(self._players)
        player = self._instance.media_player_new()
        if self.capture is not None:
            self.capture.attach(player)
        if self._device is not None:
            player.audio_output_device_set(None, self._device)
        events = player.event_manager()

        def note(_event: object, slot: int = slot) -> None:
            # Runs on a libVLC thread: only note which player spoke, never call libVLC.
            self._events.put(slot)

        for kind in (
            vlc.EventType.MediaPlayerEndReached,
            vlc.EventType.MediaPlayerEncounteredError,
        ):
            events.event_attach(kind, note)
        self._keep.append(note)
        self._players.append(player)
        return slot

    def _free_slot(self) -> int:
        used = {v.slot for v in self._voices.values()}
        for slot in range(len(self._players)):
            if slot not in used:
                return slot
        if len(self._players) < MAX_VOICES:
            return self._add_player()
        raise PlaybackError(
            f"all {MAX_VOICES} libVLC voices are busy",
            hint="voices must be released after their cue stops",
        )

    # -- Player protocol ---------------------------------------------------------------

    def open(self, key: int, uri: str, offset: float) -> None:
        """Start decoding `uri` from `offset` inaudibly; it becomes READY within ~0.5 s."""
        if key in self._voices:
            self.release(key)
        path = _local_path(uri)
        slot = self._free_slot()
        media = (
            self._instance.media_new_path(str(path))
            if path is not None and "://" not in uri
            else self._instance.media_new(uri)
        )
        if offset > 0:
            media.add_option(f":start-time={offset:.3f}")
        voice = _Voice(key, slot, uri, offset, media, time.monotonic())
        self._voices[key] = voice
        if path is not None and not path.is_file():
            self._fail(voice, f"file not found: {path}")
            return
        player = self._players[slot]
        player.set_equalizer(self._guard)  # about -40 dB until the stream is held at 0
        player.set_media(media)
        if player.play() != 0:
            self._fail(voice, "libVLC could not start decoding")
            return
        player.audio_set_volume(0)

    def start(self, key: int, gain: float) -> None:
        """Make a READY voice audible from its offset at `gain` (a LOADING one: when ready)."""
        voice = self._voices.get(key)
        if voice is None:
            self._faults.append(Fault(key, "start of a voice that was never opened"))
            return
        self._pump()
        if voice.state is VoiceState.LOADING:
            voice.pending = gain
        elif voice.state in (VoiceState.READY, VoiceState.PAUSED):
            player = self._players[voice.slot]
            self._set_volume(voice, gain)
            player.set_pause(0)
            voice.state = VoiceState.PLAYING

    def set_gain(self, key: int, gain: float) -> None:
        voice = self._voices.get(key)
        if voice is None:
            return
        if voice.state is VoiceState.LOADING:
            if voice.pending is not None:
                voice.pending = gain
            return
        if voice.state in (VoiceState.PLAYING, VoiceState.PAUSED, VoiceState.READY):
            self._set_volume(voice, gain)

    def pause(self, key: int) -> None:
        voice = self._voices.get(key)
        if voice is not None and voice.state is VoiceState.PLAYING:
            self._players[voice.slot].set_pause(1)
            voice.state = VoiceState.PAUSED

    def resume(self, key: int) -> None:
        voice = self._voices.get(key)
        if voice is not None and voice.state is VoiceState.PAUSED:
            self._players[voice.slot].set_pause(0)
            voice.state = VoiceState.PLAYING

    def release(self, key: int) -> None:
        voice = self._voices.pop(key, None)
        if voice is None:
            return
        player = self._players[voice.slot]
        player.audio_set_volume(0)
        player.stop()
        player.set_equalizer(None)

    def state(self, key: int) -> VoiceState:
        self._pump()
        voice = self._voices.get(key)
        return VoiceState.GONE if voice is None else voice.state

    def position(self, key: int) -> float | None:
        voice = self._voices.get(key)
        if voice is None or voice.state in (VoiceState.FAILED, VoiceState.GONE):
            return None
        ms = self._players[voice.slot].get_time()
        return ms / 1000.0 if ms is not None and ms >= 0 else None

    def diagnostics(self) -> list[str]:
        """libVLC's and ALSA's messages since the last call, for the session log only."""
        return DIAGNOSTICS.drain()

    def faults(self) -> list[Fault]:
        self._pump()
        out, self._faults = self._faults, []
        return out

    def close(self) -> None:
        for key in list(self._voices):
            self.release(key)
        for player in self._players:
            player.stop()
            player.release()
        self._players.clear()
        if getattr(self, "_instance", None) is not None:
            self._instance.release()
            self._instance = None
        self._closed = True

    def __enter__(self) -> VlcPlayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- extras ------------------------------------------------------------------------

    @property
    def device(self) -> str | None:
        return self._device

    def volume(self, key: int) -> int | None:
        """The percentage libVLC last accepted for voice `key` (for tests and logs)."""
        voice = self._voices.get(key)
        return None if voice is None else voice.volume

    def wait_ready(self, key: int, timeout: float = LOAD_TIMEOUT + 1.0) -> VoiceState:
        """Block until voice `key` leaves LOADING (tests, and callers without a tick)."""
        deadline = time.monotonic() + timeout
        while self.state(key) is VoiceState.LOADING and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.state(key)

    # -- internals ---------------------------------------------------------------------

    def _set_volume(self, voice: _Voice, gain: float) -> None:
        volume = volume_for_gain(gain)
        if volume != voice.volume and self._players[voice.slot].audio_set_volume(volume) == 0:
            voice.volume = volume

    def _fail(self, voice: _Voice, reason: str) -> None:
        if voice.state is not VoiceState.FAILED:
            voice.state = VoiceState.FAILED
            self._faults.append(Fault(voice.key, reason))
            player = self._players[voice.slot]
            player.audio_set_volume(0)

    def _pump(self) -> None:
        """Act on libVLC's events and advance prerolling voices (the caller's thread)."""
        noted: set[int] = set()
        while True:
            try:
                noted.add(self._events.get_nowait())
            except queue.Empty:
                break
        if not self._voices:
            return
        vlc = self._vlc
        for voice in list(self._voices.values()):
            player = self._players[voice.slot]
            if voice.state is VoiceState.LOADING:
                self._preroll(voice, player)
            elif voice.slot in noted and voice.state in (VoiceState.PLAYING, VoiceState.READY):
                state = player.get_state()
                if state == vlc.State.Error:
                    self._fail(voice, "libVLC stopped decoding (error)")
                elif state == vlc.State.Ended:
                    voice.state = VoiceState.ENDED

    def _preroll(self, voice: _Voice, player: Any) -> None:
        vlc = self._vlc
        state = player.get_state()
        if state == vlc.State.Error:
            self._fail(voice, "libVLC could not open or decode the file")
            return
        if state == vlc.State.Ended:
            self._fail(voice, "not playable audio (ended before anything was decoded)")
            return
        player.audio_set_volume(0)  # sticks once the stream exists; harmless before
        voice.media.get_stats(self._stats)
        if self._stats.decoded_audio <= 0:
            if time.monotonic() - voice.opened > LOAD_TIMEOUT:
                self._fail(voice, f"no audio decoded within {LOAD_TIMEOUT:.0f} s")
            return
        # The stream exists and holds volume 0: now the guard can go. Pause and seek
        # back to the offset first: libVLC applies the equalizer's removal when the
        # seek flushes the output, not to a stream that keeps playing.
        player.set_pause(1)
        player.set_time(round(voice.offset * 1000))
        player.set_equalizer(None)
        voice.volume = 0
        voice.state = VoiceState.READY
        if voice.pending is not None:  # started before it was ready (a skip): go now
            gain, voice.pending = voice.pending, None
            self._set_volume(voice, gain)
            player.set_pause(0)
            voice.state = VoiceState.PLAYING
