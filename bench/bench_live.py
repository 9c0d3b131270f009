"""Live playback on the real clock: lateness of fade steps and track starts, CPU, memory.

Runs a session of generated tone files (a crossfade every ~45 s) through
`VlcPlayer(aout="adummy")` (real libVLC decoding and mixing, no sound card needed)
driven by `setlist.conductor.Conductor` on `MonotonicClock`. A thin proxy around the
player stamps every call with the clock, so lateness is measured where it matters, at
the libVLC call:

- track start lateness: time of `start(key)` minus the cue's planned start;
- fade step lateness: for each 40 ms step of a fade (the conductor's tick grid from the
  session start), the delay until the first `set_gain` call for that voice at or after it.

Targets (issue 5): p99 < 50 ms, CPU < 5 % of one core, RSS < 200 MB.

    .venv/bin/python bench/bench_live.py            # 10 minutes
    .venv/bin/python bench/bench_live.py --minutes 2

Without `setlist.conductor` (not yet written) it falls back to a plain 25 Hz loop over
`Timeline.gains_at` and says so.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from setlist.players.base import MonotonicClock, VoiceState
from setlist.players.vlc import VlcPlayer
from setlist.testing import make_track
from setlist.timeline import Cue, Timeline
from tests.audiofiles import tone, write_audio

TICK = 0.04


class StampedPlayer:
    """Forwards to a Player and records (monotonic time, call, key) for every call."""

    def __init__(self, inner: VlcPlayer, clock: MonotonicClock) -> None:
        self.inner = inner
        self.clock = clock
        self.calls: list[tuple[float, str, int]] = []
        self.slowest = 0.0

    def _do(self, name: str, key: int, *args: object) -> object:
        began = self.clock.now()
        self.calls.append((began, name, key))
        out = getattr(self.inner, name)(key, *args)
        self.slowest = max(self.slowest, self.clock.now() - began)
        return out

    def open(self, key: int, uri: str, offset: float) -> None:
        self._do("open", key, uri, offset)

    def start(self, key: int, gain: float) -> None:
        self._do("start", key, gain)

    def set_gain(self, key: int, gain: float) -> None:
        self._do("set_gain", key, gain)

    def pause(self, key: int) -> None:
        self._do("pause", key)

    def resume(self, key: int) -> None:
        self._do("resume", key)

    def release(self, key: int) -> None:
        self._do("release", key)

    def state(self, key: int) -> VoiceState:
        return self.inner.state(key)

    def position(self, key: int) -> float | None:
        return self.inner.position(key)

    def faults(self) -> list:
        return self.inner.faults()

    def close(self) -> None:
        self.inner.close()


def make_timeline(folder: Path, minutes: float) -> Timeline:
    """Cues every ~45 s (35..55), 8 s equal-power crossfades, over `minutes`."""
    rng = np.random.default_rng(7)
    files = [
        write_audio(
            folder / f"t{i}.flac", tone(70.0, 180 + 55 * i, 0.25, 22050, stereo=False), 22050
        )
        for i in range(6)
    ]
    length = minutes * 60
    base = make_track(1, duration=70.0)
    cues: list[Cue] = []
    start, key = 0.0, 0
    while start < length - 10:
        span = float(rng.uniform(35, 55))
        stop = min(start + span + 8.0, length)
        track = replace(base, id=key + 1, uri=files[key % len(files)].as_uri())
        cues.append(
            Cue(
                key,
                track,
                "phase",
                start,
                stop,
                offset=float(rng.uniform(0, 5)),
                fade_in=0.0 if key == 0 else 8.0,
                fade_out=8.0,
                gain=float(rng.uniform(0.5, 1.5)),
            )
        )
        start, key = start + span, key + 1
    return Timeline(tuple(cues), ("phase",))


def drive_plain(timeline: Timeline, player: StampedPlayer, clock: MonotonicClock) -> float:
    """Fallback conductor: preload, start, 25 Hz gains, release, on a drift-free grid."""
    t0 = clock.now()
    opened: set[int] = set()
    started: set[int] = set()
    done: set[int] = set()
    k = 0
    while True:
        now = clock.now() - t0
        if now >= timeline.length:
            break
        gains = timeline.gains_at(now)[:, 0]
        for cue, gain in zip(timeline.cues, gains, strict=True):
            if cue.key in done:
                continue
            if cue.key not in opened and now >= cue.preload_at:
                player.open(cue.key, cue.track.uri, cue.offset)
                opened.add(cue.key)
            if now >= cue.stop:
                player.release(cue.key)
                done.add(cue.key)
            elif cue.key not in started and now >= cue.start:
                player.start(cue.key, float(gain))
                started.add(cue.key)
            elif cue.key in started and (cue.fade_in or cue.fade_out):
                player.set_gain(cue.key, float(gain))
        player.faults()
        k += 1
        clock.sleep(t0 + k * TICK - clock.now())
    return t0


def drive_conductor(timeline: Timeline, player: StampedPlayer, clock: MonotonicClock) -> float:
    from setlist.conductor import Conductor

    conductor = Conductor(timeline, player, clock, tick=TICK)
    t0 = clock.now()
    conductor.run()
    return t0


def lateness(timeline: Timeline, calls: list[tuple[float, str, int]], t0: float) -> dict:
    starts: list[float] = []
    steps: list[float] = []
    by_key: dict[int, list[float]] = {}
    for at, name, key in calls:
        if name == "start":
            starts.append(at - t0 - timeline.cue(key).start)
        if name in ("start", "set_gain"):
            by_key.setdefault(key, []).append(at - t0)
    for cue in timeline.cues:
        times = np.array(sorted(by_key.get(cue.key, [])))
        if not len(times):
            continue
        spans = []
        if cue.fade_in:
            spans.append((cue.start, cue.start + cue.fade_in))
        if cue.fade_out:
            spans.append((cue.stop - cue.fade_out, cue.stop - TICK))
        for a, b in spans:
            grid = np.arange(np.ceil(a / TICK) * TICK, b, TICK)
            idx = np.searchsorted(times, grid - 1e-6)
            ok = idx < len(times)
            steps += list(times[idx[ok]] - grid[ok])
    return {"starts": np.array(starts), "steps": np.array(steps)}


def pct(x: np.ndarray) -> str:
    if not len(x):
        return "n/a"
    ms = x * 1000
    return (
        f"p50 {np.percentile(ms, 50):6.1f} ms  p99 {np.percentile(ms, 99):6.1f} ms  "
        f"max {ms.max():6.1f} ms  (n={len(ms)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    clock = MonotonicClock()
    with tempfile.TemporaryDirectory() as tmp:
        timeline = make_timeline(Path(tmp), args.minutes)
        player = StampedPlayer(VlcPlayer(aout="adummy"), clock)
        try:
            import setlist.conductor  # noqa: F401

            driver, how = drive_conductor, "setlist.conductor.Conductor"
        except ImportError:
            driver, how = drive_plain, "plain 25 Hz loop (setlist.conductor not available)"
        print(f"{len(timeline.cues)} cues over {timeline.length / 60:.1f} min, driver: {how}")
        wall0, cpu0 = time.monotonic(), time.process_time()
        try:
            t0 = driver(timeline, player, clock)
        finally:
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            faults = player.faults()
            player.close()
    late = lateness(timeline, player.calls, t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"track starts : {pct(late['starts'])}")
    print(f"fade steps   : {pct(late['steps'])}")
    print(f"slowest call : {player.slowest * 1000:.1f} ms")
    print(f"CPU          : {100 * cpu / wall:.2f} % of one core over {wall:.0f} s")
    print(f"RSS peak     : {rss:.0f} MB")
    print(f"faults       : {faults or 'none'}")
    worst = max(np.percentile(x, 99) if len(x) else 0 for x in late.values())
    ok = worst < 0.05 and cpu / wall < 0.05 and rss < 200
    print("targets (p99 < 50 ms, CPU < 5 %, RSS < 200 MB):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
