"""The live terminal view: what the therapist sees and the keys they press.

`render_status` is a pure formatter (a `Status` in, lines out) so its layout is tested
without a terminal; `TerminalView` is the thin driver around it: one thread redraws the
view about four times a second with ANSI cursor movement (no curses), another reads
single keys in cbreak mode and turns them into `Command`s. When stdout is not a terminal
(a log file, a service) it prints a plain one-line status now and then instead.

The terminal's settings are restored on every way out (normal end, exception, signal
handler ending the run, interpreter exit), because a therapist left with a terminal that
no longer echoes is a terminal they cannot use in the middle of a session.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from typing import Protocol, TextIO

from setlist.controls import DEFAULTS, KEYS, Action, Command, Status
from setlist.units import format_clock, format_length

Curve = Sequence[tuple[float, float]]

_BLOCKS = " ▁▂▃▄▅▆▇█"
#: Actions that end or reshape the whole session: a stray key must not trigger them.
CONFIRM = frozenset({Action.FADE_OUT, Action.INTEGRATION})
#: Seconds a pending confirmation stays open.
CONFIRM_WINDOW = 5.0
#: Arrow keys (as cbreak mode delivers them) that double the volume keys.
ARROWS = {"\x1b[A": Action.LOUDER, "\x1b[B": Action.QUIETER}

HELP_LINE = "p pause  n skip  +/- vol  s/S soft/strong  e/E phase±  i integr.  q end  ? help"


# -- formatting ------------------------------------------------------------------------


def cell_width(text: str) -> int:
    """Columns `text` takes on a terminal (wide East Asian characters count twice)."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in "WF" else 1
    return n


def clip(text: str, width: int, ellipsis: str = "…") -> str:
    """`text` cut to `width` columns, with an ellipsis when something was cut."""
    if width <= 0:
        return ""
    if cell_width(text) <= width:
        return text
    room = width - cell_width(ellipsis)
    out, used = [], 0
    for ch in text:
        w = cell_width(ch)
        if used + w > room:
            break
        out.append(ch)
        used += w
    return "".join(out) + ellipsis


def spread(left: str, right: str, width: int, ellipsis: str = "…") -> str:
    """`left` and `right` on one line of `width` columns; the left part gives way."""
    if not right:
        return clip(left, width, ellipsis)
    room = width - cell_width(right) - 2
    if room < 8:
        return clip(f"{left}  {right}", width, ellipsis)
    left = clip(left, room, ellipsis)
    return left + " " * (width - cell_width(left) - cell_width(right)) + right


def _track(title: str, artist: str) -> str:
    return f"{title} — {artist}" if artist else title


def _flags(status: Status) -> str:
    flags = []
    if status.ended:
        flags.append("ENDED")
    elif status.fading_out:
        flags.append("FADING OUT")
    if status.paused and not status.ended:
        flags.append("PAUSED")
    return "  ".join(flags)


def _interp(curve: Curve, times: Sequence[float]) -> list[float]:
    """Piecewise-linear values of `curve` (sorted by t) at `times`, held at the ends."""
    pts = sorted(curve)
    out = []
    j = 0
    for t in times:
        while j + 1 < len(pts) and pts[j + 1][0] <= t:
            j += 1
        if t <= pts[0][0]:
            out.append(pts[0][1])
        elif j + 1 >= len(pts):
            out.append(pts[-1][1])
        else:
            (t0, v0), (t1, v1) = pts[j], pts[j + 1]
            out.append(v0 if t1 <= t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0))
    return out


def chart_lines(
    status: Status,
    width: int,
    arc_curve: Curve,
    realised: Curve | None = None,
    *,
    rows: int = 2,
    ascii: bool = False,
) -> list[str]:
    """A `rows`-high intensity chart of the whole session plus a marker line.

    Columns left of the "now" marker show what the music delivered (`realised`, when
    given), columns right of it the target still ahead (shifted by softer/stronger), so
    one glance says where the session is on its arc and where it is heading.
    """
    label = "intensity "
    cols = max(8, width - len(label))
    length = max(status.length, 1e-9)
    centres = [(i + 0.5) * length / cols for i in range(cols)]
    target = [v + status.target_shift for v in _interp(arc_curve, centres)]
    past = _interp(realised, centres) if realised else target
    now_col = min(cols - 1, max(0, int(status.session_time / length * cols)))
    values = [past[i] if i < now_col and realised else target[i] for i in range(cols)]
    lines = []
    for r in range(rows - 1, -1, -1):
        chars = []
        for v in values:
            fill = min(1.0, max(0.0, min(1.0, max(0.0, v)) * rows - r))
            if ascii:
                chars.append("#" if fill >= 0.5 else ("." if r == 0 else " "))
            else:
                chars.append(_BLOCKS[round(fill * 8)])
        lines.append((label if r == rows - 1 else " " * len(label)) + "".join(chars))
    rule = ["-" if ascii else "─"] * cols
    rule[now_col] = "^" if ascii else "▲"
    lines.append(" " * len(label) + "".join(rule))
    return lines


def render_status(
    status: Status,
    *,
    width: int = 80,
    arc_curve: Curve | None = None,
    realised: Curve | None = None,
    ascii: bool = False,
    message: str | None = None,
    help_line: str = HELP_LINE,
) -> list[str]:
    """The live view as lines no wider than `width` columns.

    `arc_curve` is the target intensity as (session seconds, 0-1) points, `realised` the
    plan's delivered intensity; without a curve the chart is left out. `message` (the
    view's own feedback, e.g. a pending confirmation) overrides the session's message.
    """
    width = max(20, width)
    # Pieces are made ASCII before they are fitted, so the fitted width is what shows.
    a = _asciify if ascii else str
    dots = "~" if ascii else "…"

    def row(left: str, right: str = "") -> str:
        return spread(a(left), a(right), width, dots)

    clock = f"{format_clock(status.session_time)} / {format_clock(status.length)}"
    phase = f"{status.phase}  {format_length(status.phase_left)} left" if status.phase else ""
    if status.next_phase:
        phase += f"  → {status.next_phase}"
    lines = [row(f"{clock}   {phase}", _flags(status))]
    if status.now is not None:
        n = status.now
        left = max(0.0, n.stop - status.session_time)
        lines.append(
            row(
                f"now   {_track(n.title, n.artist)}",
                f"{format_length(n.position)} / {format_length(left)} left",
            )
        )
    else:
        lines.append(row("now   (silence)"))
    if status.next is not None:
        countdown = (
            f"crossfade in {format_length(status.next_change_in)}"
            if status.next_change_in is not None
            else ""
        )
        lines.append(row(f"next  {_track(status.next.title, status.next.artist)}", countdown))
    else:
        lines.append(row("next  (end of session)"))
    shift = f"   target shift {status.target_shift:+.2f}" if abs(status.target_shift) > 1e-9 else ""
    lines.append(
        row(f"volume {status.master_db:+.1f} dB{shift}   intensity {status.target_intensity:.2f}")
    )
    if arc_curve:
        lines.extend(row(s) for s in chart_lines(status, width, arc_curve, realised, ascii=ascii))
    if status.log_failing:  # its own row: no other message can cover it
        lines.append(row(f"!! {status.log_failing}; the music goes on"))
    text = status.message if message is None else message
    lines.append(row(f"» {text}" if text else ""))
    if help_line:
        lines.append(row(help_line))
    return lines


def _asciify(text: str) -> str:
    """Stand-ins for the few non-ASCII marks the view uses (titles may still hold more)."""
    for fancy, plain in (("—", "-"), ("→", "->"), ("»", ">"), ("…", "..."), ("±", "+-")):
        text = text.replace(fancy, plain)
    return text.encode("ascii", errors="replace").decode("ascii")


def status_line(status: Status) -> str:
    """One plain line for logs, pipes and `setlist control` answers."""
    parts = [f"{format_clock(status.session_time)}/{format_clock(status.length)}"]
    if status.phase:
        parts.append(f"{status.phase} ({format_length(status.phase_left)} left)")
    if status.now is not None:
        n = status.now
        left = max(0.0, n.stop - status.session_time)
        parts.append(
            f"now {_track(n.title, n.artist)} {format_length(n.position)} (-{format_length(left)})"
        )
    if status.next is not None and status.next_change_in is not None:
        parts.append(f"next {status.next.title} in {format_length(status.next_change_in)}")
    level = f"{status.master_db:+.1f} dB"
    if abs(status.target_shift) > 1e-9:
        level += f" shift {status.target_shift:+.2f}"
    parts.append(level)
    flags = _flags(status).lower()
    if flags:
        parts.append(flags)
    if status.log_failing:
        parts.append(f"!! {status.log_failing}")
    line = " | ".join(parts)
    return f"{line} | {status.message}" if status.message else line


def help_lines() -> list[str]:
    """Every key and what it does, for the '?' overlay and the docs."""
    names: dict[Action, list[str]] = {}
    for key, action in KEYS.items():
        names.setdefault(action, []).append("space" if key == " " else key)
    what = {
        Action.TOGGLE: "pause (short fade) / resume",
        Action.SKIP: "cross-fade to the next track now",
        Action.LOUDER: "master volume up",
        Action.QUIETER: "master volume down",
        Action.SOFTER: "re-plan what follows with a lower target",
        Action.STRONGER: "re-plan what follows with a higher target",
        Action.EXTEND: "lengthen the current phase",
        Action.SHORTEN: "shorten the current phase",
        Action.INTEGRATION: "jump to integration",
        Action.FADE_OUT: "fade out and end",
    }
    out = ["keys:"]
    for action, keys in names.items():
        amount = DEFAULTS.get(action)
        by = f" ({amount[0]:g} {amount[1]})" if amount else ""
        if action in CONFIRM:
            by += "; asks to confirm"
        out.append(f"  {'/'.join(keys):<8} {what.get(action, action.value)}{by}")
    out.append(f"  {'up/down':<8} master volume up / down")
    out.append(f"  {'q':<8} fade out and end; asks to confirm")
    out.append(f"  {'?':<8} this help (any key closes it)")
    return out


# -- the terminal driver -----------------------------------------------------------------


class SessionControl(Protocol):
    """What the view needs from a running session (a `Conductor` is one)."""

    def status(self) -> Status: ...

    def submit(self, command: Command) -> None: ...


class KeyMap:
    """Turns keystrokes into commands, with confirmation for the session-ending ones.

    Pure state machine (time is passed in) so it can be tested without a terminal.
    """

    def __init__(self) -> None:
        self.pending: tuple[Command, float] | None = None
        self.message = ""
        self.show_help = False

    def press(self, key: str, now: float) -> Command | None:
        """Handle one key (or escape sequence); return a command to submit, if any."""
        if self.show_help:
            self.show_help = False
            if key == "?":
                return None
        if self.pending is not None:
            command, since = self.pending
            self.pending = None
            if now - since <= CONFIRM_WINDOW and key in self._confirm_keys(command.action):
                self.message = f"→ {command}"
                return command
            self.message = f"{command} cancelled"
            return None
        if key == "?":
            self.show_help = True
            return None
        if key == "q":
            return self._ask(Command(Action.FADE_OUT, origin="keyboard"), now)
        action = KEYS.get(key) or ARROWS.get(key)
        if action is None:
            if key.isprintable() and len(key) == 1:
                self.message = f"key {key!r} does nothing; press ? for help"
            return None
        command = Command(action, origin="keyboard")
        if action in CONFIRM:
            return self._ask(command, now)
        self.message = f"→ {command}"
        return command

    def _ask(self, command: Command, now: float) -> None:
        self.pending = (command, now)
        what = (
            "fade out and END the session"
            if command.action is Action.FADE_OUT
            else ("jump to INTEGRATION now")
        )
        self.message = f"{what}? press y to confirm, any other key cancels"

    @staticmethod
    def _confirm_keys(action: Action) -> set[str]:
        """y, Enter, or the same key again (q confirms its own fade-out)."""
        keys = {"y", "Y", "\r", "\n"} | {k for k, a in KEYS.items() if a is action}
        if action is Action.FADE_OUT:
            keys.add("q")
        return keys

    def expire(self, now: float) -> None:
        if self.pending is not None and now - self.pending[1] > CONFIRM_WINDOW:
            self.message = f"{self.pending[0]} cancelled"
            self.pending = None


def split_keys(data: str) -> list[str]:
    """Single keys from one read, keeping escape sequences (arrows) whole."""
    keys, i = [], 0
    while i < len(data):
        if data[i] == "\x1b" and data[i + 1 : i + 2] == "[" and i + 2 < len(data):
            keys.append(data[i : i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


class TerminalView:
    """Redraws the live view and reads keys, each on its own daemon thread.

    `start()` puts a terminal stdin into cbreak mode (keys arrive one at a time, not
    echoed; Ctrl-C still raises SIGINT; Ctrl-Z and Ctrl-backslash are off); `close()`
    restores it and is idempotent, and an
    `atexit` hook restores it too should the process end any other way.
    """

    def __init__(
        self,
        session: SessionControl,
        *,
        arc_curve: Curve | None = None,
        realised: Curve | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interval: float = 0.25,
        plain_interval: float = 10.0,
        read_keys: bool = True,
    ) -> None:
        self.session = session
        self.arc_curve = arc_curve
        self.realised = realised
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.interval = interval
        self.plain_interval = plain_interval
        self.keys = KeyMap()
        self.tty = _isatty(self.stdout)
        self.read_keys = read_keys and _isatty(self.stdin)
        self._saved: list[object] | None = None
        self._fd = -1
        self._stop = threading.Event()
        self._redraw = threading.Event()
        self._lock = threading.Lock()  # one frame at a time
        self._term_lock = threading.Lock()  # guards the saved terminal settings
        self._threads: list[threading.Thread] = []
        self._drawn = 0
        self._message_at = 0.0
        self._message_before = ""
        self._last_plain = float("-inf")
        self._last_message = ""
        self.ascii = not _can_encode(self.stdout, "▁█▲—→»…")

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self.read_keys:
            self._enter_cbreak()
            self._threads.append(threading.Thread(target=self._key_loop, name="keys", daemon=True))
        self._threads.append(threading.Thread(target=self._draw_loop, name="view", daemon=True))
        if self.tty:
            self._write("\x1b[?25l")  # hide the cursor while redrawing
        for t in self._threads:
            t.start()

    def close(self) -> None:
        """Stop both threads, draw the last state and give the terminal back."""
        self._stop.set()
        self._redraw.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=1.0)
        self._threads = []
        # A terminal that stopped reading (flow control, a hung pty) blocks writes: the
        # last frame is skipped rather than letting the session's end wait on it.
        if self._lock.acquire(timeout=0.5):
            try:
                with contextlib.suppress(OSError, ValueError):
                    self._draw(final=True)
            finally:
                self._lock.release()
        self.restore()

    def restore(self) -> None:
        """Put the terminal back as it was; safe to call any number of times."""
        with self._term_lock:
            saved, self._saved = self._saved, None
        if saved is not None:
            import termios

            with contextlib.suppress(OSError, termios.error):
                # TCSANOW, not TCSADRAIN: draining waits forever on a stuck terminal
                termios.tcsetattr(self._fd, termios.TCSANOW, saved)
        # Show the cursor again, unless the terminal stopped reading (then the draw
        # thread is stuck holding the lock, and waiting on it would hang the exit).
        if self.tty and self._lock.acquire(timeout=0.2):
            try:
                with contextlib.suppress(OSError, ValueError):
                    self._write("\x1b[?25h")
            finally:
                self._lock.release()

    def __enter__(self) -> TerminalView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _enter_cbreak(self) -> None:
        import termios
        import tty

        try:
            self._fd = self.stdin.fileno()
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd, termios.TCSANOW)
            # Ctrl-Z would freeze the process (and the music) mid-session, Ctrl-\ would
            # kill it without a fade: switch both keys off; Ctrl-C still fades out.
            attrs = termios.tcgetattr(self._fd)
            attrs[0] &= ~termios.IXON  # Ctrl-S would freeze the view (and block its writes)
            for name in ("VSUSP", "VQUIT", "VDSUSP"):
                index = getattr(termios, name, None)
                if index is not None and index < len(attrs[6]):
                    attrs[6][index] = b"\x00"  # _POSIX_VDISABLE on Linux
            termios.tcsetattr(self._fd, termios.TCSANOW, attrs)
        except (OSError, termios.error, ValueError):
            self._saved = None
            self.read_keys = False
            return
        atexit.register(self.restore)

    # -- keys --------------------------------------------------------------------------
    def _key_loop(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.1)
                if not ready:
                    self.keys.expire(time.monotonic())
                    continue
                data = os.read(self._fd, 64).decode("utf-8", errors="replace")
            except (OSError, ValueError):
                return  # the terminal went away; the channel can still drive the session
            if not data:
                return
            for key in split_keys(data):
                self.press(key)

    def press(self, key: str) -> Command | None:
        """Handle one key as if typed (also used by tests); submits what it maps to."""
        command = self.keys.press(key, time.monotonic())
        self._message_at = time.monotonic()
        self._message_before = self.session.status().message
        if command is not None:
            self.session.submit(command)
        self._redraw.set()  # the draw thread shows it; a stuck terminal never blocks keys
        return command

    # -- drawing -----------------------------------------------------------------------
    def _draw_loop(self) -> None:
        while not self._stop.is_set():
            self._redraw.wait(self.interval)
            self._redraw.clear()
            if self._stop.is_set():
                return
            try:
                self.draw()
            except (OSError, ValueError):
                return  # stdout closed

    def lines(self, width: int) -> list[str]:
        status = self.session.status()
        # The view's own feedback ("→ skip") until the session answers with its own
        # message ("skipped to ..."), or for a few seconds.
        fresh = time.monotonic() - self._message_at < CONFIRM_WINDOW
        answered = status.message != self._message_before
        message = self.keys.message if fresh and not answered else None
        if self.keys.pending is not None:
            message = self.keys.message
        if self.keys.show_help:
            return [clip(s, width) for s in help_lines()] + [""]
        return render_status(
            status,
            width=width,
            arc_curve=self.arc_curve,
            realised=self.realised,
            ascii=self.ascii,
            message=message or None,
        )

    def draw(self, final: bool = False) -> None:
        with self._lock:
            self._draw(final)

    def _draw(self, final: bool = False) -> None:
        if self.tty:
            lines = self.lines(self._columns() - 1)
            up = f"\r\x1b[{self._drawn}A" if self._drawn else "\r"
            body = "".join(f"\x1b[2K{line}\n" for line in lines)
            self._write(up + body + "\x1b[J")
            self._drawn = len(lines)
            return
        status = self.session.status()
        now = time.monotonic()
        changed = status.message and status.message != self._last_message
        if final or changed or now - self._last_plain >= self.plain_interval:
            self._last_plain = now
            self._last_message = status.message
            self._write(status_line(status) + "\n")

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stdout.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            return shutil.get_terminal_size((80, 24)).columns

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
