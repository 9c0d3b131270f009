"""Offline render throughput against decode-only throughput, and memory for a 3-hour session.

Uses a synthesised demo library (mixed formats: FLAC, Opus, M4A, MP3, Ogg, WAV; made once
in a cache folder by `setlist demo-library` in a child process, so its synthesis never
counts towards this process's memory). A session of `--hours` is built by cycling those
files as overlapping cues (8 s equal-power crossfades, lead-in offsets, varied gains).

In this one process it measures:

- decode-only: every cue's span (seek to its offset, decode, resample to 44.1 kHz
  stereo) with a plain PyAV loop, no mixing, no output: the floor a render cannot beat.
  It is the render's own decoding work and no less: the same spans from the same seek
  points, to the same output (44.1 kHz, stereo, packed float32, FFmpeg's resampler with
  large output frames), so the ratio measures only what mixing and writing add;
- render to FLAC and to WAV (the real `render()`), x real time of session audio;
- peak RSS (`resource.getrusage`) after the renders, against the 300 MB target.

    .venv/bin/python bench/bench_render.py [--hours 3] [--tracks 16] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from setlist.library.decode import probe
from setlist.library.index import path_to_uri, uri_to_path
from setlist.players.render import render
from setlist.testing import make_track
from setlist.timeline import Cue, FadeShape, Timeline

RATE = 44100
FADE = 8.0


def library(cache: Path, tracks: int) -> list[Path]:
    """The demo library in `cache` (generated once; the same seed reuses the files)."""
    music = cache / "music"
    cmd = [sys.executable, "-m", "setlist", "demo-library", str(music)]
    subprocess.run([*cmd, "--tracks", str(tracks), "--seed", "5"], check=True)
    exts = {".flac", ".mp3", ".ogg", ".opus", ".m4a", ".wav"}
    return sorted(p for p in music.rglob("*") if p.suffix in exts)


def session(files: list[Path], hours: float) -> Timeline:
    """Cues cycling through `files` until the session is `hours` long."""
    lengths = {p: probe(p).duration for p in files}
    cues, t, i = [], 0.0, 0
    while t < hours * 3600:
        path = files[i % len(files)]
        offset = 1.5 + (i % 3)
        length = min(lengths[path] - offset - 0.5, hours * 3600 - t + FADE)
        track = replace(make_track(i + 1, duration=lengths[path]), uri=path_to_uri(path))
        cues.append(
            Cue(
                i,
                track,
                "p",
                t,
                t + length,
                offset=offset,
                fade_in=FADE if i else 0.0,
                fade_out=FADE,
                gain=(0.7, 0.9, 1.1)[i % 3],
                shape=FadeShape.EQUAL_POWER,
            )
        )
        t += length - FADE
        i += 1
    return Timeline(tuple(cues))


def decode_only(tl: Timeline) -> tuple[float, float]:
    """Decode every cue's span the plain way; returns (seconds of audio, wall seconds)."""
    began = time.perf_counter()
    total = 0
    for cue in tl.cues:
        path = uri_to_path(cue.track.uri)
        want = round(cue.length * RATE)
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            c.seek(int(max(0.0, cue.offset - 0.5) / stream.time_base), stream=stream)
            res = av.AudioResampler(format="flt", layout="stereo", rate=RATE, frame_size=8192)
            got = 0
            for frame in c.decode(stream):
                for out in res.resample(frame):
                    got += out.samples
                    np.frombuffer(out.planes[0], dtype=np.float32)
                if got >= want:
                    break
        total += min(got, want)
    return total / RATE, time.perf_counter() - began


def cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--tracks", type=int, default=16)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "setlist-bench")
    args = ap.parse_args()

    files = library(args.cache, args.tracks)
    tl = session(files, args.hours)
    base_rss = rss_mb()
    source = sum(c.length for c in tl.cues)
    print(
        f"session: {tl.length / 3600:.2f} h, {len(tl.cues)} cues from {len(files)} files "
        f"({', '.join(sorted({p.suffix for p in files}))}); {source / 3600:.2f} h of source"
    )
    me, kids = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    c0 = cpu(me)
    decoded, t_decode = decode_only(tl)
    c_decode = cpu(me) - c0
    rows = [("decode only (cue spans)", decoded / t_decode, 1.0, 1.0, "")]
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".flac", ".wav"):
            out = Path(tmp) / f"session{suffix}"
            c0, k0 = cpu(me), cpu(kids)
            report = render(tl, out)
            c_main, c_kid = cpu(me) - c0, cpu(kids) - k0
            size = out.stat().st_size / 2**20
            out.unlink()
            speed = source / report.elapsed  # source seconds per second: same work basis
            rows.append(
                (
                    f"render {suffix[1:].upper()} ({size:.0f} MB)",
                    speed,
                    t_decode / report.elapsed,
                    c_decode / c_main,
                    f"{report.seconds / report.elapsed:.0f}x output; encoder child "
                    f"{c_kid:.1f} s CPU; peak {report.peak_db:.1f} dBFS "
                    f"({report.limited} samples softened); {len(report.faults)} faults",
                )
            )
    print("wall: x realtime of source audio; cpu: decode-only CPU / this process's CPU")
    print(f"{'':28}{'x realtime':>11}{'wall ratio':>11}{'cpu ratio':>10}")
    for name, speed, ratio, cratio, note in rows:
        print(f"{name:28}{speed:11.0f}{ratio:10.2f}x{cratio:9.2f}x  {note}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"peak RSS {rss_mb():.0f} MB (before decoding and rendering {base_rss:.0f} MB)")


if __name__ == "__main__":
    main()
