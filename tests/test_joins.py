"""Joins on real-shaped material: cue points, overlap placement, level matching and the
dead-air guard, checked end to end with FFmpeg's own EBU R128 meter (the `ebur128`
filter inside PyAV's FFmpeg) as the outside reference, never our own meter.

The fixtures are shaped like the recordings that broke the fixed trims: a piece with a
long silent tail and a hidden track after it, pieces with quiet intros, a piece that
ends on a long natural fade, and pieces mastered at very different levels.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from setlist.cli import cli as main
from setlist.exports import load_setlist
from setlist.joins import Side, plan_join, programme_level, ramp_points
from setlist.library.analysis import features_from_samples
from setlist.library.index import Index
from setlist.library.scan import scan
from setlist.models import Edges, Features, SetlistEntry, Track, with_cue_points
from setlist.planner import dead_air
from tests.audiofiles import write_audio

RATE = 22050


def music(seconds: float, level_db: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Band-limited noise with a slow pulse: a stand-in for dense music at `level_db` RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = rng.standard_normal(n)
    # A gentle low-pass (moving average) and a 0.7 Hz swell, so it is not white noise.
    x = np.convolve(x, np.ones(6) / 6, mode="same")
    t = np.arange(n) / rate
    x *= 1.0 + 0.25 * np.sin(2 * np.pi * 0.7 * t + seed)
    x *= 10 ** (level_db / 20) / max(float(np.sqrt(np.mean(x**2))), 1e-12)
    return x


def ramp(n: int, a: float, b: float, power: float = 1.0) -> np.ndarray:
    return a + (b - a) * np.linspace(0.0, 1.0, n) ** power


def shaped(kind: str, seed: int) -> np.ndarray:
    """One real-shaped piece (mono, RATE)."""
    silence = lambda s: np.zeros(int(s * RATE))  # noqa: E731
    if kind == "hidden":  # 150 s of music, a 60 s silence, then 40 s of a hidden track
        body = music(150, -20, seed)
        body[-8 * RATE :] *= ramp(8 * RATE, 1, 0, 2)
        return np.concatenate([silence(1), body, silence(60), music(40, -22, seed + 1)])
    if kind == "intro":  # a 15 s quiet opening 24 dB under the body, then 170 s
        intro = music(15, -44, seed) * ramp(15 * RATE, 0.3, 1.0)
        return np.concatenate([intro, music(170, -20, seed + 1)])
    if kind == "fade":  # 140 s then a 25 s natural fade to silence
        body = music(165, -20, seed)
        body[-25 * RATE :] *= ramp(25 * RATE, 1, 0, 1.5)
        return np.concatenate([body, silence(2)])
    if kind == "quiet":  # mastered 12 dB quieter, with its own short fades
        body = music(180, -32, seed)
        body[: 3 * RATE] *= ramp(3 * RATE, 0, 1)
        return body
    body = music(175, -16 if seed % 2 else -24, seed)  # plain pieces, loud and soft masters
    body[-2 * RATE :] *= ramp(2 * RATE, 1, 0)
    return body


KINDS = ["hidden", "intro", "fade", "quiet", "plain", "intro", "fade", "plain", "quiet", "plain"]


def test_edges_find_the_hidden_track_the_quiet_intro_and_the_fade() -> None:
    hidden = features_from_samples(shaped("hidden", 1).astype(np.float32), RATE)
    e = hidden.edges
    assert e is not None
    assert e.cue_in == pytest.approx(1.0, abs=0.3)
    assert 143 <= e.cue_out <= 151  # ends at the gap, not 104 s later
    assert e.hidden == pytest.approx(40, abs=2)
    assert any(a < 152 and b > 208 for a, b in e.gaps)
    intro = features_from_samples(shaped("intro", 2).astype(np.float32), RATE).edges
    assert intro is not None and 10 <= intro.intro <= 17
    assert intro.head_lufs > intro.curve[3] + 10  # the head is the body, not the intro
    fade = features_from_samples(shaped("fade", 3).astype(np.float32), RATE).edges
    assert fade is not None and 8 <= fade.outro <= 25
    assert fade.cue_out <= 166


def test_the_short_term_curve_agrees_with_ffmpeg(tmp_path: Path) -> None:
    x = shaped("intro", 4)
    path = write_audio(tmp_path / "intro.flac", x, RATE)
    e = features_from_samples(x.astype(np.float32), RATE).edges
    assert e is not None
    times, _, short = ebur128(path)
    # Our value k is the 3 s window centred at k + 0.5 s; FFmpeg's S at t ends at t.
    ours = np.array([e.level_at(np.array([t - 1.5]))[0] for t in times if 20 <= t <= 180])
    theirs = short[(times >= 20) & (times <= 180)]
    # 22.05 kHz mono against FFmpeg on the same file: the same meter, within a few tenths.
    assert np.median(np.abs(ours - theirs)) < 0.6


def test_a_join_matches_levels_and_glides_back() -> None:
    loud = Edges(cue_in=0, cue_out=200, curve=(-14.0,) * 200, head_lufs=-14, tail_lufs=-14)
    soft = Edges(cue_in=0, cue_out=200, curve=(-22.0,) * 200, head_lufs=-22, tail_lufs=-22)
    a = Side(0.0, 200.0, 0.0, -6.0, -14.0, soft)  # a quiet ending heard at -28
    b = Side(190.0, 390.0, 0.0, -6.0, -14.0, loud)  # a loud opening heard at -20
    join = plan_join(a, b, 10.0)
    assert join.match_db == pytest.approx(-8.0, abs=0.3)
    assert join.sag_db < 1.5
    points = ramp_points(10.0, 200.0, join.match_db, 0.0, 10.0)
    assert points[0][1] == pytest.approx(join.match_db)
    assert points[-1][1] == 0.0
    # No faster than 0.25 dB/s: 8 dB takes at least 32 s.
    assert points[-1][0] - 10.0 >= 31.9
    level = programme_level(
        [a, b], [(0.0, join.fade_out), (join.fade_in, 0.0)], [(), points], np.arange(150, 300, 0.5)
    )
    assert np.max(np.abs(np.diff(level))) < 0.6  # per half second: no step anywhere


def test_cue_points_from_a_therapist_override_the_analysis() -> None:
    f = features_from_samples(shaped("hidden", 5).astype(np.float32), RATE)
    g = with_cue_points(f, 10.0, 250.0)
    assert g.edges is not None
    assert (g.edges.cue_in, g.edges.cue_out, g.edges.hidden) == (10.0, 250.0, 0.0)
    bare = Features(**{k: getattr(f, k) for k in f.__slots__ if k != "edges"})
    assert with_cue_points(bare, None, 100.0).edges.cue_out == 100.0  # type: ignore[union-attr]


def test_the_guard_finds_a_planned_hole() -> None:
    quiet = Edges(cue_in=0, cue_out=300, curve=(-20.0,) * 100 + (-65.0,) * 10 + (-20.0,) * 190)
    f = features_from_samples(shaped("plain", 6).astype(np.float32), RATE)
    track = Track(
        1,
        "file:///q.flac",
        "Holey",
        300.0,
        features=Features(
            **{**{k: getattr(f, k) for k in f.__slots__}, "edges": quiet, "duration": 300.0}
        ),
    )
    entry = SetlistEntry(track=track, phase="p", start=0.0, length=300.0, fade_out=10.0)
    from setlist.models import Arc, Curve, Keyframe, Phase, PlanMetrics, Setlist

    arc = Arc("a", (Phase("p", 300.0, Curve((Keyframe(0.3),))),))
    s = Setlist(arc, (entry,), (), PlanMetrics(0, 0, -1, 0, 0), loudness_target=-20.0)
    holes = dead_air(s)
    assert len(holes) == 1 and holes[0].entries == (0,)
    assert holes[0].start == pytest.approx(100.0, abs=3) and holes[0].length >= 6


# --- end to end: scan, build, render, measure with FFmpeg ------------------------------


ARC = """
name: joins-test
length: 24m
tolerance: 30s
crossfade: 10s
phases:
  - name: settle
    duration: {min: 8m, max: 14m, nominal: 10m}
    intensity: 0.3
    volume: -3dB
  - name: rest
    duration: {min: 10m, max: 18m, nominal: 14m}
    intensity: 0.3
    volume: -9dB
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("joins")
    for i, kind in enumerate(KINDS):
        write_audio(
            d / "music" / f"{i:02d}-{kind}.flac",
            shaped(kind, 10 + i),
            RATE,
            tags={"title": f"{kind} {i}", "artist": f"Artist {i}"},
        )
    db = d / "lib.sqlite"
    with Index.open(db) as index:
        scan([d / "music"], index, jobs=1)
        ids = [e.track.id for e in index.search([])]
        # One intensity for all, so the test is about the joins, not the fit.
        index.annotate(ids, {"intensity": 0.3})
    arc = d / "joins-test.yaml"
    arc.write_text(ARC)
    out = d / "out"
    result = CliRunner().invoke(
        main,
        [
            "build",
            str(arc),
            "--db",
            str(db),
            "--seed",
            "3",
            "--dir",
            str(out),
            "--out",
            "s",
            "--artist-gap",
            "0",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    wav = d / "s.wav"
    result = CliRunner().invoke(
        main, ["render", str(out / "s.setlist.yaml"), "-o", str(wav)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return {"setlist": out / "s.setlist.yaml", "wav": wav, "db": db}


def ebur128(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, M, S) every 100 ms from FFmpeg's ebur128 filter run on the decoded file."""
    times, momentary, short = [], [], []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        graph = av.filter.Graph()
        src = graph.add_abuffer(template=stream)
        meter = graph.add("ebur128", "metadata=1")
        sink = graph.add("abuffersink")
        src.link_to(meter)
        meter.link_to(sink)
        graph.configure()

        def drain() -> None:
            while True:
                try:
                    frame = graph.pull()
                except (av.error.BlockingIOError, av.error.EOFError):
                    return
                md = frame.metadata
                if "lavfi.r128.M" in md:
                    times.append(float(frame.pts * frame.time_base) + frame.samples / frame.rate)
                    momentary.append(float(md["lavfi.r128.M"]))
                    short.append(float(md["lavfi.r128.S"]))

        for frame in container.decode(stream):
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    return np.array(times), np.array(momentary), np.array(short)


def test_a_rendered_session_has_level_joins_and_no_dead_air(session: dict[str, Path]) -> None:
    setlist = load_setlist(session["setlist"])
    times, momentary, short = ebur128(session["wav"])
    # The hidden track's silence is never played: the session never drops under -50 LUFS
    # (momentary) for more than 1.5 s between its opening and closing seconds.
    inside = (times > 3.0) & (times < setlist.length - 3.0)
    low = (momentary < -50.0) & inside
    longest = 0.0
    run = 0
    for flag in low:
        run = run + 1 if flag else 0
        longest = max(longest, run * 0.1)
    assert longest <= 1.5, f"{longest:.1f}s under -50 LUFS"
    # Every join: short-term level 10 s before against 10 s after its centre.
    steps = []
    for a, b in zip(setlist.entries, setlist.entries[1:], strict=False):
        centre = (b.start + a.end) / 2
        before = short[np.argmin(np.abs(times - (centre - 10)))]
        after = short[np.argmin(np.abs(times - (centre + 10)))]
        steps.append(after - before)
    assert len(steps) >= 6
    worst = max(abs(s) for s in steps)
    assert worst <= 3.0, f"join steps {np.round(steps, 1)}"
    assert float(np.median(np.abs(steps))) <= 1.5
    # The phase volume change (-3 to -9 dB) is a slow ramp: no 3 s window jumps.
    body = short[(times > 15.0) & (times < setlist.length - 35.0)]  # past the fade in/out
    assert np.max(np.abs(np.diff(body[::10]))) < 3.0
    assert not math.isnan(worst)


def test_the_hidden_track_is_not_played_and_library_show_says_so(
    session: dict[str, Path],
) -> None:
    setlist = load_setlist(session["setlist"])
    for e in setlist.entries:
        f = e.track.features
        if "hidden" in e.track.title:
            assert e.offset + e.length <= 152
    result = CliRunner().invoke(
        main, ["library", "show", "title:hidden", "--db", str(session["db"])]
    )
    assert result.exit_code == 0, result.output
    assert "hidden track" in result.output and "not played" in result.output
    assert f is None or f.version >= 3
