"""Arc templates on disk: the search path, lookup by name or path, and `extends` resolution.

The adapter around the pure `setlist.arcs`: the only arc code that touches the
filesystem. Paths in messages are shown relative to the working directory when they lie
under it, so `arcs/foo.yaml:12:5` can be pasted into an editor.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from setlist.arcs import parse_arc, validate_arc
from setlist.errors import ArcError, Problem
from setlist.fsutil import (
    display_path,
    read_data_file,
)
from setlist.models import Arc
from setlist.yamlsrc import Node, parse_yaml

SUFFIXES = (".yaml", ".yml")
_LIST_HINT = "'setlist arcs list' shows the arcs by name"
_PACKAGE = Path(__file__).resolve().parent


def shipped_dir() -> Path:
    """Where the shipped templates are: inside an installed wheel, or the source checkout."""
    packaged = _PACKAGE / "_data" / "arcs"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "arcs"


def search_path() -> list[Path]:
    """Folders searched for arcs by name, first match wins.

    `SETLIST_ARCS` (os.pathsep-separated) comes first so a clinic can keep its own
    templates, then the user's config folder, then the templates shipped with setlist.
    """
    dirs = [Path(p) for p in os.environ.get("SETLIST_ARCS", "").split(os.pathsep) if p]
    dirs.append(Path(platformdirs.user_config_dir("setlist")) / "arcs")
    dirs.append(shipped_dir())
    out: list[Path] = []
    for d in dirs:
        try:
            usable = d.is_dir() and os.access(d, os.R_OK | os.X_OK)
        except OSError:  # e.g. a parent folder we may not enter: not ours to search
            usable = False
        if usable and d.resolve() not in {o.resolve() for o in out}:
            out.append(d)
    return out


def read_template(path: Path) -> Node:
    """Read and parse one template file; every failure becomes a one-line `ArcError`."""
    text = read_data_file(path, ArcError, kind="template file", missing_hint=_LIST_HINT)
    return parse_yaml(text, display_path(path))


def _looks_like_path(ref: str) -> bool:
    return os.sep in ref or "/" in ref or ref.endswith(SUFFIXES)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The templates found on the search path, by the name a user types."""

    dirs: tuple[Path, ...]

    @classmethod
    def default(cls) -> Catalogue:
        return cls(tuple(search_path()))

    def files(self) -> list[Path]:
        """Every template file, earlier folders shadowing later ones by file name."""
        seen: dict[str, Path] = {}
        for d in self.dirs:
            for path in sorted(p for p in d.iterdir() if p.suffix in SUFFIXES):
                seen.setdefault(path.stem, path)
        return list(seen.values())

    def find(self, ref: str, *, near: Path | None = None) -> Path:
        """The file for a name or path; names are looked up beside `near` first."""
        if _looks_like_path(ref):
            base = near.parent if near is not None else Path.cwd()
            path = Path(ref).expanduser()
            return path if path.is_absolute() else base / path
        dirs = ([near.parent] if near is not None else []) + list(self.dirs)
        for d in dirs:
            for suffix in SUFFIXES:
                candidate = d / f"{ref}{suffix}"
                if candidate.is_file():
                    return candidate
        names = [p.stem for p in self.files()]
        guess = difflib.get_close_matches(ref, names, n=1, cutoff=0.5)
        tail = f"; did you mean '{guess[0]}'?" if guess else ""
        raise ArcError(f"unknown arc '{ref}'{tail}", hint=_LIST_HINT)

    def resolver(self, ref: str, origin: str) -> Node:
        """`extends` resolution: relative to the extending file, then the search path."""
        return read_template(self.find(ref, near=Path(origin)))

    def load(self, ref: str) -> Arc:
        """The arc for a name or path, fully validated; `ArcError` otherwise."""
        return parse_arc(read_template(self.find(ref)), self.resolver)

    def check(self, path: Path) -> tuple[Arc | None, list[Problem]]:
        """Validate one file, returning problems instead of raising for bad content."""
        try:
            root = read_template(path)
        except ArcError as exc:
            if exc.problems:
                return None, list(exc.problems)
            return None, [Problem(display_path(path), 1, 1, "", exc.message)]
        return validate_arc(root, self.resolver)
