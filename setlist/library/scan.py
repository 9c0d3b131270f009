"""Scanning folders into the index: walk, read tags with mutagen, fingerprint, analyse.

`read_tags(path)` is the I/O (mutagen) and `tags_to_values(raw, path)` the pure mapping
from whatever tag dialect a format speaks (ID3 frames, Vorbis comments, MP4 atoms) to
the index's columns, with sensible fallbacks (file name -> title, "Artist - Title"
names). A scan is incremental: a file whose size and mtime are unchanged costs one
`stat` and nothing more. It never gives up on a bad file: each failure is recorded with
its path and reason and the scan goes on. Batches are committed as they finish, so an
interrupted scan keeps its work and the next one resumes; files are only marked missing
after a walk that completed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from setlist.errors import AnalysisError, LibraryError, TagReadError
from setlist.library.analysis import FEATURES_VERSION
from setlist.library.index import Index, ScannedFile, display, path_to_uri

#: Formats both mutagen reads and PyAV decodes.
AUDIO_SUFFIXES = frozenset(
    {
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".m4b",
        ".mp4",
        ".aac",
        ".alac",
        ".wav",
        ".wave",
        ".aif",
        ".aiff",
        ".aifc",
        ".wv",
    }
)
BATCH = 500
#: Below this many files, starting worker processes costs more than it saves.
PARALLEL_MIN = 200
FINGERPRINT_CHUNK = 4 * 1024

RawTags = dict[str, Any]


class Progress(Protocol):
    """How a long job reports progress; the CLI draws a bar or prints plain lines."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class ScanProblem:
    """A file or folder the scan could not use, and why (`uri` set for files)."""

    path: str
    reason: str
    uri: str = ""


@dataclass(slots=True)
class ScanReport:
    """What a scan did, for the summary and `--json`."""

    roots: list[str]
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    missing: int = 0
    ignored: int = 0
    failed: list[ScanProblem] = field(default_factory=list)
    skipped: list[ScanProblem] = field(default_factory=list)
    analysed: int = 0
    analysis_failed: list[ScanProblem] = field(default_factory=list)
    analysis_pending: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": self.roots,
            "seen": self.seen,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "missing": self.missing,
            "ignored": self.ignored,
            "failed": [{"path": p.path, "reason": p.reason} for p in self.failed],
            "skipped": [{"path": p.path, "reason": p.reason} for p in self.skipped],
            "analysed": self.analysed,
            "analysis_failed": [{"path": p.path, "reason": p.reason} for p in self.analysis_failed],
            "analysis_pending": self.analysis_pending,
            "seconds": round(self.seconds, 3),
        }


# -- walking ---------------------------------------------------------------------------
def walk(
    roots: Sequence[Path], problems: list[ScanProblem]
) -> Iterator[tuple[Path, os.stat_result]]:
    """Audio files under `roots` with their stat, following symlinks but never looping.

    Unreadable folders and symlink loops are recorded in `problems` and skipped.
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[Path] = []
    for root in roots:
        try:
            st = root.stat()
        except OSError as exc:
            problems.append(ScanProblem(display(root), _reason(exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            stack.append(root)
        elif root.suffix.lower() in AUDIO_SUFFIXES:
            yield root, st
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError as exc:
            problems.append(ScanProblem(display(folder), _reason(exc)))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            if folder.is_symlink():
                problems.append(
                    ScanProblem(display(folder), "symlink loop (folder already scanned)")
                )
            continue
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            problems.append(ScanProblem(display(folder), _reason(exc)))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    subdirs.append(path)
                    continue
                if os.path.splitext(entry.name)[1].lower() not in AUDIO_SUFFIXES:  # noqa: PTH122
                    continue
                yield path, entry.stat()
            except OSError as exc:
                problems.append(ScanProblem(display(path), _reason(exc)))
        stack.extend(reversed(subdirs))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


# -- tags ----------------------------------------------------------------------------
_ID3_FRAMES = {
    "TIT2": "title",
    "TPE1": "artist",
    "TALB": "album",
    "TPE2": "albumartist",
    "TCON": "genre",
    "TRCK": "tracknumber",
    "TPOS": "discnumber",
    "TDRC": "date",
    "TYER": "date",
    "TSRC": "isrc",
    "TBPM": "bpm",
    "TLAN": "language",
}
_MP4_ATOMS = {
    "\xa9nam": "title",
    "\xa9ART": "artist",
    "\xa9alb": "album",
    "aART": "albumartist",
    "\xa9gen": "genre",
    "\xa9day": "date",
    "\xa9cmt": "comment",
    "tmpo": "bpm",
    "trkn": "tracknumber",
    "disk": "discnumber",
}
_ALIASES = {
    "description": "comment",
    "album artist": "albumartist",
    "album_artist": "albumartist",
    "year": "date",
    "tempo": "bpm",
    "musicbrainz track id": "musicbrainz_trackid",
    "musicbrainz release track id": "musicbrainz_releasetrackid",
    "musicbrainz album id": "musicbrainz_albumid",
    "musicbrainz artist id": "musicbrainz_artistid",
}
_FORMATS = {
    "MP3": "mp3",
    "FLAC": "flac",
    "OggVorbis": "ogg",
    "OggOpus": "opus",
    "OggFLAC": "flac",
    "MP4": "m4a",
    "WAVE": "wav",
    "AIFF": "aiff",
    "WavPack": "wv",
}


def _header_is(kind: str, head: bytes) -> bool:
    """Whether a file's first bytes carry the magic of the container its suffix names."""
    if kind == "mp3":  # an ID3v2 tag or an MPEG frame sync
        return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] >= 0xE0)
    if kind == "mp4":
        return head[4:8] == b"ftyp"
    if kind == "wav":
        return head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    return head[:4] == {"flac": b"fLaC", "ogg": b"OggS", "aiff": b"FORM"}[kind]


# Suffix -> (container, mutagen class). Loading the class directly skips mutagen.File's
# scoring of ~25 formats (it reads and scores every candidate: a third of its time on
# small files). The header check keeps a mislabelled file from the wrong parser; a
# mismatch or a failure falls back to mutagen.File, which decides as before.
_BY_SUFFIX: dict[str, tuple[str, type[mutagen.FileType]]] = {
    ".mp3": ("mp3", MP3),
    ".flac": ("flac", FLAC),
    ".ogg": ("ogg", OggVorbis),
    ".opus": ("ogg", OggOpus),
    ".m4a": ("mp4", MP4),
    ".m4b": ("mp4", MP4),
    ".mp4": ("mp4", MP4),
    ".wav": ("wav", WAVE),
    ".aif": ("aiff", AIFF),
    ".aiff": ("aiff", AIFF),
}


def _load(path: Path, fh: BinaryIO) -> mutagen.FileType | None:
    """mutagen's reading of `fh`: the suffix's class when the header agrees, else File."""
    known = _BY_SUFFIX.get(os.path.splitext(path)[1].lower())  # noqa: PTH122
    if known is not None:
        head = fh.read(12)
        fh.seek(0)
        if _header_is(known[0], head):
            try:
                return known[1](fh)
            except (mutagen.MutagenError, ValueError, EOFError):
                fh.seek(0)  # let mutagen.File decide, and word the error, as it would
    return mutagen.File(fh)


def read_tags(path: Path, fileobj: BinaryIO | None = None) -> RawTags:
    """Tags and stream info of one file as plain data; `TagReadError` when unreadable.

    `fileobj`, an open handle on `path`, lets a caller reuse one open for other reads.
    """
    try:
        with contextlib.ExitStack() as stack:
            if fileobj is None:  # builtin open: Path.open costs a few us more per file
                fileobj = stack.enter_context(open(path, "rb"))  # noqa: PTH123
            audio = _load(path, fileobj)
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as exc:
        cause = exc.__context__ if isinstance(exc, mutagen.MutagenError) else exc
        raise TagReadError(display(path), _reason(cause or exc)) from None
    if audio is None:
        raise TagReadError(display(path), "not a recognised audio file")
    raw: RawTags = {"_format": _FORMATS.get(type(audio).__name__, type(audio).__name__.lower())}
    info = audio.info
    raw["_length"] = float(getattr(info, "length", 0.0) or 0.0)
    raw["_sample_rate"] = getattr(info, "sample_rate", None)
    raw["_channels"] = getattr(info, "channels", None)
    raw["_bitrate"] = getattr(info, "bitrate", None)
    codec = getattr(info, "codec", "")
    if raw["_format"] == "m4a" and isinstance(codec, str) and codec.startswith("alac"):
        raw["_format"] = "alac"
    tags = audio.tags
    if tags is None:
        return raw
    for key, value in _tag_items(tags):
        raw.setdefault(key, []).extend(value)
    return raw


def _tag_items(tags: Any) -> Iterator[tuple[str, list[str]]]:
    """(canonical key, values) pairs from ID3, Vorbis-comment or MP4 tags."""
    cls = type(tags).__name__
    if cls in ("ID3", "_WaveID3", "_IFFID3"):
        for frame in tags.values():
            fid = frame.FrameID
            if fid in _ID3_FRAMES:
                yield _ID3_FRAMES[fid], [str(t) for t in frame.text]
            elif fid == "TXXX":
                yield _canonical(frame.desc), [str(t) for t in frame.text]
            elif fid == "COMM" and frame.text:
                yield "comment", [str(t) for t in frame.text]
            elif fid == "UFID" and frame.owner == "http://musicbrainz.org":
                yield "musicbrainz_trackid", [frame.data.decode("ascii", "replace")]
        return
    if cls == "MP4Tags":
        for atom, values in tags.items():
            if atom in ("trkn", "disk"):
                yield _MP4_ATOMS[atom], [str(v[0]) for v in values if v and v[0]]
            elif atom in _MP4_ATOMS:
                yield _MP4_ATOMS[atom], [str(v) for v in values]
            elif atom.startswith("----:"):
                name = atom.split(":", 2)[-1]
                yield _canonical(name), [bytes(v).decode("utf-8", "replace") for v in values]
        return
    # Vorbis comments (FLAC, Ogg Vorbis/Opus) and anything else list-of-pairs shaped.
    try:
        items = list(tags.items()) if hasattr(tags, "items") else list(tags)
    except (TypeError, ValueError):
        return
    for key, value in items:
        values = value if isinstance(value, list) else [value]
        yield _canonical(str(key)), [str(v) for v in values]


def _canonical(key: str) -> str:
    key = key.strip().lower()
    return _ALIASES.get(key, key.replace(" ", "_"))


_NUMBER = re.compile(r"^\s*(\d+)")
_GAIN = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)")
_YEAR = re.compile(r"(\d{4})")
_STEM_NUMBER = re.compile(r"^\s*\d{1,3}\s*[-._ ]\s*")


def tags_to_values(raw: RawTags, path: Path | str) -> dict[str, Any]:
    """Index column values from raw tags (pure): first values, parsed numbers, fallbacks."""

    def first(key: str) -> str:
        values = raw.get(key) or []
        for v in values:
            v = str(v).strip().replace("\x00", "")
            if v:
                return v
        return ""

    def number(key: str) -> int | None:
        m = _NUMBER.match(first(key))
        return int(m.group(1)) if m else None

    def gain(key: str) -> float | None:
        m = _GAIN.match(first(key))
        return float(m.group(1)) if m else None

    title, artist = first("title"), first("artist")
    if not title:
        stem = Path(os.fsdecode(path)).stem if not isinstance(path, Path) else path.stem
        stem = display(stem)
        if not artist and " - " in stem:
            artist, _, title = (
                part.strip() for part in _STEM_NUMBER.sub("", stem).partition(" - ")
            )
        else:
            title = _STEM_NUMBER.sub("", stem).strip() or stem
    year_match = _YEAR.search(first("date"))
    bpm = gain("bpm")
    rg_track = gain("replaygain_track_gain")
    r128 = number_or_none(first("r128_track_gain"))
    if rg_track is None and r128 is not None:
        # Opus R128 gain is Q7.8 dB towards -23 LUFS; ReplayGain aims at -18 LUFS.
        rg_track = r128 / 256.0 + 5.0
    return {
        "format": raw.get("_format", ""),
        "title": title,
        "artist": artist,
        "album": first("album"),
        "album_artist": first("albumartist"),
        "genre": "; ".join(dict.fromkeys(v.strip() for v in raw.get("genre", []) if v.strip())),
        "track_number": number("tracknumber"),
        "disc_number": number("discnumber"),
        "year": int(year_match.group(1)) if year_match else None,
        "isrc": first("isrc").replace("-", "").upper(),
        "bpm": bpm if bpm and 20 <= bpm <= 400 else None,
        "language": first("language"),
        "comment": first("comment"),
        "mb_track_id": first("musicbrainz_trackid"),
        "mb_album_id": first("musicbrainz_albumid"),
        "mb_artist_id": first("musicbrainz_artistid"),
        "rg_track_gain": rg_track,
        "rg_track_peak": gain("replaygain_track_peak"),
        "rg_album_gain": gain("replaygain_album_gain"),
        "duration": float(raw.get("_length") or 0.0),
        "sample_rate": raw.get("_sample_rate"),
        "channels": raw.get("_channels"),
        "bitrate": raw.get("_bitrate"),
    }


def number_or_none(text: str) -> int | None:
    m = re.match(r"^\s*([-+]?\d+)\s*$", text)
    return int(m.group(1)) if m else None


def fingerprint(path: Path, size: int, fileobj: BinaryIO | None = None) -> str:
    """A cheap content fingerprint: size plus 4 KB from the start, middle and end.

    Enough to recognise a moved file (identical bytes) without reading it whole: two
    different recordings of exactly the same size agreeing in all three places do not
    happen in practice (the middle lies deep in the compressed audio).
    """
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    offsets = sorted(
        {0, max(0, size // 2 - FINGERPRINT_CHUNK // 2), max(0, size - FINGERPRINT_CHUNK)}
    )
    # pread on a raw descriptor: no buffered reader, no seeks (a quarter of the cost).
    fd = fileobj.fileno() if fileobj is not None else os.open(path, os.O_RDONLY)
    try:
        for offset in offsets:
            h.update(os.pread(fd, FINGERPRINT_CHUNK, offset))
    finally:
        if fileobj is None:
            os.close(fd)
    return h.hexdigest()


def read_file(path: Path, size: int, mtime_ns: int, uri: str | None = None) -> ScannedFile:
    """Everything the index stores about one file; `TagReadError` if it cannot be read."""
    if size == 0:
        raise TagReadError(display(path), "empty file")
    try:  # one open serves the tags and the fingerprint
        fh = open(path, "rb")  # noqa: PTH123, SIM115 - builtin open: a few us less per file
    except OSError as exc:
        raise TagReadError(display(path), _reason(exc)) from None
    with fh:
        raw = read_tags(path, fh)
        values = tags_to_values(raw, path)
        if values["duration"] <= 0:
            raise TagReadError(display(path), "no audio (zero length)")
        try:
            fp = fingerprint(path, size, fh)
        except OSError as exc:
            raise TagReadError(display(path), _reason(exc)) from None
    uri = uri or path_to_uri(path)
    return ScannedFile(uri, display(path), size, mtime_ns, fp, values)


def _read_chunk(items: list[tuple[str, int, int, str]]) -> list[ScannedFile | ScanProblem]:
    """Worker: read a chunk of files (paths travel as str; bytes-safe via fsencode)."""
    out: list[ScannedFile | ScanProblem] = []
    for name, size, mtime_ns, uri in items:
        try:
            out.append(read_file(Path(name), size, mtime_ns, uri))
        except TagReadError as exc:
            out.append(ScanProblem(exc.path, exc.reason, uri))
    return out


# -- the scan --------------------------------------------------------------------------
def scan(
    roots: Sequence[Path],
    index: Index,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    analyze: bool = True,
    analyzer: Callable[[Path], Any] | None = None,
) -> ScanReport:
    """Bring the index up to date with `roots`; see the module docstring for guarantees."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    report = ScanReport(roots=[display(r) for r in roots])
    for root in roots:
        if not root.exists():
            raise LibraryError(f"{display(root)}: no such folder or file")
    known = index.known_files()
    problems: list[ScanProblem] = []
    todo: list[tuple[Path, int, int, str]] = []
    seen_uris: set[str] = set()
    changed_uris: list[str] = []
    for path, st in walk(list(roots), problems):
        report.seen += 1
        uri = path_to_uri(path)
        seen_uris.add(uri)
        old = known.get(uri)
        unchanged = old is not None and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns)
        if unchanged and old is not None and old.status == "ok":
            # Failed and missing files are read again: they may have been repaired.
            report.unchanged += 1
            continue
        if old is not None and old.status == "ok":
            changed_uris.append(uri)
        todo.append((path, st.st_size, st.st_mtime_ns, uri))
    report.skipped.extend(problems)

    # The walk is complete, so a known file it did not see is gone. Marking it missing
    # before reading lets a new path with the same fingerprint claim its row (a move,
    # keeping annotations and features); an interrupted scan leaves it missing, and the
    # next one still recognises the move.
    prefixes = tuple(_root_prefix(r) for r in roots)
    gone = {
        k.id
        for uri, k in known.items()
        if k.status != "missing" and uri not in seen_uris and uri.startswith(prefixes)
    }
    index.mark_missing(gone)

    progress.start("reading tags", len(todo))
    try:
        for results in _read_all(todo, jobs):
            ok = [r for r in results if isinstance(r, ScannedFile)]
            bad = [r for r in results if isinstance(r, ScanProblem)]
            for f in ok:
                if f.uri in known and known[f.uri].status == "ok":
                    report.updated += 1
                else:
                    report.new += 1
            report.moved += index.store_scanned(ok)
            if bad:
                index.store_failed([(b.uri, b.path, b.reason) for b in bad])
            report.failed.extend(bad)
            progress.advance(len(results))
    finally:
        progress.finish()
    report.new -= report.moved
    if changed_uris:
        index.forget_features(changed_uris)

    still_gone = {k.id for k in index.known_files().values() if k.status == "missing"}
    report.missing = len(gone & still_gone)

    if analyze:
        analyse_pending(index, report, jobs=jobs, progress=progress, analyzer=analyzer)
    else:
        report.analysis_pending = len(index.pending_analysis(FEATURES_VERSION))
    report.seconds = time.perf_counter() - started
    return report


def _root_prefix(root: Path) -> str:
    uri = path_to_uri(root)
    return uri if root.is_file() else uri.rstrip("/") + "/"


def _read_all(
    todo: list[tuple[Path, int, int, str]], jobs: int
) -> Iterator[list[ScannedFile | ScanProblem]]:
    """Batches of read results, in-process for one job, else across worker processes."""
    if jobs <= 1 or len(todo) < PARALLEL_MIN:
        for start in range(0, len(todo), BATCH):
            yield _read_chunk(
                [(os.fsdecode(p), s, m, u) for p, s, m, u in todo[start : start + BATCH]]
            )
        return
    chunk = 64
    items = [(os.fsdecode(p), s, m, u) for p, s, m, u in todo]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: set[Future[list[ScannedFile | ScanProblem]]] = set()
        batch: list[ScannedFile | ScanProblem] = []
        for start in range(0, len(items), chunk):
            pending.add(pool.submit(_read_chunk, items[start : start + chunk]))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                batch.extend(fut.result())
            if len(batch) >= BATCH or not pending:
                yield batch
                batch = []


def analyse_pending(
    index: Index,
    report: ScanReport,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    analyzer: Callable[[Path], Any] | None = None,
) -> None:
    """Analyse every track lacking current features, storing each as it completes."""
    from setlist.library.decode import analyze_file
    from setlist.library.index import uri_to_path

    progress = progress or NoProgress()
    run = analyzer or analyze_file
    pending = index.pending_analysis(FEATURES_VERSION)
    declared = {track_id: duration for track_id, _, duration in pending}
    progress.start("analysing audio", len(pending))
    try:
        items = [(i, uri_to_path(u)) for i, u, _ in pending]
        for (track_id, uri), outcome in _map(run, items, jobs):
            path = display(uri_to_path(uri))
            if not isinstance(outcome, BaseException):
                shortfall = truncation(declared[track_id], outcome.duration)
                if shortfall:
                    outcome = AnalysisError(shortfall)
            if isinstance(outcome, BaseException):
                reason = outcome.message if isinstance(outcome, AnalysisError) else _reason(outcome)
                reason = reason.removeprefix(f"{path}: ")
                index.store_analysis_error(track_id, reason)
                report.analysis_failed.append(ScanProblem(path, reason))
            else:
                index.store_features(track_id, outcome)
                report.analysed += 1
            progress.advance()
    finally:
        progress.finish()


def truncation(declared: float, decoded: float) -> str:
    """Why a file whose audio stops well short of its header's length is unusable, or "".

    Such a file (a cut-off download or copy) would end abruptly mid-session. VBR files
    without a length header make mutagen estimate, so small shortfalls are tolerated.
    """
    if declared > 0 and decoded < declared * 0.9 and declared - decoded > 2.0:
        return (
            f"truncated: audio stops at {decoded:.1f} s of the {declared:.1f} s its header declares"
        )
    return ""


def _call(run: Callable[[Path], Any], path: Path) -> Any:
    try:
        return run(path)
    except AnalysisError as exc:
        return exc


def _map(
    run: Callable[[Path], Any], items: list[tuple[int, Path]], jobs: int
) -> Iterable[tuple[tuple[int, str], Any]]:
    """(id, uri), result-or-AnalysisError pairs as they complete."""
    if jobs <= 1 or len(items) < 2:
        for track_id, path in items:
            yield (track_id, path_to_uri(path)), _call(run, path)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_call, run, p): (i, path_to_uri(p)) for i, p in items}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield futures[fut], fut.result()
