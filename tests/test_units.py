"""Units: what each parser accepts and refuses, and the formatters that mirror them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.units import (
    format_clock,
    format_duration,
    format_length,
    parse_duration,
    parse_percent,
    parse_tempo,
    parse_volume,
)

MINUS_6 = 20 * math.log10(0.5)  # -6.0206 dB: half the amplitude


# --- parse_duration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("12m", 720.0),
        ("12min", 720.0),
        ("12 m", 720.0),
        ("1h", 3600.0),
        ("1h15m", 4500.0),
        ("1h 15m 30s", 4530.0),
        ("1h30s", 3630.0),
        ("2.5m", 150.0),
        ("0.5h", 1800.0),
        ("  20m  ", 1200.0),
        ("45:00", 2700.0),
        ("0:30", 30.0),
        ("90:00", 5400.0),
        ("1:15:00", 4500.0),
        ("1:15:30.5", 4530.5),
        ("0s", 0.0),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "seconds"), [(".5h", 1800.0), (".5m", 30.0)])
def test_parse_duration_accepts_leading_dot(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [20, 0, 1.5, 90.0])
def test_parse_duration_refuses_bare_numbers_asking_for_a_unit(value: object) -> None:
    with pytest.raises(ValueError, match="unit"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False, None, ["12m"], b"12m"])
def test_parse_duration_refuses_non_strings(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "10x",
        "20",  # a bare number in a string is as ambiguous as a bare number
        "1:75",
        "1:5",
        "m",
        "h",
        "1m1h",  # units out of order
        "5ms",
        "1h15",
        "12M",
        "-5m",
        "1.m",
        "1::00",
        ":30",
    ],
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- format_duration / format_clock -----------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (1, "1s"),
        (59.6, "1m"),
        (90, "1m30s"),
        (720, "12m"),
        (750, "12m30s"),
        (3600, "1h"),
        (3601, "1h1s"),
        (4500, "1h15m"),
        (4530, "1h15m30s"),
        (36000, "10h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00:00"),
        (-5, "0:00:00"),
        (59.4, "0:00:59"),
        (59.6, "0:01:00"),
        (65, "0:01:05"),
        (3725, "1:02:05"),
        (36000, "10:00:00"),
    ],
)
def test_format_clock(seconds: float, text: str) -> None:
    assert format_clock(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (59.6, "1:00"), (305, "5:05"), (4500, "75:00")]
)
def test_format_length(seconds: float, text: str) -> None:
    assert format_length(seconds) == text


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=100_000))
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=100_000))
def test_format_clock_round_trips(seconds: int) -> None:
    assert parse_duration(format_clock(seconds)) == seconds


# --- parse_percent ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("40%", 0.4), ("0%", 0.0), ("100%", 1.0), ("12.5 %", 0.125), (" 50% ", 0.5)],
)
def test_parse_percent_accepts(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["40", "", "abc%", "-10%", "101%", "%"])
def test_parse_percent_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_percent(text)


# --- parse_volume -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "db"),
    [
        ("-6dB", -6.0),
        ("-6 dB", -6.0),
        ("-6db", -6.0),
        ("-3.5DB", -3.5),
        ("0dB", 0.0),
        ("+0dB", 0.0),
        ("50%", MINUS_6),
        ("100%", 0.0),
        (0.5, MINUS_6),
        (1, 0.0),
        (1.0, 0.0),
        (0.1, -20.0),
    ],
)
def test_parse_volume_accepts(value: object, db: float) -> None:
    assert parse_volume(value) == pytest.approx(db, abs=1e-9)


def test_fifty_percent_is_about_minus_six_db() -> None:
    assert parse_volume("50%") == pytest.approx(-6.02, abs=0.01)
    assert parse_volume(0.5) == pytest.approx(-6.02, abs=0.01)


@pytest.mark.parametrize("value", [0, 0.0, -0.5, "0%"])
def test_parse_volume_refuses_silence(value: object) -> None:
    with pytest.raises(ValueError, match="silence"):
        parse_volume(value)


@pytest.mark.parametrize("value", [True, False, "loud", "", "-6", "6 dBFS", None])
def test_parse_volume_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="level"):
        parse_volume(value)


# --- parse_tempo ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        ("60-80", (60.0, 80.0)),
        ("60 - 80", (60.0, 80.0)),
        ("60..80", (60.0, 80.0)),
        ("60\u201380", (60.0, 80.0)),
        ("62.5-90", (62.5, 90.0)),
        ([60, 80], (60.0, 80.0)),
        ([60.5, 80.0], (60.5, 80.0)),
    ],
)
def test_parse_tempo_accepts(value: object, bounds: tuple[float, float]) -> None:
    result = parse_tempo(value)
    assert result == bounds
    assert all(isinstance(b, float) for b in result)


@pytest.mark.parametrize(
    "value",
    [
        "fast",
        "",
        "60",
        "60-",
        "60--80",
        "60-80-100",
        [60],
        [],
        [60, "x"],
        [60, 80, 100],
        [True, 80],
        ["60", "80"],
        60,
        None,
    ],
)
def test_parse_tempo_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="BPM"):
        parse_tempo(value)
