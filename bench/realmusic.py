"""Shared helpers for benchmarks on REAL recorded music, measured by an outside reference.

The corpus comes from scripts/real-music.sh (Debian game soundtracks and ambience loops);
loudness is measured by ffmpeg's `ebur128` filter, never by setlist's own meter, so a
benchmark cannot pass because the code agrees with itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

STEP = 0.1  # ebur128 prints one line every 100 ms


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "setlist"


def corpus_dir() -> Path:
    """The real-music corpus, or a one-line exit telling how to make it."""
    root = Path(os.environ.get("SETLIST_REAL_MUSIC") or cache_dir() / "real-music")
    if not (root / "READY").is_file() or not (root / "MANIFEST.tsv").is_file():
        sys.exit(f"bench: no real-music corpus at {root}; run scripts/real-music.sh first")
    return root


def manifest(root: Path) -> list[dict[str, str]]:
    lines = (root / "MANIFEST.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:] if line]


@dataclass(frozen=True)
class Loudness:
    """ffmpeg ebur128 readings: per-100 ms times, momentary M and short-term S (LUFS)."""

    t: npt.NDArray[np.float64]
    momentary: npt.NDArray[np.float64]
    short_term: npt.NDArray[np.float64]
    integrated: float

    def s_at(self, seconds: float) -> float:
        """Short-term loudness of the 3 s window ending nearest `seconds`."""
        i = int(np.clip(np.searchsorted(self.t, seconds), 0, self.t.size - 1))
        return float(self.short_term[i])


_LINE = re.compile(r"t:\s*([-\d.]+)\s+.*?M:\s*([-\w.]+)\s+S:\s*([-\w.]+)")
_INTEGRATED = re.compile(r"Integrated loudness:\s*\n\s*I:\s*([-\w.]+)\s*LUFS")


def _num(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        return -120.0
    return v if np.isfinite(v) else -120.0


def parse_ebur128(stderr: str) -> Loudness:
    """Parse ffmpeg's ebur128 stderr; -inf readings (silence) become -120 LUFS."""
    t, m, s = [], [], []
    for match in _LINE.finditer(stderr):
        t.append(float(match.group(1)))
        m.append(_num(match.group(2)))
        s.append(_num(match.group(3)))
    found = _INTEGRATED.findall(stderr)
    if not t or not found:
        raise ValueError("no ebur128 readings in ffmpeg's output")
    return Loudness(np.array(t), np.array(m), np.array(s), _num(found[-1]))


def ebur128(path: Path) -> Loudness:
    """Measure `path` with ffmpeg's ebur128 filter (the outside reference)."""
    if shutil.which("ffmpeg") is None:
        sys.exit("bench: ffmpeg not found; install it (scripts/system-deps.sh does)")
    r = subprocess.run(
        [
            "ffmpeg",
            "-nostats",
            "-hide_banner",
            "-i",
            str(path),
            "-filter_complex",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"ffmpeg failed on {path}: {last}")
    return parse_ebur128(r.stderr)


def longest_run(mask: npt.NDArray[np.bool_], step: float = STEP) -> tuple[float, int]:
    """Longest run of True in `mask`: (seconds, start index)."""
    best, best_at, run = 0, 0, 0
    for i, v in enumerate(mask):
        run = run + 1 if v else 0
        if run > best:
            best, best_at = run, i - run + 1
    return best * step, best_at
