"""The session log: one JSON object per line, on disk before the next note plays.

A session log is clinical data and the only record of what the room heard, so each event
is written with a single `write` on an `O_APPEND` descriptor and then `fsync`ed: a crash
or a power cut loses at most the line being written, never an earlier one, and a torn
last line is skipped when the log is read back. The file is private to its owner (0600)
and holds no client names unless the caller puts them in.

Every event carries `t` (local wall-clock time, ISO 8601 with offset), `session` (session
seconds) and `kind`; the conductor writes a cheap `position` heartbeat every few seconds,
so `resume_point` can restart a crashed session within seconds of where it stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from setlist.errors import SessionLogError

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
)

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
            _fsync_dir(path.parent)
            session = header.get("start_at", 0.0)
            fields = {k: v for k, v in header.items() if k not in ("t", "session", "kind")}
            log.write("session-start", session=float(session), **fields)  # type: ignore[arg-type]
        except BaseException:
            log.close()
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
                    log._put(b"\n")  # the torn fragment stays on a line of its own
            events = read_log(path)
            if events:
                with contextlib.suppress(TypeError, ValueError):
                    log.session = float(events[-1].get("session") or 0.0)
        except OSError as exc:
            log.close()
            raise SessionLogError(f"{path}: cannot continue the session log ({exc})") from None
        return log

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, kind: str, *, session: float | None = None, **fields: object) -> dict[str, Any]:
        """Append one event and fsync it; returns the event as written."""
        if session is None:
            session = self.session
        self.session = float(session)
        event: dict[str, Any] = {
            "t": self._wall().isoformat(timespec="milliseconds"),
            "session": round(float(session), 3),
            "kind": kind,
        }
        for key, value in fields.items():
            if key not in event:
                event[key] = _clean(value)
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._put(line.encode("utf-8") + b"\n")
        return event

    def _put(self, data: bytes) -> None:
        if self._fd is None:
            raise SessionLogError(f"{self.path}: the session log is closed")
        try:
            view = memoryview(data)
            while view:  # one write() normally; a short write (full disk) is finished
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        except OSError as exc:
            raise SessionLogError(
                f"{self.path}: cannot write the session log ({exc.strerror or exc})",
                hint="is the disk full or removed? the music goes on; notes may be missing",
            ) from None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable too (else a power cut can lose it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- reading ------------------------------------------------------------------------------


def read_log(path: Path | str) -> list[dict[str, Any]]:
    """Every complete event in the log, in order.

    A line that is not a JSON object with a `kind` is skipped: the torn end of a write cut
    short by a crash or a power cut (a resumed session's log carries it mid-file). A file
    with no event at all is not a session log and raises.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SessionLogError(f"{path}: cannot read the session log ({exc.strerror})") from None
    events: list[dict[str, Any]] = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            event = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(event, dict) and isinstance(event.get("kind"), str):
            events.append(event)
    if not events and data.strip():
        raise SessionLogError(f"{path}: not a session log (no events in it)")
    return events


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
