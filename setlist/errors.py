"""The one exceptions module: every error a user can cause derives from `SetlistError`.

The CLI turns a `SetlistError` into one line (plus its hint) and a non-zero exit; anything
else is a bug and keeps its traceback. Keeping the hierarchy here means adapters and the
core never need to know how errors are shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class SetlistError(Exception):
    """Base of all user-facing errors; `hint` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """The lines the CLI prints: one per problem, so each can be acted on."""
        return [self.message]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file, located precisely enough to fix it in an editor."""

    origin: str
    line: int
    column: int
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.origin}:{self.line}:{self.column}"
        what = f"{self.path}: {self.message}" if self.path else self.message
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{what}"


class DataFileError(SetlistError):
    """A YAML file a person wrote (arc, annotations, profile) is malformed.

    Holds every located `Problem` so a validator can print them all, one per line.
    """

    exit_code = 2

    def __init__(self, problems: Iterable[Problem] | str, *, hint: str | None = None) -> None:
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            super().__init__(problems, hint=hint)
            return
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = str(errors[0] if errors else self.problems[0])
        more = len(errors) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""), hint=hint)

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems] if self.problems else [self.message]


class ArcError(DataFileError):
    """An arc template is malformed, unknown or inconsistent."""


class ProfileError(DataFileError):
    """A listener profile is malformed or cannot be read."""


class SetlistFileError(DataFileError):
    """A saved setlist (`NAME.setlist.yaml`) is malformed or cannot be read."""


class LibraryError(SetlistError):
    """The music library or its index cannot be used as asked."""


class AnnotationsFileError(DataFileError, LibraryError):
    """An annotations file cannot be imported as written."""


class TagReadError(LibraryError):
    """One file's tags could not be read; carries the path so a batch can report it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class AnalysisError(LibraryError):
    """Audio could not be decoded or analysed."""


class PlanningError(SetlistError):
    """No session can be planned as asked."""


class CannotFillPhase(PlanningError):
    """The library runs dry for a phase; names the constraint so the therapist can act."""


class PlaybackError(SetlistError):
    """Live playback cannot start or continue."""


class SpotifyError(SetlistError):
    """Spotify refused, failed or is unreachable."""


class SpotifyAuthError(SpotifyError):
    """Not signed in, or Spotify no longer accepts the saved sign-in."""


class RateLimited(SpotifyError):
    """Spotify asked us to wait longer than a session can afford; `retry_after` in seconds."""

    def __init__(self, message: str, *, retry_after: float, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class PremiumRequired(SpotifyError):
    """Playback control (Spotify Connect) needs a Premium account."""


class NoActiveDevice(SpotifyError):
    """No Spotify Connect device is active (open Spotify on the room's speaker or computer)."""


class SpotifyUnavailable(SpotifyError):
    """Spotify cannot be reached, or kept failing (offline, timeouts, server errors)."""


class SessionLogError(PlaybackError):
    """The session log cannot be written or read (disk full, removed, not a log)."""


class OutputError(SetlistError, OSError):
    """A file could not be written (full disk, read-only folder): nothing half-written.

    Also an `OSError`, so code that already guards a write with `except OSError` keeps
    working; the message names the path and, on a full disk, the space needed.
    """
