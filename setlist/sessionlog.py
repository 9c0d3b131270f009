"""The session log: one JSON object per line, on disk before the next note plays.

A session log is clinical data and the only record of what the room heard, so each event
is written ahead: one complete JSON line, numbered (`seq`), in a single `write` on an
`O_APPEND` descriptor, then `fsync`ed. A write that fails or comes up short (a full
disk, a folder gone read-only) is truncated back to the last complete line, so the file
never holds a torn line followed by more; the event stays queued in memory, in order,
and goes out with the next write once space returns. Meanwhile `failing` says why, so
the live view and the channel can warn, and the music never waits for the disk. The
reader reports what a damaged log lacks (`read_log_checked`): torn lines and gaps in
the numbering. The file is private to its owner (0600) and holds no client names
unless the caller puts them in.

Every event carries `t` (local wall-clock time, ISO 8601 with offset), `session` (session
seconds) and `kind`; the conductor writes a cheap `position` heartbeat every few seconds,
so `resume_point` can restart a crashed session within seconds of where it stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import math
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from setlist.errors import SessionLogError
from setlist.fsutil import fsync_dir

#: Event kinds the conductor and the play service write.
KINDS = (
    "session-start",  # header: setlist, arc, seed, length, start_at ...
    "restart",  # the same log continued after a crash (`setlist play --resume`)
    "track-start",
    "track-stop",
    "position",  # heartbeat: where the session is, for resume after a power cut
    "control",
    "fault",
    "phase",
    "pause",
    "resume",
    "replan",
    "plan",  # the whole edited plan after a re-plan, skip or replacement, for resume
    "session-end",
    "diagnostic",  # libVLC / ALSA messages, kept off the therapist's screen
)

#: Events held in memory while the log cannot be written; past this, heartbeats and
#: diagnostics are dropped first (the numbering shows the gap), every other event kept.
MAX_PENDING = 20_000

#: Log files are readable and writable by their owner only.
MODE = 0o600


def _clean(value: object) -> object:
    """JSON-safe: non-finite floats become null, tuples lists, paths strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _wall_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class SessionLog:
    """An append-only JSON Lines writer that fsyncs every event; see the module docstring.

    Open one with `create` (a new log, starting with a `session-start` event holding the
    header) or `append_to` (continue a crashed session's log). `appended` tells which.
    """

    def __init__(
        self,
        fd: int,
        path: Path,
        *,
        appended: bool,
        wall: Callable[[], dt.datetime] = _wall_now,
    ) -> None:
        self._fd: int | None = fd
        self.path = path
        self.appended = appended
        self.session = 0.0  # last session time written, for events that don't say
        self._wall = wall
        self.seq = 0  # number of the next event
        self._pending: deque[tuple[str, bytes]] = deque()  # (kind, line) not yet on disk
        self._good = os.fstat(fd).st_size  # end of the last complete line on disk
        self.failing = ""  # why the log cannot be written just now ("" when fine)
        self.dropped = 0  # routine events dropped while the queue was full

    @classmethod
    def create(
        cls,
        path: Path | str,
        header: Mapping[str, object],
        *,
        wall: Callable[[], dt.datetime] = _wall_now,
    ) -> SessionLog:
        """A new log at `path` (never overwriting one) starting with `session-start`."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, MODE)
        except FileExistsError:
            raise SessionLogError(
                f"{path}: a session log is never overwritten",
                hint="choose another log path, or resume that session",
            ) from None
        except OSError as exc:
            raise SessionLogError(
                f"{path}: cannot create the session log ({exc.strerror})"
            ) from None
        log = cls(fd, path, appended=False, wall=wall)
        try:
            os.fchmod(fd, MODE)  # whatever the umask allowed, clinical data stays private
            fsync_dir(path.parent)
            session = header.get("start_at", 0.0)
            fields = {k: v for k, v in header.items() if k not in ("t", "session", "kind")}
            log.write("session-start", session=float(session), **fields)  # type: ignore[arg-type]
            if log.failing:  # a session does not start on a disk that cannot take its log
                raise SessionLogError(log.failing)
        except BaseException:
            failed = bool(log.failing)
            log.close()
            if failed:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return log

    @classmethod
    def append_to(
        cls, path: Path | str, *, wall: Callable[[], dt.datetime] = _wall_now
    ) -> SessionLog:
        """Continue an existing log; a torn last line (a crash mid-write) is closed off."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise SessionLogError(f"{path}: cannot open the session log ({exc.strerror})") from None
        log = cls(fd, path, appended=True, wall=wall)
        try:
            size = os.fstat(fd).st_size
            if size:
                last = os.pread(fd, 1, size - 1)
                if last != b"\n":
                    log._good = size
                    log.put_raw(b"\n")  # the torn fragment stays on a line of its own
            log._good = os.fstat(fd).st_size
            events = read_log(path)
            if events:
                with contextlib.suppress(TypeError, ValueError):
                    log.session = float(events[-1].get("session") or 0.0)
                seqs = [e["seq"] for e in events if type(e.get("seq")) is int]
                log.seq = max(seqs) + 1 if seqs else 0
        except OSError as exc:
            log.close()
            raise SessionLogError(f"{path}: cannot continue the session log ({exc})") from None
        return log

    @property
    def closed(self) -> bool:
        return self._fd is None

    @property
    def pending(self) -> int:
        """Events waiting in memory for the disk."""
        return len(self._pending)

    def write(self, kind: str, *, session: float | None = None, **fields: object) -> dict[str, Any]:
        """Append one event (after any still queued) and fsync it; returns the event.

        A failure to write does not raise: the event is queued, `failing` says why, and
        the next `write` or `flush` tries again. Only a closed log raises.
        """
        if self._fd is None:
            raise SessionLogError(f"{self.path}: the session log is closed")
        if session is None:
            session = self.session
        self.session = float(session)
        event: dict[str, Any] = {
            "t": self._wall().isoformat(timespec="milliseconds"),
            "session": round(float(session), 3),
            "kind": kind,
            "seq": self.seq,
        }
        self.seq += 1
        for key, value in fields.items():
            if key not in event:
                event[key] = _clean(value)
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._queue(kind, line.encode("utf-8") + b"\n")
        self.flush()
        return event

    def _queue(self, kind: str, data: bytes) -> None:
        self._pending.append((kind, data))
        if len(self._pending) > MAX_PENDING:
            for i, (k, _) in enumerate(self._pending):
                if k in ("position", "diagnostic"):
                    del self._pending[i]
                    self.dropped += 1
                    return

    def flush(self) -> bool:
        """Write every queued event, in order; True when none is left waiting."""
        while self._pending and self._fd is not None:
            if not self._put(self._pending[0][1]):
                return False
            self._pending.popleft()
        if self.failing and not self._pending:
            self.failing = ""
        return not self._pending

    def _put(self, data: bytes) -> bool:
        """One whole line in one `write`, or nothing: a failed or short write is cut back
        to the last complete line, so no torn line ever has another after it."""
        assert self._fd is not None
        why = ""
        try:
            n = os.write(self._fd, data)
            if n == len(data):
                os.fsync(self._fd)
                self._good += n
                return True
            why = "a short write (the disk is full)"
        except OSError as exc:
            why = exc.strerror or str(exc)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                why = "the disk is full"
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._good)
        self.failing = f"{self.path}: cannot write the session log ({why})"
        return False

    def unwritten(self) -> list[str]:
        """The queued lines the disk never took (shown at the end, so nothing is lost)."""
        return [data.decode("utf-8").rstrip("\n") for _, data in self._pending]

    def put_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests and repairs); raises on failure."""
        if self._fd is None:
            raise SessionLogError(f"{self.path}: the session log is closed")
        if not self._put(data):
            raise SessionLogError(self.failing)

    def close(self) -> None:
        if self._fd is not None:
            self.flush()  # a last chance for what the disk refused
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- reading ------------------------------------------------------------------------------


def read_log(path: Path | str) -> list[dict[str, Any]]:
    """Every complete event in the log, in order.

    A line that is not a JSON object with a `kind` is skipped: the torn end of a write cut
    short by a crash or a power cut (a resumed session's log carries it mid-file). A file
    with no event at all is not a session log and raises. `read_log_checked` also says
    what was skipped or is missing.
    """
    return list(read_log_checked(path).events)


@dataclass(frozen=True, slots=True)
class LogReading:
    """A log's events and, one line each, what makes it damaged or incomplete."""

    events: tuple[dict[str, Any], ...]
    problems: tuple[str, ...] = ()
    #: Index into `events` of the first event after the first damage (None if whole).
    damaged_from: int | None = None


def read_log_checked(path: Path | str) -> LogReading:
    """The events, plus every torn or unreadable line and every gap in the numbering."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SessionLogError(f"{path}: cannot read the session log ({exc.strerror})") from None
    events: list[dict[str, Any]] = []
    problems: list[str] = []
    damaged: int | None = None
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        event: object = None
        with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            event = json.loads(raw.decode("utf-8"))
        if isinstance(event, dict) and isinstance(event.get("kind"), str):
            events.append(event)
            continue
        last = number == len(lines)  # no newline after it: the write never finished
        cut = "cut off (the last write never finished)" if last else "torn or unreadable"
        problems.append(f"{path}: line {number} is {cut}: {len(raw)} bytes skipped")
        damaged = len(events) if damaged is None else damaged
    if not events and data.strip():
        raise SessionLogError(f"{path}: not a session log (no events in it)")
    expected: int | None = None
    for i, e in enumerate(events):
        seq = e.get("seq")
        if type(seq) is not int:
            continue
        if expected is not None and seq > expected:
            missing = f"event {expected}" if seq == expected + 1 else f"events {expected}-{seq - 1}"
            problems.append(
                f"{path}: {missing} missing before {_hms(_num(e.get('session')))} "
                "(lost while the log could not be written)"
            )
            damaged = i if damaged is None else min(damaged, i)
        expected = seq + 1
    return LogReading(tuple(events), tuple(problems), damaged)


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where to pick a crashed (or stopped) session up again.

    `session_time` is the last moment the log knew of; `position` is the playing track's
    file position at that moment (None when nothing was playing). Controls the therapist
    made (master volume, intensity shift) carry over.
    """

    setlist: str
    session_time: float
    key: int | None = None
    track_id: int | None = None
    title: str = ""
    artist: str = ""
    position: float | None = None
    master_db: float = 0.0
    target_shift: float = 0.0
    ended: bool = False
    reason: str = ""


def _num(value: object, default: float = 0.0) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return default


def resume_point(events: Sequence[Mapping[str, Any]]) -> ResumePoint:
    """Where to restart: the latest-started track still playing at the last logged time.

    The position heartbeat (every ~10 s) bounds what a power cut loses. A session that
    was ended on purpose (fade-out, Ctrl-C) resumes where its ending fade began.
    """
    if not events:
        raise SessionLogError("the session log is empty: nothing to resume")
    setlist = ""
    for e in events:
        if e.get("kind") in ("session-start", "restart") and e.get("setlist"):
            setlist = str(e["setlist"])
    if not setlist:
        raise SessionLogError(
            "the session log does not say which setlist was playing (no session-start)"
        )
    last = events[-1]
    ended = last.get("kind") == "session-end"
    session = max(_num(e.get("session")) for e in events)
    reason = ""
    if ended:
        reason = str(last.get("reason", ""))
        session = _num(last.get("from"), _num(last.get("session")))
    master_db, shift = 0.0, 0.0
    for e in events:
        if "master_db" in e:
            master_db = _num(e.get("master_db"), master_db)
        if "target_shift" in e:
            shift = _num(e.get("target_shift"), shift)
    # Tracks sounding at `session`, from the latest run (session-start or restart) that
    # started any: started by then and not stopped before it.
    runs = [i for i, e in enumerate(events) if e.get("kind") in ("session-start", "restart")]
    playing: dict[int, Mapping[str, Any]] = {}
    for first in reversed(runs or [0]):
        for e in events[first:]:
            key = e.get("key")
            if not isinstance(key, int) or isinstance(key, bool):
                continue
            if e.get("kind") == "track-start" and _num(e.get("session")) <= session + 1e-6:
                playing[key] = e
            elif e.get("kind") == "track-stop" and _num(e.get("session")) < session - 1e-6:
                playing.pop(key, None)
        if playing:
            break
    if not playing:
        return ResumePoint(
            setlist, session, master_db=master_db, target_shift=shift, ended=ended, reason=reason
        )
    start = max(playing.values(), key=lambda e: (_num(e.get("session")), e.get("key", 0)))
    offset = _num(start.get("offset"))
    position = offset + max(0.0, session - _num(start.get("session")))
    track_id = start.get("track_id")
    return ResumePoint(
        setlist,
        session,
        key=int(start["key"]),
        track_id=track_id if isinstance(track_id, int) else None,
        title=str(start.get("title", "")),
        artist=str(start.get("artist", "")),
        position=position,
        master_db=master_db,
        target_shift=shift,
        ended=ended,
        reason=reason,
    )


def latest_plan_index(events: Sequence[Mapping[str, Any]]) -> int | None:
    """Where the newest edited plan sits in `events` (None when there is none)."""
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.get("kind") == "plan" and isinstance(e.get("timeline"), Mapping):
            return i
    return None


def latest_plan(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest edited plan in the log (a `plan` event), or None if the session never
    changed its plan: a resume then plays the setlist's own."""
    for e in reversed(events):
        if e.get("kind") == "plan" and isinstance(e.get("timeline"), Mapping):
            return e
    return None


# -- showing ------------------------------------------------------------------------------


def _hms(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _wall(event: Mapping[str, Any]) -> str:
    try:
        return dt.datetime.fromisoformat(str(event.get("t", ""))).strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


def _track(event: Mapping[str, Any]) -> str:
    title = str(event.get("title") or f"track {event.get('key', '?')}")
    artist = str(event.get("artist") or "")
    return f"{title} — {artist}" if artist else title


def _describe(event: Mapping[str, Any], phase: str) -> str | None:
    kind = event.get("kind")
    if kind == "track-start":
        late = _num(event.get("late"))
        note = f"  (late {late:.1f} s)" if late > 1.0 else ""
        if event.get("joined"):
            note += f"  (joined at {_hms(_num(event.get('offset')))})"
        return f"{phase or '-':<12} ▶ {_track(event)}{note}"
    if kind == "track-stop":
        why = str(event.get("reason") or "")
        if why in ("", "planned", "session end"):
            return None  # the next start says it; keep the notes short
        return f"{phase or '-':<12} ■ {_track(event)} ({why})"
    if kind == "phase":
        return f"{'phase':<12} ── {event.get('name', '?')} ──"
    if kind == "control":
        amount = event.get("amount")
        what = str(event.get("action", "?")) + ("" if amount is None else f" {amount:g}")
        origin = event.get("origin")
        effect = str(event.get("effect") or "")
        return (
            f"{'control':<12} {what}"
            + (f" ({origin})" if origin else "")
            + (f": {effect}" if effect else "")
        )
    if kind == "fault":
        who = _track(event) if event.get("title") else f"track {event.get('key', '?')}"
        action = str(event.get("action") or "")
        return f"{'fault':<12} {who}: {event.get('reason', '?')}" + (
            f" → {action}" if action else ""
        )
    if kind == "pause":
        return f"{'pause':<12} paused"
    if kind == "resume":
        held = event.get("paused_for")
        return f"{'resume':<12} resumed" + (f" after {_hms(_num(held))}" if held else "")
    if kind == "replan":
        return f"{'replan':<12} {event.get('reason', '')}: {event.get('note', '')}".rstrip(": ")
    if kind == "restart":
        return f"{'restart':<12} resumed after an interruption"
    if kind == "session-end":
        return f"{'end':<12} {event.get('reason', 'ended')}"
    if kind == "notice":
        return f"{'notice':<12} {event.get('text', '')}"
    return None


def format_log(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The log as clinical-notes lines: session clock, wall clock, what happened.

    `00:12:30  14:32:05  peak         ▶ Title — Artist`. Heartbeats and routine stops
    are left out; controls, faults, pauses, phase changes and the end are all shown.
    """
    out: list[str] = []
    phase = ""
    for e in events:
        kind = e.get("kind")
        if kind == "session-start":
            bits = [f"Session {str(e.get('t', ''))[:16].replace('T', ' ')}"]
            for key, label in (("arc", "arc"), ("seed", "seed")):
                if e.get(key) not in (None, ""):
                    bits.append(f"{label} {e[key]}")
            if e.get("length"):
                bits.append(f"length {_hms(_num(e.get('length')))}")
            if e.get("names"):
                bits.append(f"with {e['names']}")
            out.append(" · ".join(bits))
            if e.get("setlist"):
                out.append(f"setlist {e['setlist']}")
            continue
        if kind == "phase":
            phase = str(e.get("name", ""))
        if kind == "track-start" and e.get("phase"):
            phase = str(e["phase"])
        text = _describe(e, phase)
        if text is not None:
            out.append(f"{_hms(_num(e.get('session')))}  {_wall(e)}  {text}")
    return out
