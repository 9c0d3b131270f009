"""The session log: fsynced JSON Lines that survive a crash, resume points, clinical notes."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from setlist.conductor import HEARTBEAT, Conductor
from setlist.controls import Action, Command
from setlist.errors import SessionLogError
from setlist.sessionlog import SessionLog, format_log, read_log, resume_point
from setlist.testing import FakeClock, FakePlayer, make_track
from tests.test_timeline import three

REPO = Path(__file__).resolve().parent.parent
HEADER = {"setlist": "/music/sessions/tiny.setlist.yaml", "arc": "test-arc", "seed": 7}


# -- writing -----------------------------------------------------------------------------


def test_create_writes_a_private_log_starting_with_the_header(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    old = os.umask(0o022)
    try:
        log = SessionLog.create(path, {**HEADER, "start_at": 12.0})
    finally:
        os.umask(old)
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # clinical data
    (event,) = read_log(path)
    assert event["kind"] == "session-start" and event["session"] == 12.0
    assert event["arc"] == "test-arc" and event["seed"] == 7 and event["setlist"].endswith("yaml")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", event["t"])
    with pytest.raises(SessionLogError, match="never overwritten"):
        SessionLog.create(path, HEADER)
    assert len(read_log(path)) == 1


def test_every_event_is_one_line_on_disk_before_write_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.jsonl"
    log = SessionLog.create(path, HEADER)
    synced: list[list[str]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        real_fsync(fd)
        synced.append(path.read_text("utf-8").splitlines())

    monkeypatch.setattr("setlist.sessionlog.os.fsync", spy)
    log.write("track-start", session=1.5, key=0, title='Für Elise — "live"\nencore')
    log.write("control", session=2.0, action="louder", amount=None, level=float("inf"))
    log.write("fault", key=3, reason="x")  # no session given: the last one known
    assert [len(lines) for lines in synced] == [2, 3, 4]  # each line fsynced as written
    log.close()
    events = read_log(path)
    assert [e["kind"] for e in events] == ["session-start", "track-start", "control", "fault"]
    assert events[1]["title"] == 'Für Elise — "live"\nencore'
    assert events[2]["level"] is None and events[2]["amount"] is None
    assert events[3]["session"] == 2.0
    assert all(list(e)[:3] == ["t", "session", "kind"] for e in events)
    with pytest.raises(SessionLogError, match="closed"):
        log.write("fault")


def test_a_torn_last_line_is_skipped_and_closed_off_when_appending(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    with SessionLog.create(path, HEADER) as log:
        log.write("track-start", session=5.0, key=0, track_id=1, offset=0.0)
    with path.open("ab") as fh:  # a power cut in the middle of a write
        fh.write(b'{"t":"2025-01-01T10:00:00.000+00:00","session":9.0,"kind":"pos')
    assert [e["kind"] for e in read_log(path)] == ["session-start", "track-start"]
    with SessionLog.append_to(path) as log:
        assert log.appended and log.session == 5.0
        log.write("restart", session=9.0, setlist=HEADER["setlist"])
    events = read_log(path)
    assert [e["kind"] for e in events] == ["session-start", "track-start", "restart"]
    assert path.read_bytes().count(b"\n") == 4  # the fragment keeps a line of its own


def test_a_file_that_is_not_a_session_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("dear diary\n")
    with pytest.raises(SessionLogError, match="not a session log"):
        read_log(path)
    with pytest.raises(SessionLogError, match="cannot read"):
        read_log(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert read_log(empty) == []


# -- resume points -------------------------------------------------------------------------


def ev(kind: str, session: float, **fields: Any) -> dict[str, Any]:
    return {"t": "2025-01-01T10:00:00.000+00:00", "session": session, "kind": kind, **fields}


def test_resume_point_is_the_latest_started_track_at_the_last_logged_time() -> None:
    events = [
        ev("session-start", 0.0, **HEADER),
        ev("track-start", 0.0, key=0, track_id=1, title="A", offset=0.0),
        ev("control", 40.0, action="quieter", master_db=-3.0, target_shift=0.0),
        ev("track-start", 90.0, key=1, track_id=2, title="B", artist="X", offset=12.0),
        ev("track-stop", 100.0, key=0, track_id=1, reason="planned"),
        ev("position", 130.0, key=1, track_id=2, position=52.0, master_db=-3.0, target_shift=0.2),
    ]
    point = resume_point(events)
    assert point.setlist == HEADER["setlist"] and point.session_time == 130.0
    assert (point.key, point.track_id, point.title, point.artist) == (1, 2, "B", "X")
    assert point.position == pytest.approx(12.0 + 40.0)
    assert point.master_db == -3.0 and point.target_shift == 0.2 and not point.ended
    # Mid-crossfade, the incoming track is the one to resume.
    crossfade = [*events[:4], ev("position", 95.0, master_db=-3.0)]
    assert resume_point(crossfade).key == 1 and resume_point(crossfade).position == 17.0


def test_a_session_ended_on_purpose_resumes_where_its_ending_began() -> None:
    events = [
        ev("session-start", 0.0, **HEADER),
        ev("track-start", 0.0, key=0, track_id=1, offset=0.0),
        ev("control", 50.0, action="fade-out", amount=4.0),
        ev("track-stop", 54.0, key=0, reason="cut"),
        ev("session-end", 54.0, reason="faded out (signal)", **{"from": 50.0}),
    ]
    point = resume_point(events)
    assert point.ended and point.reason == "faded out (signal)"
    assert point.session_time == 50.0 and point.key == 0 and point.position == 50.0


def test_resume_point_needs_a_setlist() -> None:
    with pytest.raises(SessionLogError, match="empty"):
        resume_point([])
    with pytest.raises(SessionLogError, match="which setlist"):
        resume_point([ev("track-start", 0.0, key=0)])


CRASHING_SESSION = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from setlist.conductor import Conductor
from setlist.controls import Action, Command
from setlist.sessionlog import SessionLog
from setlist.testing import FakeClock, FakePlayer, make_track
from setlist.timeline import Cue, Timeline
from tests.test_timeline import cue, three

def cue(key, start, stop, **kw):
    return Cue(key, make_track(key + 1), kw.pop("phase", "peak"), start, stop, **kw)

tl = Timeline((cue(0, 0, 100, fade_out=10, phase="onset"),
               cue(1, 90, 190, fade_in=10, fade_out=10, phase="onset"),
               cue(2, 180, 280, fade_in=10)), ("onset", "peak"))
log = SessionLog.create(sys.argv[1], {header!r})
clock = FakeClock(1000.0)
c = Conductor(tl, FakePlayer(clock), clock, log=log)
asked = []
def on_tick(status):
    if status.session_time >= 40 and not asked:
        asked.append(1)
        c.submit(Command(Action.QUIETER, 3.0, "keyboard"))
    if status.session_time >= {crash_at}:
        os.kill(os.getpid(), signal.SIGKILL)  # no fade, no session-end, no close
c.on_tick = on_tick
c.run()
"""


def run_until_killed(path: Path, crash_at: float) -> None:
    code = textwrap.dedent(CRASHING_SESSION).format(
        repo=str(REPO), header=HEADER, crash_at=crash_at
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_killed_session_leaves_a_readable_log_and_a_resume_point(tmp_path: Path) -> None:
    path = tmp_path / "crash.session.jsonl"
    run_until_killed(path, crash_at=125.0)
    events = read_log(path)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "session-start" and "session-end" not in kinds
    assert [e["key"] for e in events if e["kind"] == "track-start"] == [0, 1]
    assert any(e["kind"] == "control" and e["action"] == "quieter" for e in events)
    assert kinds.count("position") >= 10  # a heartbeat every HEARTBEAT seconds
    point = resume_point(events)
    assert 125.0 - HEARTBEAT - 0.2 <= point.session_time <= 125.0  # at most ~10 s lost
    assert point.key == 1 and point.track_id == 2 and point.title == "Track 2"
    assert point.position == pytest.approx(point.session_time - 90.0, abs=0.01)
    assert point.master_db == -3.0
    assert point.setlist == HEADER["setlist"]


def test_a_resumed_session_continues_the_same_log(tmp_path: Path) -> None:
    path = tmp_path / "crash.session.jsonl"
    run_until_killed(path, crash_at=125.0)
    before = read_log(path)
    point = resume_point(before)
    log = SessionLog.append_to(path)
    clock = FakeClock(5000.0)
    player = FakePlayer(clock)
    c = Conductor(
        three(),
        player,
        clock,
        log=log,
        start_at=point.session_time,
        master_db=point.master_db,
        metadata={"setlist": point.setlist, "resumed_from": str(path)},
    )
    c.run_for(30)
    c.request_stop(2.0)
    c.run()
    log.close()
    after = read_log(path)
    assert after[: len(before)] == before
    new = after[len(before) :]
    assert new[0]["kind"] == "restart" and new[0]["session"] == point.session_time
    assert new[0]["setlist"] == point.setlist
    starts = [e for e in new if e["kind"] == "track-start"]
    assert starts[0]["key"] == 1 and starts[0]["offset"] == pytest.approx(point.position)
    assert player.opened(1).args[1] == pytest.approx(point.position)  # type: ignore[union-attr]
    assert starts[0]["late"] == 0.0 and starts[0]["joined"] is True
    assert new[-1]["kind"] == "session-end"
    text = "\n".join(format_log(after))
    assert re.search(r"restart\s+resumed after an interruption$", text, re.M)
    assert re.search(r"▶ Track 2 — Artist 2  \(joined at 00:00:3\d\)$", text, re.M)
    assert "late" not in text
    # A second crash after the restart resumes from the restarted run.
    again = resume_point(after[:-3])
    assert again.key is not None and again.session_time > point.session_time


# -- clinical notes ----------------------------------------------------------------------------


def test_format_log_is_a_clinical_timeline(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    log = SessionLog.create(path, {**HEADER, "length": 280.0})
    clock = FakeClock(1000.0)
    player = FakePlayer(clock, fail_after={make_track(2).uri: 30.0})
    c = Conductor(three(), player, clock, log=log)
    plan = {20.0: Action.LOUDER, 40.0: Action.PAUSE, 50.0: Action.RESUME, 60.0: Action.SKIP}
    done: set[float] = set()

    def on_tick(status: Any) -> None:
        for at, action in plan.items():
            if at not in done and clock.now() - 1000.0 >= at:
                done.add(at)
                c.submit(Command(action, origin="keyboard"))

    c.on_tick = on_tick
    c.run_for(110)
    c.submit(Command(Action.FADE_OUT, 5.0, "channel"))
    c.run()
    log.close()
    lines = format_log(read_log(path))
    text = "\n".join(lines)
    assert lines[0].startswith("Session ") and "arc test-arc · seed 7 · length 00:04:40" in lines[0]
    assert lines[1] == f"setlist {HEADER['setlist']}"
    body = lines[2:]
    assert all(re.match(r"\d\d:\d\d:\d\d  \d\d:\d\d:\d\d  \S", line) for line in body), body
    assert body[0].startswith("00:00:00") and "── onset ──" in body[0]
    assert re.search(r"00:00:00  \S+  onset\s+▶ Track 1 — Artist 1$", text, re.M)
    assert re.search(r"00:00:20  \S+  control\s+louder \(keyboard\): volume \+2\.0 dB$", text, re.M)
    assert re.search(r"00:00:40  \S+  pause\s+paused$", text, re.M)
    assert re.search(r"resume\s+resumed after 00:00:\d\d$", text, re.M)
    assert re.search(r"control\s+skip \(keyboard\): skipped to 'Track 2'$", text, re.M)
    assert re.search(r"fault\s+Track 2 — Artist 2: decoding failed after 30 s → moved", text, re.M)
    assert re.search(r"── peak ──", text)
    assert re.search(r"control\s+fade-out 5 \(channel\): fading out over 5 s$", text, re.M)
    assert re.search(r"end\s+faded out \(channel\)$", lines[-1])
    assert "position" not in text  # heartbeats stay out of the notes
    session_times = [line[:8] for line in body]
    assert session_times == sorted(session_times)
    json.dumps(lines)  # plain strings
