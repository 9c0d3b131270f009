"""The ebur128 stderr parser behind the real-music benchmarks (no corpus, no ffmpeg)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import realmusic

STDERR = """\
[Parsed_ebur128_0 @ 0x1] t: 0.0999773  TARGET:-23 LUFS    M:-120.7 S:-120.7     I: -70.0 LUFS
[Parsed_ebur128_0 @ 0x1] t: 0.199977   TARGET:-23 LUFS    M: -21.8 S: -inf      I: -21.8 LUFS
[Parsed_ebur128_0 @ 0x1] t: 0.299977   TARGET:-23 LUFS    M: -20.5 S: -19.9     I: -21.0 LUFS
[Parsed_ebur128_0 @ 0x1] Summary:

  Integrated loudness:
    I:         -21.4 LUFS
    Threshold: -31.8 LUFS
"""


def test_parse_reads_every_line_and_the_summary() -> None:
    loud = realmusic.parse_ebur128(STDERR)
    assert loud.t.tolist() == pytest.approx([0.1, 0.2, 0.3], abs=1e-3)
    assert loud.momentary.tolist() == [-120.7, -21.8, -20.5]
    assert loud.short_term.tolist() == [-120.7, -120.0, -19.9]  # -inf reads as -120
    assert loud.integrated == -21.4
    assert loud.s_at(0.3) == -19.9


def test_parse_without_readings_is_an_error() -> None:
    with pytest.raises(ValueError):
        realmusic.parse_ebur128("ffmpeg version 5\n")


def test_longest_run() -> None:
    import numpy as np

    secs, at = realmusic.longest_run(np.array([0, 1, 1, 0, 1, 1, 1, 0], dtype=bool))
    assert (round(secs, 6), at) == (0.3, 4)
