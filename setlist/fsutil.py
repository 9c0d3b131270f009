"""Atomic file writes: a crash or a full disk never leaves a half-written file behind.

Write to a temporary file in the same folder, fsync it, then rename over the target;
rename is atomic on POSIX filesystems, so readers see the old file or the new, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from setlist.errors import DataFileError, OutputError, Problem


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: errno values that mean "the disk is full" (no space, or over quota).
_FULL = (errno.ENOSPC, errno.EDQUOT)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def free_space(folder: Path) -> int | None:
    """Bytes free to an unprivileged writer in `folder` (None when it cannot be known)."""
    for f in (folder, *folder.parents):
        try:
            return shutil.disk_usage(f).free
        except OSError:
            continue
    return None


def output_error(
    path: Path, exc: OSError, need: int | None = None, *, tail: str = "; nothing was written"
) -> OutputError:
    """One line for a failed write: the path, why, and on a full disk the space needed."""
    why = exc.strerror or str(exc)
    if exc.errno in _FULL:
        free = free_space(path.parent)
        bits = [
            f"{_size(need)} needed" if need else "",
            f"{_size(free)} free" if free is not None else "",
        ]
        room = ", ".join(b for b in bits if b)
        why = "the disk is full" + (f" ({room})" if room else "")
    return OutputError(f"{display_path(path)}: cannot write: {why}{tail}")


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically (creating parent folders as needed).

    The file gets `mode`, or what a plain `open()` would give it (0666 less the umask):
    the temporary file's private 0600 must not leak onto shared playlists. Any failure
    removes the temporary file and raises `OutputError` (one line, also an OSError).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc, len(data)) from None
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(path, exc, len(data)) from None
        raise
    fsync_dir(path.parent)


def write_together(items: Sequence[tuple[Path, bytes]], mode: int | None = None) -> None:
    """Write several files of one folder all or nothing (a build's setlist and playlists).

    Every file is written and fsynced in a temporary folder beside the targets first, so
    a full disk fails before anything is in place; they are then renamed in, and a
    failure part-way undoes the renames (restoring any file they replaced). Raises
    `OutputError` naming the file that failed and the space needed.
    """
    if not items:
        return
    folder = items[0][0].parent
    if any(p.parent != folder for p, _ in items):
        raise ValueError("write_together writes into one folder")
    need = sum(len(d) for _, d in items)
    current = items[0][0]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".setlist-write.", dir=folder))
    except OSError as exc:
        raise output_error(current, exc, need) from None
    placed: list[tuple[Path, Path | None]] = []
    try:
        for path, data in items:
            current = path
            fd = os.open(staging / path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), mode if mode is not None else 0o666 & ~_umask())
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for path, _ in items:
            current = path
            backup: Path | None = None
            if path.exists():
                backup = staging / f"{path.name}.previous"
                os.link(path, backup)
            (staging / path.name).replace(path)
            placed.append((path, backup))
    except BaseException as exc:
        for path, backup in reversed(placed):
            with contextlib.suppress(OSError):
                if backup is not None:
                    backup.replace(path)
                else:
                    path.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(current, exc, need) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """Make a new or renamed file's directory entry durable too (else a power cut can
    lose it); best effort, since not every file system lets a folder be fsync'd."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
