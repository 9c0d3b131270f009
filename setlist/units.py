"""Parsing and formatting of the units therapists write: durations, levels, tempo.

Pure and shared by the arc parser, the CLI and the charts, so `1h15m` means the same
everywhere and messages print times the way they were written.
"""

from __future__ import annotations

import math
import re

_NUM = r"(?:\d+(?:\.\d+)?|\.\d+)"
_HMS = re.compile(
    r"^\s*(?=\d|\.\d)"
    rf"(?:(?P<h>{_NUM})\s*h)?\s*"
    rf"(?:(?P<m>{_NUM})\s*m(?:in)?)?\s*"
    rf"(?:(?P<s>{_NUM})\s*s)?\s*$"
)
# h:mm:ss needs minutes under 60; a bare mm:ss may run past the hour (90:00).
_CLOCK = re.compile(r"^\s*(?:(?P<h>\d+):(?P<mm>[0-5]\d)|(?P<m>\d+)):(?P<s>[0-5]\d(?:\.\d+)?)\s*$")
_DB = re.compile(r"^\s*(?P<v>[-+]?\d+(?:\.\d+)?)\s*dB\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*(?P<v>\d+(?:\.\d+)?)\s*%\s*$")
_RANGE = re.compile(r"^\s*(?P<a>\d+(?:\.\d+)?)\s*(?:-|\u2013|\.\.)\s*(?P<b>\d+(?:\.\d+)?)\s*$")

#: JSON-Schema (ECMA) patterns matching what the parsers accept, for editor validation.
DURATION_PATTERN = (
    r"^\s*(?=\d|\.\d)((\d+(\.\d+)?|\.\d+)\s*h)?\s*((\d+(\.\d+)?|\.\d+)\s*m(in)?)?\s*"
    r"((\d+(\.\d+)?|\.\d+)\s*s)?\s*$"
    r"|^\s*(\d+:[0-5]\d|\d+):[0-5]\d(\.\d+)?\s*$"
)
VOLUME_PATTERN = r"^\s*[-+]?\d+(\.\d+)?\s*[dD][bB]\s*$|^\s*\d+(\.\d+)?\s*%\s*$"
TEMPO_PATTERN = r"^\s*\d+(\.\d+)?\s*(-|\u2013|\.\.)\s*\d+(\.\d+)?\s*$"
PERCENT_PATTERN = r"^\s*\d+(\.\d+)?\s*%\s*$"


def parse_duration(text: object) -> float:
    """Seconds in `90s`, `12m`, `1h15m`, `1h 15m 30s`, `2.5m`, `45:00` or `1:15:00`.

    A bare number is refused on purpose: `20` could be minutes or seconds, and guessing
    wrong would shift a whole session.
    """
    if not isinstance(text, str):
        raise ValueError("give a unit, e.g. '20m' or '90s'")
    m = _HMS.match(text)
    if m and any(m.group(g) for g in "hms"):
        return sum(float(m.group(g) or 0) * f for g, f in (("h", 3600), ("m", 60), ("s", 1)))
    m = _CLOCK.match(text)
    if m:
        minutes = m.group("mm") or m.group("m")
        return float(m.group("h") or 0) * 3600 + float(minutes) * 60 + float(m.group("s"))
    raise ValueError("expected a duration like '90s', '12m', '1h15m' or '1:15:00'")


def format_duration(seconds: float) -> str:
    """Compact duration in the arc syntax: `1h15m`, `12m30s`, `90s` -> `1m30s`."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")
    return out or "0s"


def format_clock(seconds: float) -> str:
    """`H:MM:SS` for session clocks (always hours, so columns line up)."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}"


def format_length(seconds: float) -> str:
    """`M:SS` for a track's length (minutes unbounded: a 75-minute piece is `75:00`)."""
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def parse_percent(text: str) -> float:
    """Fraction in `40%` (0-100 %)."""
    m = _PERCENT.match(text)
    if not m:
        raise ValueError("expected a percentage like '40%'")
    value = float(m.group("v"))
    if value > 100:
        raise ValueError("a percentage of the phase must lie within 0-100%")
    return value / 100.0


def parse_volume(value: object) -> float:
    """A level in dB from `-6dB`, `50%` or `0.5` (percent and numbers are amplitude).

    Amplitude rather than a player-slider percentage, because slider scales differ
    (libVLC's is cubic): 50% here is always -6 dB.
    """
    if isinstance(value, bool):
        raise ValueError("expected a level like '-6dB', '50%' or 0.5")
    if isinstance(value, int | float):
        amplitude = float(value)
    else:
        text = str(value)
        m = _DB.match(text)
        if m:
            return float(m.group("v"))
        m = _PERCENT.match(text)
        if not m:
            raise ValueError("expected a level like '-6dB', '50%' or 0.5")
        amplitude = float(m.group("v")) / 100.0
    if amplitude <= 0:
        raise ValueError("a volume of 0 is silence; leave the phase out or lower the level")
    return 20.0 * math.log10(amplitude)


def parse_tempo(value: object) -> tuple[float, float]:
    """BPM bounds from `60-80`, `[60, 80]` or `{min: 60, max: 80}` (already unpacked)."""
    if isinstance(value, str):
        m = _RANGE.match(value)
        if m:
            return float(m.group("a")), float(m.group("b"))
    if isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
        return float(value[0]), float(value[1])
    raise ValueError("expected a BPM range like '60-80' or [60, 80]")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
