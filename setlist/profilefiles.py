"""Listener profiles on disk: the thin I/O wrapper around the pure `setlist.profiles`.

Every failure becomes a `ProfileError` naming the file as the user typed it, so the CLI
prints one line per problem (`profiles/a.yaml:4:5: vocals: ...`) and never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from setlist.errors import ProfileError
from setlist.fsutil import display_path, read_data_file
from setlist.profiles import Profile, parse_profile_text

_HINT = "give the path to a profile YAML file, e.g. profiles/individual-example.yaml"


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; `ProfileError` for anything wrong with it."""
    text = read_data_file(
        path, ProfileError, kind="profile file", missing_hint=_HINT, folder_hint=_HINT
    )
    return parse_profile_text(text, display_path(path))
