"""Levels enforced where sound is made: hand-edited setlist files cannot bypass the caps.

Each hostile file is real YAML written by the real writer (then edited the way a person
would), read by the real reader, rendered by the real renderer into a real file whose
peak is measured from its samples.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from setlist.cli import cli
from setlist.conductor import Conductor
from setlist.controls import Action, Command
from setlist.exports import load_setlist, setlist_yaml
from setlist.levels import Limits, check_entries, check_setlist, setlist_master_limit
from setlist.library.index import path_to_uri
from setlist.models import Arc, Curve, Phase, PhaseSpan, PlanMetrics, Setlist, SetlistEntry
from setlist.playback import PlayRequest, prepare
from setlist.testing import FakeClock, FakePlayer, make_track
from setlist.timeline import Timeline, gain_to_db
from tests.audiofiles import tone, write_audio

RATE = 44100
LEVEL = 0.5  # the tones' peak amplitude: -6.02 dBFS
PEAK_DB = 20 * math.log10(LEVEL)
CEILING = 10 ** (-1 / 20)


def _track(path: Path, track_id: int, *, peak: float = PEAK_DB, loudness: float = -9.0):
    t = make_track(track_id, duration=8.0, peak=peak, loudness=loudness, title=f"tone {track_id}")
    return replace(t, uri=path_to_uri(path))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("level-src")
    return [
        write_audio(d / f"t{i}.wav", tone(8.0, 220.0 * (i + 1), LEVEL, RATE), RATE)
        for i in range(2)
    ]


def _setlist(sources: list[Path], gains: tuple[float, float], volumes=(0.0, 0.0), **kw) -> Setlist:
    arc = Arc("tiny", (Phase("settle", 14.0, Curve.constant(0.4), crossfade=2.0, volume_db=-3.0),))
    peak = kw.pop("peak", PEAK_DB)
    entries = tuple(
        SetlistEntry(
            _track(p, i + 1, peak=peak),
            "settle",
            6.0 * i,
            8.0,
            fade_in=2.0 if i else 0.0,
            fade_out=2.0,
            gain_db=gains[i],
            volume_db=volumes[i],
        )
        for i, p in enumerate(sources)
    )
    return Setlist(
        arc=arc,
        entries=entries,
        phases=(PhaseSpan("settle", 0.0, 14.0, 0.0, 14.0),),
        metrics=PlanMetrics(0.0, 0.0, 0, 0.0, 0.0),
        **kw,
    )


def _file(tmp_path: Path, s: Setlist, name: str = "hostile") -> Path:
    path = tmp_path / f"{name}.setlist.yaml"
    path.write_text(setlist_yaml(s), encoding="utf-8")
    return path


def _peak_of(path: Path) -> float:
    with av.open(str(path)) as c:
        top = 0.0
        for frame in c.decode(audio=0):
            a = frame.to_ndarray().astype(np.float64)
            if a.dtype.kind == "i" or frame.format.name.startswith("s16"):
                a = a / 32768.0
            top = max(top, float(np.max(np.abs(a))))
    return top


# --- the rules ---------------------------------------------------------------------------


def test_non_finite_and_excessive_levels_are_corrected_one_line_each(sources: list[Path]) -> None:
    s = _setlist(sources, (30.0, math.nan), (math.nan, 2.0), max_volume_db=-6.0)
    fixed, notes = check_setlist(s)
    a, b = fixed.entries
    assert a.gain_db == pytest.approx(-1.0 - PEAK_DB, abs=0.011) and a.gain_db <= -1 - PEAK_DB
    assert math.isfinite(b.gain_db) and b.gain_db + PEAK_DB <= -1.0
    assert a.volume_db == b.volume_db == -6.0  # the listener's cap is below the phase's -3
    assert len(notes) == 2 and all("\n" not in n for n in notes)  # one line per entry
    assert "entries[0] 'tone 1': gain +30.00 dB would put its peak at" in notes[0]
    assert "volume_db nan refused; using -6.00 dB" in notes[0]
    assert "entries[1] 'tone 2': gain_db nan refused" in notes[1]
    assert "listener's max_volume_db" in notes[1]


def test_a_plan_within_its_limits_is_left_alone(sources: list[Path]) -> None:
    s = _setlist(sources, (-3.0, -4.0), (-3.0, -3.0))
    assert check_setlist(s) == (s, ())


def test_silence_by_edit_is_dead_air_and_refused() -> None:
    t = make_track(1, duration=60.0)
    e = SetlistEntry(t, "p", 0.0, 60.0, gain_db=-math.inf, volume_db=-200.0)
    checked = check_entries([e], Limits(phase_volume={"p": -2.0}))
    assert checked.entries[0].gain_db > -40.1 and checked.entries[0].volume_db == -40.0
    assert len(checked.notes) == 1


def test_the_timeline_compiles_capped_gains_even_from_an_unchecked_setlist(
    sources: list[Path],
) -> None:
    s = _setlist(sources, (math.inf, 30.0), (0.0, math.nan))
    tl = Timeline.from_setlist(s)
    for cue in tl.cues:
        assert math.isfinite(cue.gain)
        assert PEAK_DB + gain_to_db(cue.gain) <= -1.0 + 1e-9


# --- show, render, play ---------------------------------------------------------------------

HOSTILE = {
    "gain 30": ((30.0, 30.0), (0.0, 0.0), {}),
    "gain inf": ((math.inf, 0.0), (0.0, 0.0), {}),
    "gain nan": ((math.nan, -3.0), (0.0, 0.0), {}),
    "volume nan": ((-3.0, -3.0), (math.nan, 0.0), {}),
    "peak lies": ((30.0, 30.0), (0.0, 0.0), {"peak": -60.0}),  # the file's own features lie
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_render_of_a_hostile_file_never_exceeds_the_ceiling(
    tmp_path: Path, sources: list[Path], case: str
) -> None:
    gains, volumes, kw = HOSTILE[case]
    playlist = _file(tmp_path, _setlist(sources, gains, volumes, **kw))
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(cli, ["render", str(playlist), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    peak = _peak_of(out)
    assert peak <= CEILING, f"{case}: peak {20 * math.log10(peak):.2f} dBFS"
    assert peak > 0.05  # and not dead air either
    warned = [line for line in res.stderr.splitlines() if "entries[" in line]
    if case != "peak lies":
        assert warned and all(line.startswith("setlist: warning: ") for line in warned)
        assert all("hostile.setlist.yaml: entries[" in line for line in warned)


def test_show_names_each_corrected_entry(tmp_path: Path, sources: list[Path]) -> None:
    playlist = _file(tmp_path, _setlist(sources, (30.0, math.nan), (0.0, 0.0)))
    res = CliRunner().invoke(cli, ["show", str(playlist)])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if "entries[" in line]
    assert len(lines) == 2
    assert "entries[0] 'tone 1'" in lines[0] and "entries[1] 'tone 2'" in lines[1]


def test_play_prepares_the_corrected_plan_and_warns(tmp_path: Path, sources: list[Path]) -> None:
    playlist = _file(tmp_path, _setlist(sources, (math.inf, 0.0), (math.nan, 0.0)))
    prepared = prepare(PlayRequest(playlist, db=tmp_path / "none.sqlite"))
    corrected = [w for w in prepared.warnings if "entries[" in w]
    assert len(corrected) == 2  # both entries: the first's levels, the second's volume
    assert all(math.isfinite(c.gain) and c.gain > 0 for c in prepared.timeline.cues)


def test_max_volume_db_round_trips_through_the_setlist_file(
    tmp_path: Path, sources: list[Path]
) -> None:
    playlist = _file(tmp_path, _setlist(sources, (-3.0, -3.0), (-6.0, -6.0), max_volume_db=-6.0))
    assert load_setlist(playlist).max_volume_db == -6.0


# --- the master volume ------------------------------------------------------------------------


def test_louder_never_takes_a_track_past_the_ceiling_or_a_listener_past_their_max(
    sources: list[Path],
) -> None:
    # Peak -6.02 + gain 2 = -4.02 dBFS: 3.02 dB of headroom; listener cap -6, volume -8: 2 dB.
    s = check_setlist(_setlist(sources, (2.0, 2.0), (-8.0, -8.0), max_volume_db=-6.0))[0]
    limit = setlist_master_limit(s)
    assert limit.db == pytest.approx(2.0) and "max_volume_db" in limit.reason
    clock = FakeClock(1000.0)
    c = Conductor(Timeline.from_setlist(s), FakePlayer(clock), clock, master_limit=limit)
    c.submit(Command(Action.LOUDER, 46.0))
    c.tick()
    st = c.status()
    assert st.master_db == pytest.approx(2.0)
    assert "the limit: the listener's max_volume_db" in st.message
    # No listener cap: peak -6.02 + gain 4 + volume -3 = -5.02 dBFS, 4.02 dB below -1 dBFS.
    no_cap = check_setlist(_setlist(sources, (4.0, 4.0), (-3.0, -3.0)))[0]
    limit = setlist_master_limit(no_cap)
    assert limit.db == pytest.approx(4.02, abs=0.011) and limit.db <= 4.02
    assert "peaks at -1 dBFS" in limit.reason
