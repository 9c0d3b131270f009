"""Atomic file writes: a crash or a full disk never leaves a half-written file behind.

Write to a temporary file in the same folder, fsync it, then rename over the target;
rename is atomic on POSIX filesystems, so readers see the old file or the new, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from setlist.errors import DataFileError, Problem


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically (creating parent folders as needed).

    The file gets `mode`, or what a plain `open()` would give it (0666 less the umask):
    the temporary file's private 0600 must not leak onto shared playlists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    with contextlib.suppress(OSError):
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working directory if below it.

    Always printable: a name that is not valid UTF-8 shows U+FFFD for the odd bytes.
    """
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        rel = path
    return os.fsencode(rel).decode("utf-8", errors="replace")


def read_data_file(
    path: Path,
    error: type[DataFileError],
    *,
    kind: str,
    missing_hint: str | None = None,
    folder_hint: str | None = None,
) -> str:
    """The UTF-8 text of a file a person wrote (arc, profile, setlist); every failure to
    read it becomes one line of `error` naming the file, never a traceback."""
    shown = display_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{shown}: no such file", hint=missing_hint) from None
    except IsADirectoryError:
        raise error(f"{shown}: is a folder, not a {kind}", hint=folder_hint) from None
    except OSError as exc:
        raise error(f"{shown}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            [Problem(shown, line, 1, "", "not UTF-8 text (save the file as UTF-8)")]
        ) from None
