"""Listener profiles on disk: the thin I/O wrapper around the pure `setlist.profiles`.

Every failure becomes a `ProfileError` naming the file as the user typed it, so the CLI
prints one line per problem (`profiles/a.yaml:4:5: vocals: ...`) and never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from setlist.arcfiles import display_path
from setlist.errors import Problem, ProfileError
from setlist.profiles import Profile, parse_profile_text

_HINT = "give the path to a profile YAML file, e.g. profiles/individual-example.yaml"


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; `ProfileError` for anything wrong with it."""
    shown = display_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(f"{shown}: no such file", hint=_HINT) from None
    except IsADirectoryError:
        raise ProfileError(f"{shown}: is a folder, not a profile file", hint=_HINT) from None
    except OSError as exc:
        raise ProfileError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ProfileError(
            [Problem(shown, line, 1, "", "not UTF-8 text (save the file as UTF-8)")]
        ) from None
    return parse_profile_text(text, shown)
