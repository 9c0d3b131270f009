"""The seam between the conductor and whatever makes sound, and the clock it runs on.

A `Player` manages *voices*, one per cue key: the conductor opens a voice a few seconds
before its cue (preload), starts it on time, sets its gain many times a second during
fades and releases it after the stop. Backends never call back into the conductor:
faults are queued and drained by `faults()` on the conductor's own thread, because
libVLC must not be re-entered from its event threads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Clock(Protocol):
    """Monotonic seconds; injected so tests run sessions in virtual time."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: `time.monotonic`, immune to wall-clock changes mid-session."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VoiceState(StrEnum):
    LOADING = "loading"  # opened, prerolling, silent
    READY = "ready"  # prerolled and waiting for start
    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"  # the file ran out
    FAILED = "failed"  # could not open or stopped decoding
    GONE = "gone"  # released or never opened


@dataclass(frozen=True, slots=True)
class Fault:
    """Something went wrong with one voice, noticed by the backend."""

    key: int
    reason: str


@runtime_checkable
class Player(Protocol):
    """A set of independently controllable voices mixed to one output.

    `gain` is linear amplitude (1.0 = the file as decoded); a backend maps it onto its own
    volume scale (libVLC's is cubic) and may clamp what it cannot reach. Calls must be
    cheap: the conductor makes them at 20+ Hz during fades.
    """

    def open(self, key: int, uri: str, offset: float) -> None:
        """Open `uri` silently, positioned `offset` seconds in, ready to start."""

    def start(self, key: int, gain: float) -> None:
        """Make the voice audible from its position at `gain`."""

    def set_gain(self, key: int, gain: float) -> None: ...

    def pause(self, key: int) -> None: ...

    def resume(self, key: int) -> None: ...

    def release(self, key: int) -> None:
        """Stop the voice and free it; unknown keys are ignored."""

    def state(self, key: int) -> VoiceState: ...

    def position(self, key: int) -> float | None:
        """Seconds into the file as the backend reports it (coarse), or None."""

    def faults(self) -> list[Fault]:
        """Faults noticed since the last call (drained)."""

    def close(self) -> None: ...
