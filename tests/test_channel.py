"""The loopback control channel: auth, commands reaching the session, errors, token file."""

from __future__ import annotations

import json
import queue
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from setlist.channel import (
    ControlChannel,
    Endpoint,
    control_file_for,
    fetch_status,
    find_endpoint,
    send_command,
    status_from_dict,
)
from setlist.controls import Action, Command, CommandError, Status, TrackInfo
from setlist.errors import PlaybackError

TICK = 0.04


def first_status() -> Status:
    return Status(
        session_time=61.0,
        length=600.0,
        paused=False,
        ended=False,
        phase="onset",
        phase_left=120.0,
        next_phase="peak",
        now=TrackInfo(0, "Dawn", "Ana", "onset", 0.0, 200.0, 61.0),
        next=TrackInfo(1, "Tide", "Bo", "onset", 190.0, 400.0, 0.0),
        next_change_in=129.0,
        master_db=0.0,
        target_shift=0.0,
        fading_out=False,
        target_intensity=0.3,
    )


class TickingSession:
    """Stands in for the conductor: commands queue up and apply on the next 40 ms tick."""

    def __init__(self) -> None:
        self.snapshot = first_status()
        self.inbox: queue.Queue[Command] = queue.Queue()
        self.applied: list[tuple[Command, float]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def status(self) -> Status:
        with self.lock:
            return self.snapshot

    def submit(self, command: Command) -> None:
        self.inbox.put(command)

    def run(self) -> None:
        while not self.stop.wait(TICK):
            while not self.inbox.empty():
                self.apply(self.inbox.get())

    def apply(self, c: Command) -> None:
        with self.lock:
            s = self.snapshot
            if c.action is Action.LOUDER:
                s = replace(s, master_db=s.master_db + c.value, message=f"volume {c}")
            elif c.action is Action.SKIP:
                s = replace(s, now=s.next, next=None, message="skipped")
            elif c.action is Action.FADE_OUT:
                s = replace(s, fading_out=True, message="fading out")
            self.snapshot = s
        self.applied.append((c, time.monotonic()))


@pytest.fixture
def session() -> Iterator[TickingSession]:
    s = TickingSession()
    yield s
    s.stop.set()
    s.thread.join(1.0)


@pytest.fixture
def channel(session: TickingSession) -> Iterator[ControlChannel]:
    with ControlChannel(session) as ch:
        yield ch


def http(
    url: str, *, token: str | None = None, body: bytes | None = None, ctype: str = "text/plain"
) -> tuple[int, str]:
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_requests_without_a_valid_token_are_refused(channel: ControlChannel) -> None:
    for token in (None, "", "wrong", channel.token + "x"):
        assert http(f"{channel.url}/status", token=token)[0] == 401
        assert http(f"{channel.url}/command", token=token, body=b"skip")[0] == 401
    assert http(f"{channel.url}/?token=nope")[0] == 401
    code, page = http(f"{channel.url}/")
    assert code == 401 and "token" in page


def test_status_with_the_token_in_a_header_or_the_query(channel: ControlChannel) -> None:
    code, body = http(f"{channel.url}/status", token=channel.token)
    assert code == 200
    assert json.loads(body) == first_status().to_dict()
    code, body = http(f"{channel.url}/status?token={channel.token}")
    assert code == 200 and json.loads(body)["phase"] == "onset"


def test_a_command_reaches_the_session_within_200_ms(
    channel: ControlChannel, session: TickingSession
) -> None:
    for body, ctype in ((b'{"command": "louder 3"}', "application/json"), (b"skip", "text/plain")):
        sent = time.monotonic()
        code, text = http(f"{channel.url}/command", token=channel.token, body=body, ctype=ctype)
        answered = time.monotonic()
        assert code == 200, text
        command, applied_at = session.applied[-1]
        assert command.origin == "channel"
        assert applied_at - sent < 0.2
        assert answered - sent < 0.5
    assert [c for c, _ in session.applied] == [
        Command(Action.LOUDER, 3.0, "channel"),
        Command(Action.SKIP, None, "channel"),
    ]
    # the answer carries the status after the command took effect
    status = json.loads(text)
    assert status["now"]["title"] == "Tide" and status["message"] == "skipped"
    assert status["master_db"] == 3.0


def test_bad_commands_get_400_and_one_line(
    channel: ControlChannel, session: TickingSession
) -> None:
    cases = [
        b"dance",
        b"extend lots",
        b"skip 3",
        b"",
        b'{"command": 5}',
        b"{not json",
        b"skip\nskip",
        b"\xff\xfe",
    ]
    for body in cases:
        code, text = http(f"{channel.url}/command", token=channel.token, body=body)
        assert code == 400, body
        assert text.endswith("\n") and text.count("\n") == 1, text
    code, text = http(f"{channel.url}/command", token=channel.token, body=b"dance")
    assert text.startswith("unknown command 'dance'") and "fade-out" in text
    time.sleep(2 * TICK)
    assert session.applied == []


def test_too_long_and_unknown_paths(channel: ControlChannel) -> None:
    assert http(f"{channel.url}/command", token=channel.token, body=b"x" * 5000)[0] == 413
    assert http(f"{channel.url}/nothing", token=channel.token)[0] == 404
    assert http(f"{channel.url}/status", token=channel.token, body=b"skip")[0] == 404


def test_an_ended_session_answers_409(channel: ControlChannel, session: TickingSession) -> None:
    with session.lock:
        session.snapshot = replace(session.snapshot, ended=True)
    code, text = http(f"{channel.url}/command", token=channel.token, body=b"skip")
    assert code == 409 and "ended" in text


def test_the_phone_page_is_self_contained(channel: ControlChannel) -> None:
    code, page = http(channel.page_url)
    assert code == 200
    assert page.startswith("<!doctype html>") and 'name="viewport"' in page
    for command in ("toggle", "skip", "louder", "quieter", "softer", "stronger", "fade-out"):
        assert f'data-c="{command}' in page
    assert "http://" not in page and "https://" not in page  # no external assets


def test_bound_to_loopback_only(channel: ControlChannel) -> None:
    assert channel._server is not None
    assert channel._server.server_address[0] == "127.0.0.1"
    other = _non_loopback_address()
    if other is None:
        pytest.skip("this machine has no non-loopback address to try")
    with pytest.raises(OSError), socket.create_connection((other, channel.port), timeout=2):
        pass


def _non_loopback_address() -> str | None:
    try:
        names = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        names = []
    for *_, addr in names:
        if not str(addr[0]).startswith("127."):
            return str(addr[0])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.254.254.254", 1))  # no packet is sent; picks the outgoing interface
        address = str(s.getsockname()[0])
    except OSError:
        return None
    finally:
        s.close()
    return None if address.startswith("127.") else address


def test_token_file_is_private_and_removed_at_close(
    session: TickingSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    log = tmp_path / "monday.20250101-0900.session.jsonl"
    with ControlChannel(session) as ch:
        path = ch.write_control_file(control_file_for(log), log=log)
        assert path == tmp_path / "monday.20250101-0900.session.control.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = json.loads(path.read_text())
        assert data["url"] == ch.url and data["token"] == ch.token and data["log"] == str(log)
        pointer = runtime / "setlist" / "control.json"
        assert stat.S_IMODE(pointer.stat().st_mode) == 0o600
        # the client finds it by the log, by the file itself, and with no options at all
        for found in (find_endpoint(log), find_endpoint(path), find_endpoint()):
            assert found == Endpoint(ch.url, ch.token)
        answer = send_command(find_endpoint(log), "louder")
        assert answer["master_db"] == 2.0
        assert status_from_dict(fetch_status(find_endpoint())) == session.status()
    assert not path.exists() and not pointer.exists()
    with pytest.raises(PlaybackError, match="no control file"):
        find_endpoint(log)


def test_client_errors_are_one_clear_line(channel: ControlChannel) -> None:
    with pytest.raises(CommandError, match="unknown command 'dance'"):
        send_command(Endpoint(channel.url, channel.token), "dance")
    with pytest.raises(PlaybackError, match="refused the token"):
        send_command(Endpoint(channel.url, "wrong"), "skip")
    port = channel.port
    channel.close()
    with pytest.raises(PlaybackError, match="no session is listening"):
        send_command(Endpoint(f"http://127.0.0.1:{port}", "t"), "skip", timeout=2)
    with pytest.raises(PlaybackError, match="go together"):
        find_endpoint(url="http://127.0.0.1:1")


def test_a_busy_port_is_a_clear_error(channel: ControlChannel, session: TickingSession) -> None:
    with pytest.raises(PlaybackError, match="cannot open the control channel"):
        ControlChannel(session, port=channel.port).start()


def test_status_round_trips_through_json() -> None:
    s = replace(first_status(), next=None, next_change_in=None, message="hi", paused=True)
    assert status_from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_the_page_script_parses(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from setlist.channel import _PAGE

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    page = _PAGE.decode()
    script = page[page.index("<script>") + len("<script>") : page.index("</script>")]
    path = tmp_path / "page.js"
    path.write_text(script)
    done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_commands_reach_a_real_conductor_within_200_ms() -> None:
    """The real Conductor on a FakeClock, ticked every 40 ms by a thread, as run() would."""
    from setlist.conductor import Conductor
    from setlist.testing import FakeClock, FakePlayer, make_track
    from setlist.timeline import Cue, Timeline

    tracks = [make_track(i, duration=120.0, title=f"Piece {i}") for i in (1, 2, 3)]
    cues = [
        Cue(k, t, "onset", 100.0 * k, 100.0 * k + 110.0, fade_in=10.0 * (k > 0), fade_out=10.0)
        for k, t in enumerate(tracks)
    ]
    clock = FakeClock(0.0)
    conductor = Conductor(Timeline(tuple(cues), ("onset",)), FakePlayer(clock), clock)
    seen: list[tuple[float, Status]] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(TICK):
            clock.advance(TICK)
            conductor.tick()
            seen.append((time.monotonic(), conductor.status()))

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    try:
        with ControlChannel(conductor) as ch:
            deadline = time.monotonic() + 5
            while conductor.status().now is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert conductor.status().now is not None
            for text, changed in (
                ("quieter 3", lambda s: s.master_db == -3.0),
                ("skip", lambda s: s.now is not None and s.now.title == "Piece 2"),
                ("pause", lambda s: s.paused),
            ):
                sent = time.monotonic()
                code, body = http(f"{ch.url}/command", token=ch.token, body=text.encode())
                assert code == 200, body
                applied = None
                deadline = time.monotonic() + 1.0
                while applied is None and time.monotonic() < deadline:
                    applied = next((at for at, s in list(seen) if at >= sent and changed(s)), None)
                    time.sleep(0.01)
                assert applied is not None, (text, conductor.status())
                assert applied - sent < 0.2, (text, applied - sent)
                assert changed(status_from_dict(json.loads(body))), body  # answer shows it
    finally:
        stop.set()
        thread.join(1.0)
