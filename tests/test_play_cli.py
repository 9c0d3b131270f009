"""`setlist play`, `setlist control` and `setlist log show` end to end.

Real parts throughout: generated FLAC files, a setlist file written by the exporter,
libVLC with its silent `adummy` output, the conductor on the real clock in a subprocess,
the loopback channel driven by `setlist control`, and the session log read back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from setlist.cli import SetlistGroup
from setlist.cli_play import COMMANDS
from setlist.exports import write_outputs
from setlist.library.index import path_to_uri
from setlist.models import Arc, Curve, Phase, PhaseSpan, PlanMetrics, Setlist, SetlistEntry
from setlist.playback import default_log_path
from setlist.testing import make_track
from tests.audiofiles import write_audio

REPO = Path(__file__).resolve().parent.parent
#: The CLI with the live commands registered, as the lead's cli.py will have it.
LAUNCH = (
    "from setlist.cli import cli\n"
    "from setlist.cli_play import COMMANDS\n"
    "for c in COMMANDS:\n"
    "    cli.add_command(c)\n"
    "cli(prog_name='setlist')\n"
)
app = SetlistGroup("setlist", commands={c.name: c for c in COMMANDS})
TRACK_SECONDS = 14.0
RATE = 22050


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.2 * np.sin(2 * np.pi * freq * t)


def build_session(folder: Path, missing: int = 0) -> Path:
    """Three 14 s tones cross-fading over 3 s, in two phases; `missing` files deleted."""
    tracks = []
    for i in range(1, 4):
        path = write_audio(folder / f"tone{i}.flac", tone(220.0 * i, TRACK_SECONDS), RATE)
        base = make_track(i, intensity=0.2 + 0.1 * i, duration=TRACK_SECONDS, title=f"Tone {i}",
                          artist="Test")  # fmt: skip
        tracks.append(replace(base, uri=path_to_uri(path)))
    for t in tracks[:missing]:
        (folder / f"tone{t.id}.flac").unlink()
    arc = Arc(
        "tiny",
        (
            Phase("onset", 22.0, Curve.constant(0.3), crossfade=3.0),
            Phase("integration", 14.0, Curve.constant(0.2), crossfade=3.0),
        ),
    )
    entries = (
        SetlistEntry(tracks[0], "onset", 0.0, 14.0, fade_out=3.0, target=0.3, realised=0.3),
        SetlistEntry(
            tracks[1], "onset", 11.0, 14.0, fade_in=3.0, fade_out=3.0, target=0.3, realised=0.4
        ),
        SetlistEntry(tracks[2], "integration", 22.0, 14.0, fade_in=3.0, target=0.2, realised=0.5),
    )
    setlist = Setlist(
        arc=arc,
        entries=entries,
        phases=(
            PhaseSpan("onset", 0.0, 22.0, 0.0, 23.5),
            PhaseSpan("integration", 22.0, 36.0, 23.5, 36.0),
        ),
        metrics=PlanMetrics(0.0, 0.0, 0, 0.0, 0.0),
        seed=1,
        created="2025-01-01T09:00:00+00:00",
    )
    (out,) = write_outputs(setlist, folder, "tiny", ["setlist"])
    return out


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    folder.mkdir()
    build_session(folder)
    return folder


def env(tmp_path: Path) -> dict[str, str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "SETLIST_DB": str(tmp_path / "no-library.sqlite"),
        "PYTHONPATH": str(REPO),
    }


class Running:
    """`setlist play ...` in a subprocess, with its output in files."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.out = tmp_path / f"play-{time.monotonic_ns()}.out"
        self.err = self.out.with_suffix(".err")
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "play", *args, "--aout", "adummy"],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env(tmp_path),
                cwd=tmp_path,
            )

    def output(self) -> str:
        return self.out.read_text() + "\n--- stderr ---\n" + self.err.read_text()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail(f"setlist play did not end within {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for r in started:
        r.stop()


def control(tmp_path: Path, log: Path, *command: str, check: bool = True) -> dict[str, Any]:
    """`setlist control --log LOG COMMAND --json`, as a second terminal would run it."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "control", *command, "--log", str(log), "--json"],
        capture_output=True,
        text=True,
        env=env(tmp_path),
        timeout=30,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr}


def wait_for(predicate: Any, timeout: float, what: str, r: Running) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if r.proc.poll() is not None:
            pytest.fail(f"setlist play exited ({r.proc.returncode}) before {what}:\n{r.output()}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}:\n{r.output()}")


def start(tmp_path: Path, running: list[Running], *args: str) -> tuple[Running, Path]:
    log = tmp_path / "sessions" / "run.session.jsonl"
    for i, a in enumerate(args):
        if a in ("--log", "--resume"):
            log = Path(args[i + 1])
    r = Running(tmp_path, *args)
    running.append(r)
    control_file = log.with_name(log.name.replace(".jsonl", ".control.json"))
    wait_for(control_file.exists, 30, "the control file", r)
    return r, log


def log_events(log: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["log", "show", str(log), "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_play_driven_through_the_channel_and_logged(
    tmp_path: Path, session_dir: Path, running: list[Running]
) -> None:
    log = session_dir / "run.session.jsonl"
    r, _ = start(tmp_path, running, str(session_dir / "tiny.setlist.yaml"), "--log", str(log))
    status = wait_for(
        lambda: (s := control(tmp_path, log, "status"))["now"] and s, 15, "the first track", r
    )
    assert status["now"]["title"] == "Tone 1" and status["length"] == pytest.approx(36.0)
    sent = time.monotonic()
    skipped = control(tmp_path, log, "skip")
    assert time.monotonic() - sent < 10  # includes interpreter start-up of the client
    wait_for(lambda: control(tmp_path, log, "status")["now"]["title"] == "Tone 2", 5, "the skip", r)
    assert skipped["length"] < 36.0  # skipping pulled the rest of the plan earlier
    control(tmp_path, log, "fade-out", "1")
    assert r.wait(15) == 0, r.output()
    assert not log.with_name("run.session.control.json").exists()

    events = log_events(log)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "session-start" and kinds[-1] == "session-end"
    controls = [e for e in events if e["kind"] == "control"]
    assert [c["action"] for c in controls] == ["skip", "fade-out"]
    assert all(c["origin"] == "channel" for c in controls)
    assert any(e["kind"] == "track-start" and e["title"] == "Tone 2" for e in events)
    text = CliRunner().invoke(app, ["log", "show", str(log)])
    assert text.exit_code == 0
    assert "skip" in text.stdout and "Tone 1" in text.stdout
    out = r.out.read_text()
    assert "control: http://127.0.0.1:" in out and "?token=" in out
    assert "session ended" in out


def test_sigterm_fades_out_and_exits_cleanly(
    tmp_path: Path, session_dir: Path, running: list[Running]
) -> None:
    log = session_dir / "term.session.jsonl"
    r, _ = start(tmp_path, running, str(session_dir / "tiny.setlist.yaml"), "--log", str(log))
    wait_for(lambda: control(tmp_path, log, "status")["session_time"] > 1.0, 15, "playing", r)
    sent = time.monotonic()
    r.proc.send_signal(signal.SIGTERM)
    assert r.wait(15) == 0, r.output()
    took = time.monotonic() - sent
    assert 3.0 < took < 12.0, took  # a few seconds of fade, not a cut and not a hang
    events = log_events(log)
    assert events[-1]["kind"] == "session-end"


def test_resume_after_a_crash_restarts_at_the_logged_track(
    tmp_path: Path, session_dir: Path, running: list[Running]
) -> None:
    log = session_dir / "crash.session.jsonl"
    r, _ = start(tmp_path, running, str(session_dir / "tiny.setlist.yaml"), "--log", str(log))
    # after the first crossfade (11-14 s), so only Tone 2 is sounding
    wait_for(
        lambda: control(tmp_path, log, "status")["session_time"] > 15.0, 30, "the second track", r
    )
    r.proc.kill()  # a crash: no fade, no session-end
    r.proc.wait(5)
    before = log_events(log)
    assert before[-1]["kind"] != "session-end"
    crashed_at = max(e["session"] for e in before)
    control_file = log.with_name("crash.session.control.json")
    control_file.unlink(missing_ok=True)  # a crash leaves it behind; the next run rewrites it

    r2, _ = start(tmp_path, running, "--resume", str(log))
    status = wait_for(
        lambda: (s := control(tmp_path, log, "status"))["now"] and s, 15, "the resumed track", r2
    )
    assert status["now"]["title"] == "Tone 2"
    assert status["session_time"] == pytest.approx(crashed_at, abs=5.0)
    control(tmp_path, log, "fade-out", "1")
    assert r2.wait(15) == 0, r2.output()
    after = log_events(log)
    assert after[: len(before)] == before  # appended to the same log
    assert after[-1]["kind"] == "session-end"
    resumed = after[len(before) :]
    assert resumed[0]["kind"] == "restart"
    starts = [e for e in resumed if e["kind"] == "track-start"]
    assert starts and starts[0]["title"] == "Tone 2"
    # the same place in the file: Tone 2 began at 11 s on the session clock
    assert starts[0]["offset"] == pytest.approx(crashed_at - 11.0, abs=0.5)


# -- before the music: one clear line ---------------------------------------------------


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_errors_before_the_music_are_one_line(tmp_path: Path, session_dir: Path) -> None:
    setlist = str(session_dir / "tiny.setlist.yaml")
    cases = [
        (["play", str(tmp_path / "nope.setlist.yaml")], "no such setlist"),
        (["play", setlist, "--start-at", "5:00", "--aout", "adummy"], "outside the session"),
        (["play", setlist, "--device", "no-such-speaker", "--aout", "adummy"], "unknown audio"),
        (["play", "--resume", str(tmp_path / "none.jsonl")], "no such session log"),
        (["play", setlist, "--log", setlist, "--aout", "adummy"], "already exists"),
        (["log", "show", str(tmp_path / "none.jsonl")], "no such session log"),
        (["control", "dance", "--url", "http://127.0.0.1:9", "--token", "t"], "unknown command"),
        (["control", "skip", "--url", "http://127.0.0.1:9", "--token", "t"], "no session"),
    ]
    for args, message in cases:
        code, _, err = invoke(*args)
        assert code != 0, args
        lines = [line for line in err.splitlines() if not line.startswith("  hint:")]
        assert len(lines) == 1 and message in lines[0], (args, err)
    code, _, err = invoke("play", setlist, "--start-at", "soon")
    assert code == 2 and "not a time" in err
    code, _, err = invoke("play")
    assert code == 2 and "--resume" in err


def test_all_files_missing_is_refused_and_some_missing_warned(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    build_session(gone, missing=3)
    code, _, err = invoke("play", str(gone / "tiny.setlist.yaml"), "--aout", "adummy")
    assert code == 1 and "none of the 3 tracks" in err

    from setlist.playback import PlayRequest, prepare

    some = tmp_path / "some"
    some.mkdir()
    build_session(some, missing=1)
    prepared = prepare(PlayRequest(some / "tiny.setlist.yaml", db=tmp_path / "none.sqlite"))
    assert any("tone1.flac" in w and "replaced" in w for w in prepared.warnings)
    assert any("no library index" in w for w in prepared.warnings)
    assert prepared.replanner is None


def test_default_log_name_sits_beside_the_setlist_and_never_overwrites(tmp_path: Path) -> None:
    import datetime as dt

    playlist = tmp_path / "monday.setlist.yaml"
    when = dt.datetime(2025, 3, 14, 9, 30)
    first = default_log_path(playlist, when)
    assert first == tmp_path / "monday.20250314-0930.session.jsonl"
    first.write_text("")
    assert default_log_path(playlist, when) == tmp_path / "monday.20250314-0930-2.session.jsonl"


def test_list_devices(tmp_path: Path) -> None:
    code, out, err = invoke("play", "--list-devices", "--aout", "adummy")
    assert code == 0, err
    assert out.strip() == "no audio output devices found"


# -- wiring that needs no conductor -----------------------------------------------------


def test_signals_ask_for_a_fade_and_a_second_ctrl_c_hurries_it() -> None:
    from setlist.playback import HURRY_FADE, STOP_FADE, stop_on_signals

    asked: list[float] = []
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals(asked.append):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # handlers run between bytecodes of the main thread
    assert asked == [STOP_FADE, HURRY_FADE]
    assert signal.getsignal(signal.SIGINT) is before  # put back afterwards


def test_resume_puts_the_logged_track_back_on_the_logged_clock(session_dir: Path) -> None:
    from types import SimpleNamespace

    from setlist.exports import load_setlist
    from setlist.playback import _resume_start
    from setlist.timeline import Timeline

    timeline = Timeline.from_setlist(load_setlist(session_dir / "tiny.setlist.yaml"))
    # the first run skipped 5 s early into Tone 2 (id 2), then crashed 4 s into it
    point = SimpleNamespace(session_time=10.0, track_id=2, position=4.0)
    moved, start, note = _resume_start(timeline, point)
    assert note is None and start == 10.0
    cue = moved.current(start)
    assert cue is not None and cue.track.id == 2
    assert cue.file_time(start) == pytest.approx(4.0)
    gone = SimpleNamespace(session_time=10.0, track_id=99, position=4.0)
    same, start, note = _resume_start(timeline, gone)
    assert same is timeline and start == 10.0 and note and "re-plan" in note


def test_chart_curves_span_the_session(session_dir: Path) -> None:
    from setlist.exports import load_setlist
    from setlist.playback import curves

    s = load_setlist(session_dir / "tiny.setlist.yaml")
    target, realised = curves(s, 36.0)
    assert target[0] == (0.0, pytest.approx(0.3)) and target[-1][0] == pytest.approx(36.0)
    assert target[-1][1] == pytest.approx(0.2)
    assert len(realised) == len(target)
    at = dict(realised)
    # Tone 1 (intensity 0.3) plays alone early on, Tone 3 (0.5) at the end
    early = min(at, key=lambda t: abs(t - 5.0))
    late = min(at, key=lambda t: abs(t - 32.0))
    assert at[early] == pytest.approx(0.3, abs=0.02) and at[late] == pytest.approx(0.5, abs=0.02)


def test_re_planning_keeps_the_built_for_listeners_vetoes(tmp_path: Path) -> None:
    """A session built for profiles re-plans only when they are given again."""
    from setlist.cli import cli
    from setlist.exports import load_setlist
    from setlist.playback import PlayRequest, prepare

    folder = tmp_path / "s"
    folder.mkdir()
    built = load_setlist(build_session(folder))
    db = tmp_path / "lib.sqlite"
    scan = CliRunner().invoke(cli, ["library", "scan", str(folder), "--db", str(db)])
    assert scan.exit_code == 0, scan.output
    for_couple = replace(built, profiles=("partner-a", "partner-b"))
    (path,) = write_outputs(for_couple, folder, "couple", ["setlist"])

    blind = prepare(PlayRequest(path, db=db))
    assert blind.replanner is None
    assert any("--profile" in w and "partner-a" in w for w in blind.warnings)

    repo = Path(__file__).resolve().parent.parent / "profiles"
    given = prepare(
        PlayRequest(path, db=db, profiles=(repo / "partner-a.yaml", repo / "partner-b.yaml"))
    )
    assert given.replanner is not None
    assert not any("--profile" in w for w in given.warnings)


def test_backend_notices_reach_the_log_and_the_status(session_dir: Path, tmp_path: Path) -> None:
    """What a backend says that is no voice's fault (e.g. a phone without volume control)."""
    import io

    from setlist.playback import PlayRequest, play
    from setlist.sessionlog import format_log, read_log
    from setlist.testing import FakeClock, FakePlayer

    class Noticing(FakePlayer):
        told = False

        def notices(self) -> list[str]:
            if self.told:
                return []
            self.told = True
            return ["Session Room has no volume control: crossfades become cuts"]

    clock = FakeClock()
    log = tmp_path / "n.jsonl"
    request = PlayRequest(session_dir / "tiny.setlist.yaml", log=log, channel=False, view=False,
                          db=tmp_path / "none.sqlite")  # fmt: skip
    result = play(request, out=io.StringIO(), err=io.StringIO(), clock=clock,
                  player_factory=lambda r: Noticing(clock))  # fmt: skip
    assert result.reason
    events = read_log(log)
    assert [e["text"] for e in events if e["kind"] == "notice"] == [
        "Session Room has no volume control: crossfades become cuts"
    ]
    assert any("notice" in line and "no volume control" in line for line in format_log(events))


def test_resume_plays_the_plan_the_log_last_held(tmp_path: Path, session_dir: Path) -> None:
    """After a re-plan put Tone 3 in Tone 2's place, a resume continues with Tone 3."""
    from setlist.exports import load_setlist
    from setlist.playback import PlayRequest, prepare
    from setlist.sessionlog import SessionLog
    from setlist.timeline import Timeline

    playlist = session_dir / "tiny.setlist.yaml"
    setlist = load_setlist(playlist)
    built = Timeline.from_setlist(setlist)
    first, _, third = built.cues
    edited = built.cut(first.key, 5.0, 3.0).with_cues(
        [
            built.cut(first.key, 5.0, 3.0).cues[0],
            replace(third, key=3, phase="onset", start=5.0, stop=19.0, fade_in=3.0),
        ]
    )
    log = session_dir / "replanned.session.jsonl"
    with SessionLog.create(log, {"setlist": str(playlist)}) as w:
        w.write("track-start", session=0.0, key=0, track_id=1, title="Tone 1", offset=0.0)
        w.write("plan", session=5.0, timeline=edited.to_data(), phase_ends=[26.0, 40.0])
        w.write("track-start", session=5.0, key=3, track_id=3, title="Tone 3", offset=0.0)
        w.write("position", session=9.0)

    prepared = prepare(PlayRequest(None, resume=log, db=tmp_path / "none.sqlite"))
    assert prepared.timeline.to_data() == edited.to_data()
    assert prepared.start_at == pytest.approx(9.0)
    now = prepared.timeline.current(9.0)
    assert now is not None and now.key == 3 and now.file_time(9.0) == pytest.approx(4.0)
    assert now.track == third.track  # the setlist's full record (features and all)
    assert not [w for w in prepared.warnings if "not in the plan" in w or "cannot be read" in w]

    # With a library, the re-planner takes the logged phase schedule; one that does not
    # fit the arc (here a single end for two phases) leaves it on the arc's own.
    from setlist.cli import cli

    db = tmp_path / "lib.sqlite"
    scan = CliRunner().invoke(cli, ["library", "scan", str(session_dir), "--db", str(db)])
    assert scan.exit_code == 0, scan.output
    with_library = prepare(PlayRequest(None, resume=log, db=db))
    assert [m.end for m in with_library.replanner.schedule()] == [26.0, 40.0]
    lines = log.read_text().splitlines()
    log.write_text(
        "\n".join(line.replace('"phase_ends":[26.0,40.0]', '"phase_ends":[26.0]') for line in lines)
        + "\n"
    )
    misfit = prepare(PlayRequest(None, resume=log, db=db))
    assert misfit.timeline.to_data() == edited.to_data()
    assert [m.end for m in misfit.replanner.schedule()] == list(setlist.arc.ends)
