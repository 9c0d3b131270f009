"""Therapist controls as data: what can be asked of a running session, and what it shows.

The terminal view, the local control channel and tests all speak these commands, and
read the same `Status` snapshot, so every way of driving a session behaves alike.
Pure: parsing and formatting only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from setlist.errors import SetlistError


class Action(StrEnum):
    PAUSE = "pause"  # fade down briefly, then hold
    RESUME = "resume"
    TOGGLE = "toggle"  # pause or resume
    SKIP = "skip"  # cross-fade to the next track now
    LOUDER = "louder"  # master volume up by `amount` dB (default 2)
    QUIETER = "quieter"  # master volume down by `amount` dB (default 2)
    SOFTER = "softer"  # re-plan upcoming tracks with the target lowered by `amount`
    STRONGER = "stronger"  # ... raised by `amount` (default 0.1 intensity)
    EXTEND = "extend"  # lengthen the current phase by `amount` minutes (default 5)
    SHORTEN = "shorten"  # shorten the current phase by `amount` minutes (default 5)
    INTEGRATION = "integration"  # jump to the integration (last) phase now
    FADE_OUT = "fade-out"  # fade everything out over `amount` seconds (default 20), end
    STATUS = "status"  # no-op; answers with the status


#: Default amount per action, and its unit for help texts.
DEFAULTS: dict[Action, tuple[float, str]] = {
    Action.LOUDER: (2.0, "dB"),
    Action.QUIETER: (2.0, "dB"),
    Action.SOFTER: (0.1, "intensity"),
    Action.STRONGER: (0.1, "intensity"),
    Action.EXTEND: (5.0, "minutes"),
    Action.SHORTEN: (5.0, "minutes"),
    Action.FADE_OUT: (20.0, "seconds"),
}

#: Largest amount each action accepts (above zero): the master volume spans -40..+6 dB,
#: intensity 0..1, a phase change at most four hours, a fade-out at most ten minutes.
MAXIMA: dict[Action, float] = {
    Action.LOUDER: 46.0,
    Action.QUIETER: 46.0,
    Action.SOFTER: 1.0,
    Action.STRONGER: 1.0,
    Action.EXTEND: 240.0,
    Action.SHORTEN: 240.0,
    Action.FADE_OUT: 600.0,
}

#: Single keys on the live terminal view.
KEYS: dict[str, Action] = {
    " ": Action.TOGGLE,
    "p": Action.TOGGLE,
    "n": Action.SKIP,
    "+": Action.LOUDER,
    "=": Action.LOUDER,
    "-": Action.QUIETER,
    "s": Action.SOFTER,
    "S": Action.STRONGER,
    "e": Action.EXTEND,
    "E": Action.SHORTEN,
    "i": Action.INTEGRATION,
    "f": Action.FADE_OUT,
}


class CommandError(SetlistError):
    """A control command could not be understood."""


@dataclass(frozen=True, slots=True)
class Command:
    """One request to the running session; `origin` says who asked (for the log)."""

    action: Action
    amount: float | None = None
    origin: str = "keyboard"

    @property
    def value(self) -> float:
        """The amount, or the action's default."""
        if self.amount is not None:
            return self.amount
        return DEFAULTS.get(self.action, (0.0, ""))[0]

    def __str__(self) -> str:
        return self.action.value if self.amount is None else f"{self.action.value} {self.amount:g}"


def parse_command(text: str, origin: str = "channel") -> Command:
    """`"extend 5"`, `"softer"`, `"quieter 3"` → a Command; a clear error otherwise."""
    words = text.strip().split()
    if not words:
        raise CommandError("empty command", hint=f"one of: {', '.join(a.value for a in Action)}")
    name = words[0].lower().replace("_", "-")
    aliases = {"fadeout": "fade-out", "end": "fade-out", "next": "skip", "play": "resume"}
    name = aliases.get(name, name)
    try:
        action = Action(name)
    except ValueError:
        raise CommandError(
            f"unknown command {words[0]!r}",
            hint=f"one of: {', '.join(a.value for a in Action)}",
        ) from None
    amount: float | None = None
    if len(words) > 2:
        raise CommandError(f"{action.value}: too many words in {text.strip()!r}")
    if len(words) == 2:
        if action not in DEFAULTS:
            raise CommandError(f"{action.value} takes no amount")
        top, unit = MAXIMA[action], DEFAULTS[action][1]
        valid = f"give an amount above 0 and at most {top:g} {unit}"
        try:
            amount = float(words[1])
        except ValueError:
            raise CommandError(
                f"{action.value}: {words[1][:40]!r} is not a number ({valid})"
            ) from None
        if not 0 < amount <= top:  # NaN fails this too
            raise CommandError(f"{action.value}: {words[1][:40]} is out of range ({valid})")
    return Command(action, amount, origin)


@dataclass(frozen=True, slots=True)
class TrackInfo:
    key: int
    title: str
    artist: str
    phase: str
    start: float  # session seconds
    stop: float
    position: float  # seconds into the track as heard (session time - start)


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of the running session for the view and the control channel."""

    session_time: float
    length: float
    paused: bool
    ended: bool
    phase: str
    phase_left: float
    next_phase: str
    now: TrackInfo | None
    next: TrackInfo | None
    next_change_in: float | None
    master_db: float
    target_shift: float
    fading_out: bool
    target_intensity: float
    message: str = ""
    #: Why the session log cannot be written just now ("" when it can): shown until fixed.
    log_failing: str = ""

    def to_dict(self) -> dict[str, object]:
        def info(t: TrackInfo | None) -> dict[str, object] | None:
            if t is None:
                return None
            return {
                "key": t.key,
                "title": t.title,
                "artist": t.artist,
                "phase": t.phase,
                "start": round(t.start, 3),
                "stop": round(t.stop, 3),
                "position": round(t.position, 3),
            }

        return {
            "session_time": round(self.session_time, 3),
            "length": round(self.length, 3),
            "paused": self.paused,
            "ended": self.ended,
            "phase": self.phase,
            "phase_left": round(self.phase_left, 3),
            "next_phase": self.next_phase,
            "now": info(self.now),
            "next": info(self.next),
            "next_change_in": None
            if self.next_change_in is None
            else round(self.next_change_in, 3),
            "master_db": round(self.master_db, 2),
            "target_shift": round(self.target_shift, 3),
            "fading_out": self.fading_out,
            "target_intensity": round(self.target_intensity, 3),
            "message": self.message,
            "log_failing": self.log_failing,
        }
