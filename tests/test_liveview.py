"""The live terminal view: the pure formatter, the key map, and the driver on a real pty."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import termios
import threading
import time
from dataclasses import replace

import pytest

from setlist.controls import KEYS, Action, Command, Status, TrackInfo
from setlist.liveview import (
    CONFIRM_WINDOW,
    KeyMap,
    TerminalView,
    cell_width,
    chart_lines,
    clip,
    help_lines,
    render_status,
    split_keys,
    status_line,
)

CURVE = [(0.0, 0.1), (1200.0, 0.3), (2400.0, 0.8), (4800.0, 0.7), (6000.0, 0.3), (7200.0, 0.1)]


def status(**change: object) -> Status:
    base = Status(
        session_time=2533.0,
        length=7200.0,
        paused=False,
        ended=False,
        phase="peak",
        phase_left=750.0,
        next_phase="return",
        now=TrackInfo(3, "Gentle Rain", "Artist 12", "peak", 2341.0, 2700.0, 192.0),
        next=TrackInfo(4, "Morning Light", "Artist 3", "peak", 2688.0, 3000.0, 0.0),
        next_change_in=155.0,
        master_db=-2.0,
        target_shift=0.0,
        fading_out=False,
        target_intensity=0.62,
        message="",
    )
    return replace(base, **change)  # type: ignore[arg-type]


class Session:
    """A recording stand-in for the conductor."""

    def __init__(self, snapshot: Status | None = None) -> None:
        self.snapshot = snapshot or status()
        self.commands: list[Command] = []

    def status(self) -> Status:
        return self.snapshot

    def submit(self, command: Command) -> None:
        self.commands.append(command)


# -- formatter --------------------------------------------------------------------------


@pytest.mark.parametrize("width", [20, 40, 60, 80, 132])
def test_every_line_fits_the_width(width: int) -> None:
    long_title = status(
        now=TrackInfo(3, "A very long title " * 5, "An artist with a long name", "peak", 0, 9e3, 9),
        message="re-planned 6 tracks after extend 5 " * 3,
    )
    for s in (status(), long_title, status(now=None, next=None, next_change_in=None)):
        for ascii_only in (False, True):
            lines = render_status(s, width=width, arc_curve=CURVE, realised=CURVE, ascii=ascii_only)
            assert all(cell_width(line) <= width for line in lines), lines


def test_shows_clock_phase_tracks_countdown_and_levels() -> None:
    lines = render_status(status(target_shift=0.1, message="skipped"), width=100, arc_curve=CURVE)
    text = "\n".join(lines)
    assert lines[0].startswith("0:42:13 / 2:00:00   peak  12:30 left  → return")
    assert "now   Gentle Rain — Artist 12" in lines[1]
    assert lines[1].endswith("3:12 / 2:47 left")  # 2700 - 2533 s left
    assert "next  Morning Light — Artist 3" in lines[2]
    assert lines[2].endswith("crossfade in 2:35")
    assert "volume -2.0 dB" in text and "target shift +0.10" in text
    assert "» skipped" in text
    assert lines[-1].startswith("p pause  n skip")


def test_flags_for_paused_fading_and_ended() -> None:
    assert render_status(status(paused=True), width=80)[0].endswith("PAUSED")
    assert render_status(status(fading_out=True), width=80)[0].endswith("FADING OUT")
    ended = render_status(status(ended=True, fading_out=True, paused=True), width=80)[0]
    assert ended.endswith("ENDED") and "PAUSED" not in ended


def test_no_chart_without_a_curve_and_view_message_wins() -> None:
    plain = render_status(status(message="from session"), width=80)
    charted = render_status(status(message="from session"), width=80, arc_curve=CURVE)
    assert len(charted) == len(plain) + 3
    assert "» from session" in plain
    assert "» mine" in render_status(status(message="from session"), width=80, message="mine")


def test_chart_marks_now_and_follows_the_curve() -> None:
    width = 10 + 72
    for t in (0.0, 1800.0, 3600.0, 7199.0):
        *rows, rule = chart_lines(status(session_time=t), width, CURVE)
        col = rule.index("▲") - 10
        assert col == min(71, int(t / 7200 * 72)), t
        assert rule.count("▲") == 1
    rows = chart_lines(status(), width, CURVE)[:2]
    top, bottom = rows[0][10:], rows[1][10:]
    # the peak (0.8 at 40 min, column 24) fills the bottom row and 0.6 of the top one;
    # the start (0.1) fills 0.2 of the bottom row
    assert top[24] == "▅" and bottom[24] == "█"
    assert top[0] == " " and bottom[0] in "▁▂▃"


def test_chart_past_shows_realised_and_future_the_shifted_target() -> None:
    flat = [(0.0, 0.5), (7200.0, 0.5)]
    low = [(0.0, 0.0), (7200.0, 0.0)]
    rows = chart_lines(status(session_time=3600.0, target_shift=0.25), 82, flat, low)
    bottom = rows[1][10:]
    assert set(bottom[:36]) == {" "}  # realised 0: nothing drawn before now
    assert set(bottom[37:]) == {"█"} and set(rows[0][47:]) == {"▄"}  # 0.75 ahead


def test_clip_counts_wide_characters() -> None:
    assert cell_width("日本語") == 6
    assert cell_width(clip("日本語の曲名です", 7)) <= 7
    assert clip("short", 10) == "short"
    assert clip("exactly10!", 10) == "exactly10!"
    assert clip("longer than ten", 10) == "longer th…"


def test_status_line_is_one_line() -> None:
    line = status_line(status(paused=True, message="paused"))
    assert "\n" not in line
    assert line.startswith("0:42:13/2:00:00 | peak (12:30 left) | now Gentle Rain — Artist 12")
    assert "next Morning Light in 2:35" in line and "-2.0 dB" in line and "paused" in line


def test_help_lists_every_key() -> None:
    text = "\n".join(help_lines())
    for key in KEYS:
        assert ("space" if key == " " else key) in text
    assert "q " in text and "asks to confirm" in text


def test_own_feedback_gives_way_to_the_sessions_answer() -> None:
    session = Session(status(message="playing"))
    view = TerminalView(session, stdout=io.StringIO(), stdin=io.StringIO())
    assert view.ascii  # a stream with no encoding gets the ASCII view
    view.ascii = False
    view.press("n")
    assert "» → skip" in view.lines(80)
    session.snapshot = status(message="skipped to 'Morning Light'")
    assert "» skipped to 'Morning Light'" in view.lines(80)
    view.press("q")
    assert any("press y to confirm" in line for line in view.lines(80))


# -- keys -------------------------------------------------------------------------------


def test_keys_map_to_commands_from_the_keyboard() -> None:
    keys = KeyMap()
    for key, action in KEYS.items():
        command = keys.press(key, 0.0)
        if command is None:  # a confirming key: confirm it
            assert keys.pending is not None and keys.pending[0].action is action
            command = keys.press("y", 0.5)
        assert command == Command(action, None, "keyboard"), key
    assert keys.press("\x1b[A", 1.0) == Command(Action.LOUDER, None, "keyboard")
    assert keys.press("\x1b[B", 1.0) == Command(Action.QUIETER, None, "keyboard")


def test_ending_needs_confirmation_and_anything_else_cancels() -> None:
    keys = KeyMap()
    assert keys.press("q", 0.0) is None and "press y" in keys.message
    assert keys.press("x", 1.0) is None and "cancelled" in keys.message
    assert keys.press("q", 2.0) is None
    assert keys.press("q", 3.0) == Command(Action.FADE_OUT, None, "keyboard")
    assert keys.press("f", 4.0) is None
    assert keys.press("y", 4.0 + CONFIRM_WINDOW + 1) is None  # too late
    assert keys.press("i", 20.0) is None
    assert keys.press("q", 20.5) is None and "cancelled" in keys.message  # q is not "yes"
    assert keys.press("i", 21.0) is None
    assert keys.press("i", 21.5) == Command(Action.INTEGRATION, None, "keyboard")
    keys.press("q", 30.0)
    keys.expire(30.0 + CONFIRM_WINDOW + 0.1)
    assert keys.pending is None and "cancelled" in keys.message


def test_help_toggles_and_unknown_keys_say_so() -> None:
    keys = KeyMap()
    assert keys.press("?", 0.0) is None and keys.show_help
    assert keys.press("?", 0.1) is None and not keys.show_help
    keys.press("?", 0.2)
    assert keys.press("n", 0.3) == Command(Action.SKIP, None, "keyboard")  # closes help too
    assert keys.press("z", 0.4) is None and "press ? for help" in keys.message


def test_split_keys_keeps_escape_sequences_whole() -> None:
    assert split_keys("n\x1b[A+ q") == ["n", "\x1b[A", "+", " ", "q"]
    assert split_keys("\x1b") == ["\x1b"]


# -- the driver ---------------------------------------------------------------------------


def test_plain_output_when_not_a_terminal() -> None:
    out = io.StringIO()
    session = Session(status(message="started"))
    view = TerminalView(session, stdout=out, stdin=io.StringIO(), interval=0.02, plain_interval=60)
    view.start()
    time.sleep(0.15)
    session.snapshot = status(message="skipped to Morning Light")
    time.sleep(0.15)
    view.close()
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    # one line at start, one when the message changed, one at the end; not one per draw
    assert len(lines) == 3, lines
    assert lines[0].endswith("| started") and lines[1].endswith("| skipped to Morning Light")


def _attrs(fd: int) -> list[object]:
    return termios.tcgetattr(fd)


def test_keys_on_a_real_terminal_and_the_terminal_is_restored() -> None:
    master, slave = pty.openpty()
    try:
        stdin = os.fdopen(slave, "r", closefd=False)
        before = _attrs(slave)
        assert before[3] & termios.ICANON and before[3] & termios.ECHO
        session = Session()
        out = io.StringIO()
        view = TerminalView(session, stdin=stdin, stdout=out, interval=0.05, plain_interval=60)
        view.start()
        during = _attrs(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
        assert during[3] & termios.ISIG  # Ctrl-C still signals
        assert during[6][termios.VINTR] == b"\x03"
        assert during[6][termios.VSUSP] == b"\x00" and during[6][termios.VQUIT] == b"\x00"
        os.write(master, b"n+\x1b[Bq")
        deadline = time.monotonic() + 2.0
        while len(session.commands) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.write(master, b"y")
        deadline = time.monotonic() + 2.0
        while len(session.commands) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        view.close()
        assert [c.action for c in session.commands] == [
            Action.SKIP,
            Action.LOUDER,
            Action.QUIETER,
            Action.FADE_OUT,
        ]
        assert all(c.origin == "keyboard" for c in session.commands)
        assert _attrs(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_terminal_restored_when_the_session_raises() -> None:
    master, slave = pty.openpty()
    try:
        stdin = os.fdopen(slave, "r", closefd=False)
        before = _attrs(slave)
        with (
            pytest.raises(RuntimeError),
            TerminalView(Session(), stdin=stdin, stdout=io.StringIO()),
        ):
            assert not _attrs(slave)[3] & termios.ECHO
            raise RuntimeError("boom")
        assert _attrs(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_redraws_in_place_on_a_terminal() -> None:
    master, slave = pty.openpty()
    chunks: list[bytes] = []
    stop = threading.Event()

    def drain() -> None:
        import select

        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    chunks.append(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout = os.fdopen(os.dup(slave), "w", encoding="utf-8")
        view = TerminalView(Session(), stdout=stdout, stdin=io.StringIO(), arc_curve=CURVE,
                            interval=0.05)  # fmt: skip
        assert view.tty
        view.start()
        time.sleep(0.3)
        view.close()
        stdout.close()
        time.sleep(0.1)
    finally:
        stop.set()
        reader.join(1.0)
        os.close(master)
        os.close(slave)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    assert "\x1b[?25l" in text and text.rstrip().endswith("\x1b[?25h")  # cursor hidden, shown
    lines = len(render_status(status(), width=79, arc_curve=CURVE))
    assert text.count(f"\x1b[{lines}A") >= 3  # moved up over the previous frame each time
    assert "\x1b[2K0:42:13 / 2:00:00" in text


def test_close_does_not_hang_when_the_terminal_stops_reading() -> None:
    """A terminal that stops reading (Ctrl-S on some setups, a hung pty) blocks writes;
    the end of the session must not wait on it."""
    master, slave = pty.openpty()
    try:
        stdout = os.fdopen(os.dup(slave), "w", encoding="utf-8")
        stdin = os.fdopen(slave, "r", closefd=False)
        before = _attrs(slave)
        session = Session()
        view = TerminalView(session, stdout=stdout, stdin=stdin, arc_curve=CURVE, interval=0.002)
        view.start()
        assert not _attrs(slave)[0] & termios.IXON  # Ctrl-S cannot freeze it
        time.sleep(1.0)  # nobody reads the master: the pty buffer fills, writes block
        os.write(master, b"n")
        deadline = time.monotonic() + 2.0
        while not session.commands and time.monotonic() < deadline:
            time.sleep(0.01)
        assert session.commands == [Command(Action.SKIP, None, "keyboard")]  # keys still work
        began = time.monotonic()
        view.close()
        assert time.monotonic() - began < 3.0
        assert _attrs(slave) == before
    finally:
        os.close(master)  # unblocks the stuck writer thread
        os.close(slave)
        with contextlib.suppress(OSError):
            stdout.close()
