"""The service behind `setlist play`: everything around the conductor in the session room.

It checks everything that can be checked before the first note (the setlist, the files,
libVLC, the output device, the log), so a problem shows up as one clear line while the
room is still quiet; then it wires the conductor to the player, the session log, the
library re-planner, the terminal view and the control channel, runs the session, and
always gives back the terminal, the audio device and a complete log, whatever happens.

Ctrl-C or SIGTERM fade the music out over a few seconds and end the session cleanly; a
second Ctrl-C ends it at once with a short fade.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import numpy as np

from setlist.errors import LibraryError, PlaybackError, SetlistError
from setlist.fsutil import display_path
from setlist.models import Setlist
from setlist.players.base import Clock, MonotonicClock, Player
from setlist.timeline import FadeShape, Timeline
from setlist.units import format_clock, format_length

#: Fade-out on the first Ctrl-C or SIGTERM, and on a second Ctrl-C.
STOP_FADE = 4.0
HURRY_FADE = 0.5
#: Points of the intensity curves handed to the live view's chart.
CURVE_POINTS = 240


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """What `setlist play` was asked for."""

    playlist: Path | None
    start_at: float | None = None
    device: str | None = None
    resume: Path | None = None
    log: Path | None = None
    port: int = 0
    channel: bool = True
    shape: FadeShape = FadeShape.EQUAL_POWER
    aout: str | None = None
    db: Path | None = None
    view: bool = True
    profiles: tuple[Path, ...] = ()
    backend: str = "vlc"


@dataclass(frozen=True, slots=True)
class PlayResult:
    log: Path
    ended_at: float
    reason: str
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class Prepared:
    """Everything checked and opened before the music starts."""

    playlist: Path
    setlist: Setlist
    timeline: Timeline
    start_at: float
    master_db: float = 0.0
    target_shift: float = 0.0
    replanner: Any = None
    warnings: list[str] = field(default_factory=list)
    resume_events: list[dict[str, Any]] | None = None
    log_path: Path = Path()
    append: bool = False


# -- checks before the music ---------------------------------------------------------------


def default_log_path(playlist: Path, now: dt.datetime | None = None) -> Path:
    """`NAME.YYYYmmdd-HHMM.session.jsonl` beside the playlist, never an existing file."""
    now = now or dt.datetime.now()
    name = playlist.name
    for suffix in (".setlist.yaml", ".setlist.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    base = f"{name}.{now:%Y%m%d-%H%M}"
    path, n = playlist.with_name(f"{base}.session.jsonl"), 1
    while path.exists():
        n += 1
        path = playlist.with_name(f"{base}-{n}.session.jsonl")
    return path


def unreadable_files(timeline: Timeline, backend: str = "vlc") -> list[str]:
    """Tracks in the plan the backend cannot play (to be substituted): missing or
    unreadable files for libVLC, anything but Spotify tracks for Spotify Connect."""
    from setlist.library.index import uri_to_path

    bad = []
    for cue in timeline.cues:
        uri = cue.track.uri
        if backend == "spotify":
            if not uri.startswith("spotify:track:"):
                bad.append(uri)
            continue
        if uri.startswith("spotify:"):
            bad.append(uri)
            continue
        if not uri.startswith("file://"):
            continue
        path = uri_to_path(uri)
        if not os.access(path, os.R_OK) or not path.is_file():
            bad.append(str(path))
    return bad


def _resume(
    request: PlayRequest, warnings: list[str]
) -> tuple[Path, Any, list[dict[str, Any]], int | None]:
    """The setlist, resume point and events of a log; a damaged log's problems become
    warnings, and the index of its first damage comes back so the plan choice can say
    what it may be missing."""
    from setlist.sessionlog import read_log_checked, resume_point

    assert request.resume is not None
    if not request.resume.is_file():
        raise PlaybackError(f"{display_path(request.resume)}: no such session log")
    reading = read_log_checked(request.resume)
    events = list(reading.events)
    warnings.extend(f"damaged session log: {p}" for p in reading.problems)
    point = resume_point(events)
    logged = Path(point.setlist)
    if request.playlist is None:
        playlist = logged
    else:
        playlist = request.playlist
        if playlist.resolve() != logged.resolve():
            raise PlaybackError(
                f"{display_path(request.resume)} is the log of {logged}, "
                f"not of {display_path(playlist)}",
                hint="give the same setlist, or leave PLAYLIST out to use the logged one",
            )
    return playlist, point, events, reading.damaged_from


def _resume_start(
    timeline: Timeline, point: Any, *, logged_plan: bool = False
) -> tuple[Timeline, float, str | None]:
    """Where to pick up: the logged track at the logged offset, on the logged clock.

    `timeline` is the last plan the log holds (`logged_plan`), or the setlist's when the
    session never changed its plan. Either way the logged track is looked up by its id
    and the plan shifted, if need be, to put it back where the session clock had it (a
    log from before plans were logged may hold a skip the setlist does not). A track
    missing from the plan (a re-plan in such an older log) resumes the plan at the same
    session time, and says so.
    """
    t = float(point.session_time)
    track_id = getattr(point, "track_id", None)
    position = getattr(point, "position", None)
    if track_id is None or position is None:
        return timeline, t, None
    cue = next((c for c in timeline.cues if c.track.id == track_id), None)
    if cue is None:
        which = "the logged plan" if logged_plan else "the original plan"
        return (
            timeline,
            t,
            (
                "the track playing when the log stopped is not in the plan (a re-plan "
                f"the log does not hold); resuming {which} at {format_clock(t)}"
            ),
        )
    planned = cue.start + (float(position) - cue.offset)
    delta = t - planned
    if abs(delta) > 0.05:
        timeline = timeline.with_cues(c.shifted(delta) for c in timeline.cues)
    return timeline, t, None


#: A logged plan's cue may sit this far (dB) above the setlist's level for its track
#: before the plan is refused as edited (re-plans and gain matching move gains a little).
LOGGED_SLACK_DB = 6.0


def _louder_by(timeline: Timeline, setlist: Setlist) -> list[float]:
    """dB by which each logged cue is louder than the setlist's own (checked) level for
    its track; a new track (a re-plan) is measured against the loudest planned one."""
    planned = Timeline.from_setlist(setlist)
    by_track = {c.track.id: c.gain for c in planned.cues}
    top = max(by_track.values(), default=1.0)
    out: list[float] = []
    for c in timeline.cues:
        ref = by_track.get(c.track.id, top)
        if not math.isfinite(c.gain):
            out.append(math.inf)
        elif c.gain > 0 and ref > 0:
            out.append(20 * math.log10(c.gain / ref))
    return out


def _logged_plan(
    events: list[dict[str, Any]],
    setlist: Setlist,
    warnings: list[str],
    damaged_from: int | None = None,
) -> tuple[Timeline, list[float] | None] | None:
    """The plan a crashed session was last playing (after re-plans, skips, replacements)
    and its phase schedule, or None when it played the setlist's own plan. A log damaged
    after the plan it offers may have lost a newer one: that is said, never silent."""
    from setlist.sessionlog import latest_plan_index

    index = latest_plan_index(events)
    if damaged_from is not None and (index is None or index < damaged_from):
        which = (
            "the setlist's own plan"
            if index is None
            else f"the plan logged at {format_clock(float(events[index].get('session') or 0))}"
        )
        warnings.append(
            f"the session log is damaged after {which}: a newer edited plan may be lost; "
            f"resuming {which} (check the log with 'setlist log show')"
        )
    if index is None:
        return None
    event = events[index]
    tracks = {e.track.id: e.track for e in setlist.entries}
    try:
        timeline = Timeline.from_data(event["timeline"], tracks)
        loudest = max(_louder_by(timeline, setlist), default=0.0)
        if not math.isfinite(loudest):  # an edited log's level never reaches the room
            raise ValueError("a cue's gain is not a finite number")
        if loudest > LOGGED_SLACK_DB:
            raise ValueError(f"a cue is {loudest:.1f} dB louder than the setlist allows")
    except ValueError as exc:
        warnings.append(
            f"the edited plan in the log cannot be read ({exc}): resuming the setlist's plan"
        )
        return None
    ends = event.get("phase_ends")
    if not (isinstance(ends, list) and all(isinstance(e, int | float) for e in ends)):
        ends = None
    return timeline, ends


def _open_replanner(
    setlist: Setlist,
    request: PlayRequest,
    warnings: list[str],
    target_shift: float = 0.0,
    delta: float = 0.0,
    phase_ends: list[float] | None = None,
) -> Any:
    """A library re-planner for softer/stronger/extend/shorten, or None (and why).

    Re-planned music must respect the same vetoes as the built plan: a session built for
    listener profiles re-plans only when those profiles are given again, and only over
    tracks the chosen backend can play (files for libVLC, Spotify tracks for Connect).
    """
    from setlist.library.index import default_db_path

    if setlist.profiles and not request.profiles:
        warnings.append(
            f"this session was built for the profiles {', '.join(setlist.profiles)}: pass "
            "them with --profile to re-plan with their vetoes (until then softer, stronger, "
            "extend and shorten are unavailable)"
        )
        return None
    path = request.db or default_db_path()
    if not path.is_file():
        warnings.append(
            f"no library index at {display_path(path)}: playing without re-planning "
            "(softer, stronger, extend and shorten will say they are unavailable)"
        )
        return None
    try:
        from setlist.library.index import Index
        from setlist.session import library_fingerprint, listeners_for

        with Index.open(path) as index:
            everything = index.candidates()
        source = "spotify" if request.backend == "spotify" else "local"
        candidates = everything.subset(
            np.array([t.source == source for t in everything.tracks], dtype=bool)
        )
        listeners = listeners_for(request.profiles, candidates)
    except LibraryError as exc:
        warnings.append(f"{exc.message}: playing without re-planning")
        return None
    if setlist.library and setlist.library not in (
        library_fingerprint(everything),
        library_fingerprint(candidates),
    ):
        warnings.append(
            "the library changed since this session was built; re-planning uses it as it is now"
        )
    from setlist.replan import Replanner

    if len(candidates) == 0:
        warnings.append(
            f"the library at {display_path(path)} is empty: playing without re-planning"
        )
        return None
    # A resumed plan may sit `delta` seconds off the built one (see _resume_start): the
    # phase schedule moves with it; a logged plan brings the schedule it was made for.
    ends = [e + delta for e in setlist.arc.ends] if abs(delta) > 0.05 else None
    if phase_ends is not None:
        try:  # the Replanner checks a schedule: one per phase, in order
            return Replanner(
                setlist,
                candidates,
                listeners=listeners,
                target_shift=target_shift,
                phase_ends=[e + delta for e in phase_ends],
            )
        except ValueError:
            pass  # not this arc's schedule: fall back to the arc's own
    return Replanner(
        setlist, candidates, listeners=listeners, target_shift=target_shift, phase_ends=ends
    )


def prepare(request: PlayRequest) -> Prepared:
    """Load and check everything; raises a `SetlistError` naming the first problem."""
    from setlist.exports import load_setlist

    point: Any = None
    events: list[dict[str, Any]] | None = None
    warnings: list[str] = []
    damaged_from: int | None = None
    if request.resume is not None:
        playlist, point, events, damaged_from = _resume(request, warnings)
    elif request.playlist is None:
        raise PlaybackError("give the setlist to play (NAME.setlist.yaml), or --resume LOG")
    else:
        playlist = request.playlist
    if not playlist.is_file():
        raise PlaybackError(
            f"{display_path(playlist)}: no such setlist",
            hint="'setlist build' writes NAME.setlist.yaml into playlists/",
        )
    setlist = load_setlist(playlist, warnings)  # hand-edited levels: corrected, each said
    timeline = Timeline.from_setlist(setlist, shape=request.shape)
    start_at = request.start_at or 0.0
    prepared = Prepared(playlist, setlist, timeline, start_at, warnings=warnings)
    delta = 0.0
    phase_ends: list[float] | None = None
    if point is not None:
        plan = _logged_plan(events or [], setlist, warnings, damaged_from)
        if plan is not None:
            timeline, phase_ends = plan
        built = timeline
        timeline, start_at, note = _resume_start(timeline, point, logged_plan=plan is not None)
        delta = timeline.cues[0].start - built.cues[0].start
        if note:
            warnings.append(note)
        prepared.timeline, prepared.start_at = timeline, start_at
        prepared.master_db = float(getattr(point, "master_db", 0.0))
        prepared.target_shift = float(getattr(point, "target_shift", 0.0))
        prepared.resume_events = events
    if not 0 <= start_at < timeline.length:
        raise PlaybackError(
            f"--start-at {format_clock(start_at)} is outside the session "
            f"(0:00:00 to {format_clock(timeline.length)})"
        )
    bad = unreadable_files(timeline, request.backend)
    if len(bad) == len(timeline.cues):
        spotify = request.backend == "spotify"
        raise PlaybackError(
            f"none of the {len(bad)} tracks in {display_path(playlist)} can be "
            + (
                f"played through Spotify (first: {bad[0]})"
                if spotify
                else f"read (first: {bad[0]})"
            ),
            hint="build the session with --source spotify"
            if spotify
            else "is the music drive mounted? 'setlist library scan' finds moved files"
            + (
                "; Spotify tracks play with --backend spotify"
                if bad[0].startswith("spotify:")
                else ""
            ),
        )
    for path in bad:
        warnings.append(f"cannot read {path}: it will be replaced when its turn comes")
    if request.log is not None:
        if request.log.exists() and request.resume is None:
            raise PlaybackError(
                f"{display_path(request.log)} already exists: a session log is never "
                "overwritten or mixed with another session",
                hint="choose another --log, or --resume it to continue that session",
            )
        prepared.log_path, prepared.append = request.log, request.log.exists()
    elif request.resume is not None:
        prepared.log_path, prepared.append = request.resume, True
    else:
        prepared.log_path = default_log_path(playlist)
    folder = prepared.log_path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise PlaybackError(
            f"cannot write the session log in {display_path(folder)}",
            hint="give --log PATH in a folder you can write to",
        )
    prepared.replanner = _open_replanner(
        setlist, request, warnings, prepared.target_shift, delta, phase_ends
    )
    return prepared


# -- running -------------------------------------------------------------------------------


def make_player(request: PlayRequest) -> Player:
    """The libVLC player, or a Spotify Connect device; errors are one line."""
    if request.backend == "spotify":
        return _spotify_player(request)
    from setlist.players.vlc import VlcPlayer

    return VlcPlayer(device=request.device, aout=request.aout)


class _ConnectSession:
    """A Spotify Connect player that also closes the Web API client it owns."""

    def __init__(self, player: Any, client: Any) -> None:
        self._player, self._client = player, client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._player, name)

    def close(self) -> None:
        try:
            self._player.close()
        finally:
            self._client.close()


def _spotify_player(request: PlayRequest) -> Player:
    from setlist.players.spotify_connect import connect_player
    from setlist.sources import spotify as sp

    client = sp.SpotifyClient(sp.load_settings()).require_sign_in()
    try:
        player = connect_player(client, request.device, clock=MonotonicClock())
    except BaseException:
        client.close()
        raise
    return _ConnectSession(player, client)  # type: ignore[return-value]


def list_devices(aout: str | None = None) -> list[tuple[str, str]]:
    """(id, description) of every audio output device libVLC offers."""
    from setlist.players.vlc import devices

    return [(d.id, d.description) for d in devices(aout)]


def curves(
    setlist: Setlist, length: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The arc's target and the plan's realised intensity, for the view's chart."""
    times = np.linspace(0.0, max(length, 1.0), CURVE_POINTS)
    scale = setlist.arc.length / max(length, 1.0)
    target = np.asarray(setlist.arc.intensity_at(times * scale), dtype=float)
    realised = np.asarray(setlist.realised_at(times), dtype=float)
    return (
        [(float(t), float(v)) for t, v in zip(times, target, strict=True)],
        [(float(t), float(v)) for t, v in zip(times, realised, strict=True)],
    )


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[float], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP fade out and end; a second Ctrl-C hurries the fade.

    The handlers only ask the conductor to stop (a flag it reads on its next tick), so
    they are safe at any moment; the run then ends normally and every `finally` runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = {"n": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        count["n"] += 1
        request_stop(HURRY_FADE if count["n"] > 1 else STOP_FADE)

    wanted = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        wanted.append(signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def play(
    request: PlayRequest,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Clock | None = None,
    player_factory: Callable[[PlayRequest], Player] = make_player,
) -> PlayResult:
    """Run one session from start (or resume point) to end; see the module docstring."""
    out = out or sys.stdout
    err = err or sys.stderr

    def say(text: str, stream: TextIO = out) -> None:
        stream.write(text + "\n")
        stream.flush()

    prepared = prepare(request)
    import setlist.conductor  # noqa: F401  (fails here, before libVLC opens, if broken)

    player = player_factory(request)  # libVLC and the device are checked here
    # Signals are caught from here until everything is closed: a hang-up or a Ctrl-C
    # during clean-up must not cut it short (the handlers only ask for a fade).
    stops: list[Callable[[float], None]] = []

    def stop(fade: float) -> None:
        if not stops:  # no music yet: just stop setting up
            raise KeyboardInterrupt
        for request_stop in stops:
            request_stop(fade)

    try:
        with stop_on_signals(stop):
            return _run(request, prepared, player, stops, out, err, clock, say)
    finally:
        with contextlib.suppress(SetlistError, OSError, RuntimeError):
            player.close()  # idempotent; _run closes it first in the normal case


def _run(
    request: PlayRequest,
    prepared: Prepared,
    player: Player,
    stops: list[Callable[[float], None]],
    out: TextIO,
    err: TextIO,
    clock: Clock | None,
    say: Callable[..., None],
) -> PlayResult:
    from setlist.channel import ControlChannel, control_file_for
    from setlist.conductor import Conductor
    from setlist.levels import setlist_master_limit
    from setlist.sessionlog import SessionLog

    setlist, timeline = prepared.setlist, prepared.timeline
    log: Any = None
    channel: ControlChannel | None = None
    view: Any = None
    try:
        for warning in prepared.warnings:  # only once nothing stops the session
            say(f"warning: {warning}", err)
        log_path = prepared.log_path
        header = {
            "setlist": str(prepared.playlist.resolve()),
            "arc": setlist.arc.name,
            "seed": setlist.seed,
            "library": setlist.library,
            "length": round(timeline.length, 3),
            "start_at": round(prepared.start_at, 3),
            "shape": request.shape.value,
            "device": request.device or "",
        }
        if request.resume is not None:
            header["resumed_from"] = str(request.resume)
        if prepared.append:
            log = SessionLog.append_to(log_path)
        else:
            log = SessionLog.create(log_path, header)
        conductor = Conductor(
            timeline,
            player,
            clock or MonotonicClock(),
            log=log,
            replanner=prepared.replanner,
            arc=setlist.arc,
            start_at=prepared.start_at,
            master_db=prepared.master_db,
            metadata=header,
            master_limit=setlist_master_limit(setlist),
        )
        notices = getattr(player, "notices", None)
        diagnostics = getattr(player, "diagnostics", None)
        if callable(notices) or callable(diagnostics):
            # Backend news that is no voice's fault (a device without volume control, a
            # long rate limit): into the log, and on the status line as a message.
            # libVLC's and ALSA's own diagnostics go to the log only, never the screen.
            loud = notices if callable(notices) else None
            quiet = diagnostics if callable(diagnostics) else None

            def relay(status: Any) -> None:
                for text in loud() if loud is not None else ():
                    log.write("notice", session=status.session_time, text=text)
                    conductor.note(text)
                for text in quiet() if quiet is not None else ():
                    log.write("diagnostic", session=status.session_time, text=text)

            conductor.on_tick = relay
        start = format_clock(prepared.start_at)
        say(
            f"playing {display_path(prepared.playlist)}: {len(timeline.cues)} tracks, "
            f"{format_clock(timeline.length)}" + (f", from {start}" if prepared.start_at else "")
        )
        say(f"session log: {display_path(log_path)}")
        if request.channel:
            channel = ControlChannel(conductor, port=request.port)
            channel.start()
            control = channel.write_control_file(control_file_for(log_path), log=log_path)
            say(f"control: {channel.page_url}")
            say(
                f"  (token in {display_path(control)}; from another terminal: "
                f"setlist control --log {display_path(log_path)} skip)"
            )
        if request.view:
            from setlist.liveview import TerminalView

            arc_curve, realised = curves(setlist, timeline.length)
            view = TerminalView(conductor, arc_curve=arc_curve, realised=realised, stdout=out)
            view.start()
        stops.append(conductor.request_stop)
        try:
            conductor.run()
        except BaseException as exc:
            with contextlib.suppress(SetlistError, OSError, ValueError):
                log.write("fault", key=-1, reason=f"session stopped by an error: {exc!r}")
            raise
        status = conductor.status()
    finally:
        if view is not None:
            view.close()
        if channel is not None:
            channel.close()
        with contextlib.suppress(SetlistError, OSError, RuntimeError):
            player.close()
        if log is not None:
            log.close()
            if log.pending:  # the disk never came back: the events go to the terminal
                say(
                    f"warning: {log.failing}: {log.pending} events never reached it; "
                    "they follow, one JSON line each, for the notes",
                    err,
                )
                for line in log.unwritten():
                    say(line, err)
    reason = status.message or "ended"
    say(
        f"session ended at {format_clock(status.session_time)} "
        f"(played {format_length(max(0.0, status.session_time - prepared.start_at))}); "
        f"log: {display_path(log_path)}"
    )
    return PlayResult(log_path, status.session_time, reason, tuple(prepared.warnings))
