"""The library index: one SQLite file holding tracks, analysed features and annotations.

Why SQLite: embedded, transactional and crash-safe (WAL), readable by other tools. The
schema is versioned with `PRAGMA user_version` and upgraded by ordered migrations.
Scans commit in batches so an interrupted scan keeps what it finished; a file that
disappears is marked `missing` (never deleted with its annotations) and a file that
reappears elsewhere with the same content fingerprint keeps its row, so annotations
follow a moved file.

Local tracks are identified by a `file://` URI built from the path's bytes, so any file
name (even one that is not valid UTF-8) round-trips exactly.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from setlist.errors import LibraryError
from setlist.library.query import Term
from setlist.models import (
    Annotation,
    Candidates,
    Edges,
    Features,
    Track,
    candidates_from_tracks,
    with_cue_points,
)
from setlist.sources.spotify_translate import flat_features

ENV_DB = "SETLIST_DB"

#: Ordered migrations; the index's `user_version` is how many have run.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tracks (
        id              INTEGER PRIMARY KEY,
        source          TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'spotify')),
        uri             TEXT NOT NULL UNIQUE,
        display_path    TEXT NOT NULL DEFAULT '',
        size            INTEGER,
        mtime_ns        INTEGER,
        fingerprint     TEXT,
        format          TEXT NOT NULL DEFAULT '',
        title           TEXT NOT NULL DEFAULT '',
        artist          TEXT NOT NULL DEFAULT '',
        album           TEXT NOT NULL DEFAULT '',
        album_artist    TEXT NOT NULL DEFAULT '',
        genre           TEXT NOT NULL DEFAULT '',
        track_number    INTEGER,
        disc_number     INTEGER,
        year            INTEGER,
        isrc            TEXT NOT NULL DEFAULT '',
        bpm             REAL,
        language        TEXT NOT NULL DEFAULT '',
        comment         TEXT NOT NULL DEFAULT '',
        mb_track_id     TEXT NOT NULL DEFAULT '',
        mb_album_id     TEXT NOT NULL DEFAULT '',
        mb_artist_id    TEXT NOT NULL DEFAULT '',
        rg_track_gain   REAL,
        rg_track_peak   REAL,
        rg_album_gain   REAL,
        duration        REAL NOT NULL DEFAULT 0,
        sample_rate     INTEGER,
        channels        INTEGER,
        bitrate         INTEGER,
        status          TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'missing', 'failed')),
        error           TEXT NOT NULL DEFAULT '',
        analysis_error  TEXT NOT NULL DEFAULT '',
        added_at        REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX tracks_fingerprint ON tracks (fingerprint);
    CREATE INDEX tracks_status ON tracks (status);
    CREATE TABLE features (
        track_id          INTEGER PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
        version           INTEGER NOT NULL,
        duration          REAL NOT NULL,
        loudness_lufs     REAL NOT NULL,
        loudness_range_lu REAL NOT NULL,
        peak_dbfs         REAL NOT NULL,
        intensity         REAL NOT NULL,
        envelope          BLOB NOT NULL,
        envelope_step     REAL NOT NULL,
        tempo_bpm         REAL,
        tempo_confidence  REAL NOT NULL,
        lead_silence      REAL NOT NULL,
        trail_silence     REAL NOT NULL,
        brightness_hz     REAL NOT NULL,
        onset_rate        REAL NOT NULL,
        voice             REAL NOT NULL,
        analyzed_at       REAL NOT NULL
    );
    CREATE TABLE annotations (
        track_id    INTEGER PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
        intensity   REAL,
        vocals      TEXT,
        tempo_bpm   REAL,
        never       INTEGER NOT NULL DEFAULT 0,
        tags        TEXT NOT NULL DEFAULT '[]',
        note        TEXT NOT NULL DEFAULT '',
        updated_at  REAL NOT NULL
    );
    """,
    # 2: Spotify tracks. Where each estimated feature came from (a Spotify track has no
    # audio to analyse), what Spotify says of a track (popularity, explicit, playable in
    # the user's market), artists' genres (fetched once) and imported collections.
    """
    ALTER TABLE features ADD COLUMN intensity_source TEXT NOT NULL DEFAULT 'analysis';
    ALTER TABLE features ADD COLUMN tempo_source TEXT NOT NULL DEFAULT 'analysis';
    ALTER TABLE features ADD COLUMN vocals_source TEXT NOT NULL DEFAULT 'analysis';
    CREATE INDEX tracks_isrc ON tracks (isrc);
    CREATE TABLE spotify_tracks (
        track_id    INTEGER PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
        spotify_id  TEXT NOT NULL,
        popularity  INTEGER,
        explicit    INTEGER NOT NULL DEFAULT 0,
        playable    INTEGER,
        album_uri   TEXT NOT NULL DEFAULT '',
        artist_ids  TEXT NOT NULL DEFAULT '[]',
        digest      TEXT NOT NULL DEFAULT '',
        imported_at REAL NOT NULL
    );
    CREATE TABLE spotify_artists (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        genres      TEXT NOT NULL DEFAULT '[]',
        fetched_at  REAL NOT NULL
    );
    CREATE TABLE spotify_collections (
        ref         TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        snapshot_id TEXT NOT NULL DEFAULT '',
        tracks      INTEGER NOT NULL DEFAULT 0,
        imported_at REAL NOT NULL
    );
    """,
    # 3: edges (cue points, intro/outro, edge levels, short-term curve, gaps) and the
    # therapist's cue-point overrides. NULL edges: analysed before version 3.
    """
    ALTER TABLE features ADD COLUMN cue_in REAL;
    ALTER TABLE features ADD COLUMN cue_out REAL;
    ALTER TABLE features ADD COLUMN intro REAL;
    ALTER TABLE features ADD COLUMN outro REAL;
    ALTER TABLE features ADD COLUMN head_lufs REAL;
    ALTER TABLE features ADD COLUMN tail_lufs REAL;
    ALTER TABLE features ADD COLUMN head_intensity REAL;
    ALTER TABLE features ADD COLUMN tail_intensity REAL;
    ALTER TABLE features ADD COLUMN hidden REAL;
    ALTER TABLE features ADD COLUMN curve_step REAL;
    ALTER TABLE features ADD COLUMN curve BLOB;
    ALTER TABLE features ADD COLUMN gaps BLOB;
    ALTER TABLE annotations ADD COLUMN cue_in REAL;
    ALTER TABLE annotations ADD COLUMN cue_out REAL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

#: Edge measures kept as plain REAL columns of `features` (see `Edges`).
EDGE_COLUMNS = (
    "cue_in",
    "cue_out",
    "intro",
    "outro",
    "head_lufs",
    "tail_lufs",
    "head_intensity",
    "tail_intensity",
    "hidden",
    "curve_step",
)
#: The short-term curve is stored as unsigned bytes: (LUFS + 80) * 2, i.e. 0.5 LU steps
#: from -80 to +47.5 LUFS (analysis rounds to the same grid): ~600 bytes for 10 minutes.
_CURVE_FLOOR = -80.0


def _edge_row(e: Edges | None) -> list[Any]:
    """Values for EDGE_COLUMNS, then the curve and gaps blobs (all NULL without edges)."""
    if e is None:
        return [None] * (len(EDGE_COLUMNS) + 2)
    curve = np.clip(np.round((np.asarray(e.curve, dtype=np.float64) - _CURVE_FLOOR) * 2), 0, 255)
    gaps = np.asarray(e.gaps, dtype="<f4").reshape(-1).tobytes()
    return [getattr(e, c) for c in EDGE_COLUMNS] + [curve.astype(np.uint8).tobytes(), gaps]


def _edges_from_row(r: sqlite3.Row) -> Edges | None:
    if r["cue_in"] is None or r["cue_out"] is None:
        return None
    curve = np.frombuffer(r["curve"] or b"", dtype=np.uint8).astype(np.float64) / 2 + _CURVE_FLOOR
    gaps = np.frombuffer(r["gaps"] or b"", dtype="<f4").astype(np.float64).reshape(-1, 2)
    try:
        return Edges(
            **{c: r[c] for c in EDGE_COLUMNS if r[c] is not None},
            curve=tuple(curve.tolist()),
            gaps=tuple((round(a, 2), round(b, 2)) for a, b in gaps.tolist()),
        )
    except ValueError:  # a damaged row: plan without edges rather than fail
        return None


#: Columns a scan writes for a local file (beyond identity and bookkeeping).
TAG_COLUMNS = (
    "format",
    "title",
    "artist",
    "album",
    "album_artist",
    "genre",
    "track_number",
    "disc_number",
    "year",
    "isrc",
    "bpm",
    "language",
    "comment",
    "mb_track_id",
    "mb_album_id",
    "mb_artist_id",
    "rg_track_gain",
    "rg_track_peak",
    "rg_album_gain",
    "duration",
    "sample_rate",
    "channels",
    "bitrate",
)


def default_db_path() -> Path:
    """`SETLIST_DB` if set, else `library.sqlite` in the platform's user data folder."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("setlist")) / "library.sqlite"


def path_to_uri(path: Path | str) -> str:
    """Lossless `file://` URI from a path's bytes (works for non-UTF-8 names)."""
    # abspath, not resolve(): a symlinked file keeps the name the user gave it.
    raw = os.fsencode(os.path.abspath(path))  # noqa: PTH100
    return "file://" + urllib.parse.quote(raw, safe="/")


def uri_to_path(uri: str) -> Path:
    """The path a local track's URI names (inverse of `path_to_uri`)."""
    if not uri.startswith("file://"):
        raise LibraryError(f"{uri}: not a local file")
    return Path(os.fsdecode(urllib.parse.unquote_to_bytes(uri[len("file://") :])))


def display(path: Path | str) -> str:
    """A path for messages and the index: undecodable bytes shown as U+FFFD."""
    return os.fsencode(path).decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class KnownFile:
    """What the index remembers of a file, enough to skip it when unchanged."""

    id: int
    size: int | None
    mtime_ns: int | None
    status: str


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """One file's tags as a scan read them, ready to store."""

    uri: str
    display_path: str
    size: int
    mtime_ns: int
    fingerprint: str
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpotifyInfo:
    """What Spotify says of one of its tracks: `playable` is None when it did not say."""

    spotify_id: str
    popularity: int | None
    explicit: bool
    playable: bool | None


@dataclass(frozen=True, slots=True)
class SpotifyRow:
    """One Spotify track to store: its model, what Spotify says of it, its estimated
    features (None: nothing known yet) with their provenance, and a digest of the API data
    so a re-import can tell an unchanged track."""

    track: Track
    info: SpotifyInfo
    album_uri: str
    artist_ids: tuple[str, ...]
    digest: str
    features: Features | None = None
    intensity_source: str = "none"
    tempo_source: str = "none"
    vocals_source: str = "none"


@dataclass(frozen=True, slots=True)
class Collection:
    """An imported playlist, album or the liked songs, and the snapshot last imported."""

    ref: str
    name: str
    snapshot_id: str = ""
    tracks: int = 0


@dataclass(frozen=True, slots=True)
class StoreCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A track with everything the index knows about it, for browsing and reports."""

    track: Track
    status: str
    format: str
    display_path: str
    size: int | None
    error: str
    analysis_error: str
    annotation: Annotation | None
    analyzed: bool
    intensity_source: str
    vocals_source: str
    loudness_lufs: float | None
    replaygain_db: float | None
    tempo_source: str = "none"
    spotify: SpotifyInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        t = self.track
        f = t.features
        return {
            "id": t.id,
            "uri": t.uri,
            "path": self.display_path,
            "status": self.status,
            "format": self.format,
            "title": t.title,
            "artist": t.artist,
            "album": t.album,
            "album_artist": t.album_artist,
            "genre": t.genre,
            "track_number": t.track_number,
            "disc_number": t.disc_number,
            "year": t.year,
            "isrc": t.isrc,
            "language": t.language,
            "duration": t.duration,
            "tags": list(t.tags),
            "vocals": t.vocals,
            "vocals_source": self.vocals_source,
            "intensity": None if f is None else round(f.intensity, 4),
            "intensity_source": self.intensity_source,
            "tempo_bpm": None if f is None or f.tempo_bpm is None else round(f.tempo_bpm, 2),
            "tempo_source": self.tempo_source,
            "source": t.source,
            "spotify": None if self.spotify is None else asdict(self.spotify),
            "loudness_lufs": self.loudness_lufs,
            "replaygain_db": self.replaygain_db,
            "features": None if f is None else _features_dict(f),
            "annotation": None if self.annotation is None else _annotation_dict(self.annotation),
            "error": self.error,
            "analysis_error": self.analysis_error,
        }


def _features_dict(f: Features) -> dict[str, Any]:
    return {
        "version": f.version,
        "duration": round(f.duration, 3),
        "loudness_lufs": round(f.loudness_lufs, 2),
        "loudness_range_lu": round(f.loudness_range_lu, 2),
        "peak_dbfs": round(f.peak_dbfs, 2),
        "intensity": round(f.intensity, 4),
        "envelope_step": f.envelope_step,
        "envelope": [round(v, 3) for v in f.envelope],
        "tempo_bpm": None if f.tempo_bpm is None else round(f.tempo_bpm, 2),
        "tempo_confidence": round(f.tempo_confidence, 3),
        "lead_silence": round(f.lead_silence, 3),
        "trail_silence": round(f.trail_silence, 3),
        "brightness_hz": round(f.brightness_hz, 1),
        "onset_rate": round(f.onset_rate, 3),
        "voice": round(f.voice, 3),
        "edges": None if f.edges is None else _edges_dict(f.edges),
    }


def _edges_dict(e: Edges) -> dict[str, Any]:
    out: dict[str, Any] = {c: round(getattr(e, c), 3) for c in EDGE_COLUMNS}
    out["gaps"] = [list(g) for g in e.gaps]
    out["curve"] = list(e.curve)
    return out


def _annotation_dict(a: Annotation) -> dict[str, Any]:
    return {
        "intensity": a.intensity,
        "vocals": a.vocals,
        "tempo_bpm": a.tempo_bpm,
        "never": a.never,
        "tags": list(a.tags),
        "note": a.note,
        "cue_in": a.cue_in,
        "cue_out": a.cue_out,
    }


@dataclass(frozen=True, slots=True)
class CandidateFilter:
    """What a phase or a session rules out before the planner scores anything."""

    min_duration: float = 0.0
    max_duration: float = math.inf
    vocals: tuple[str, ...] | None = None
    require_tags: tuple[str, ...] = ()
    avoid_tags: tuple[str, ...] = ()
    exclude_ids: tuple[int, ...] = ()
    exclude_artists: tuple[str, ...] = ()
    source: str | None = None


class Index:
    """An open library index; use as a context manager so the connection closes."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    # -- lifecycle ---------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | None = None) -> Index:
        """Open (creating and migrating as needed) the index at `path` or the default."""
        path = path or default_db_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(f"{display(path)}: cannot open the library index ({exc})") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            index = cls(path, conn)
            index._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LibraryError(
                f"{display(path)}: not a setlist library index ({exc})",
                hint="point --db (or SETLIST_DB) at another file, or move this one away",
            ) from None
        return index

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"{display(self.path)}: made by a newer setlist (schema {version}, "
                f"this one knows {SCHEMA_VERSION})",
                hint="upgrade setlist",
            )
        for number in range(version, SCHEMA_VERSION):
            # One script per step, its version bump inside the same transaction: a crash
            # mid-migration leaves the previous schema intact (executescript would commit
            # any transaction opened around it, so the BEGIN lives in the script).
            try:
                self.conn.executescript(
                    f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; "
                    f"PRAGMA user_version = {number + 1}; COMMIT;"
                )
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work: all of it lands, or none of it."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- scanning ----------------------------------------------------------------
    def known_files(self) -> dict[str, KnownFile]:
        """Every local file the index knows, by URI (one query, for fast rescans)."""
        rows = self.conn.execute(
            "SELECT id, uri, size, mtime_ns, status FROM tracks WHERE source = 'local'"
        )
        return {r["uri"]: KnownFile(r["id"], r["size"], r["mtime_ns"], r["status"]) for r in rows}

    def store_scanned(self, files: Sequence[ScannedFile], now: float | None = None) -> int:
        """Insert or update scanned files in one transaction; returns how many moved.

        A new URI whose fingerprint matches a track marked missing is that track,
        moved: its row (and so its annotations and features) is re-pointed.

        One count per batch: with no track marked missing (the usual case) nothing can
        have moved, so the per-file lookups are skipped and every row goes in with one
        `executemany`. Otherwise files are taken one at a time, as each lookup must see
        the rows stored before it (a re-pointed twin stops being missing once stored).
        """
        now = time.time() if now is None else now
        moved = 0
        cols = ", ".join(TAG_COLUMNS)
        marks = ", ".join("?" for _ in TAG_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in TAG_COLUMNS)
        upsert = (
            f"INSERT INTO tracks (uri, display_path, size, mtime_ns, fingerprint, "
            f"status, error, added_at, updated_at, {cols}) "
            f"VALUES (?, ?, ?, ?, ?, 'ok', '', ?, ?, {marks}) "
            f"ON CONFLICT (uri) DO UPDATE SET display_path = excluded.display_path, "
            f"size = excluded.size, mtime_ns = excluded.mtime_ns, "
            f"fingerprint = excluded.fingerprint, status = 'ok', error = '', "
            f"updated_at = excluded.updated_at, {updates}"
        )

        def row(f: ScannedFile) -> list[object]:
            values = [f.values.get(c) for c in TAG_COLUMNS]
            return [f.uri, f.display_path, f.size, f.mtime_ns, f.fingerprint, now, now, *values]

        with self.transaction():
            (missing,) = self.conn.execute(
                "SELECT count(*) FROM tracks WHERE status = 'missing' AND source = 'local' "
                "AND fingerprint IS NOT NULL AND fingerprint != ''"
            ).fetchone()
            if not missing:
                self.conn.executemany(upsert, [row(f) for f in files])
                return 0
            for f in files:
                known = self.conn.execute("SELECT id FROM tracks WHERE uri = ?", (f.uri,))
                if known.fetchone() is None and f.fingerprint:
                    twin = self.conn.execute(
                        "SELECT id FROM tracks WHERE fingerprint = ? AND status = 'missing' "
                        "AND source = 'local' ORDER BY id LIMIT 1",
                        (f.fingerprint,),
                    ).fetchone()
                    if twin is not None:
                        self.conn.execute(
                            "UPDATE tracks SET uri = ? WHERE id = ?", (f.uri, twin["id"])
                        )
                        moved += 1
                self.conn.execute(upsert, row(f))
        return moved

    def store_failed(
        self, failures: Sequence[tuple[str, str, str]], now: float | None = None
    ) -> None:
        """Record files that could not be read: (uri, display path, reason)."""
        now = time.time() if now is None else now
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO tracks (uri, display_path, status, error, added_at, updated_at) "
                "VALUES (?, ?, 'failed', ?, ?, ?) ON CONFLICT (uri) DO UPDATE SET "
                "status = 'failed', error = excluded.error, updated_at = excluded.updated_at, "
                "size = NULL, mtime_ns = NULL",
                [(uri, shown, reason, now, now) for uri, shown, reason in failures],
            )

    def mark_missing(self, ids: Iterable[int], now: float | None = None) -> int:
        """Mark tracks whose files are gone; their rows and annotations stay."""
        now = time.time() if now is None else now
        ids = list(ids)
        with self.transaction():
            self.conn.executemany(
                "UPDATE tracks SET status = 'missing', updated_at = ? WHERE id = ?",
                [(now, i) for i in ids],
            )
        return len(ids)

    def forget_features(self, uris: Iterable[str]) -> None:
        """Drop analysis for files whose content changed, so they are analysed again."""
        with self.transaction():
            self.conn.executemany(
                "DELETE FROM features WHERE track_id = (SELECT id FROM tracks WHERE uri = ?)",
                [(u,) for u in uris],
            )

    # -- analysis ----------------------------------------------------------------
    def pending_analysis(self, version: int) -> list[tuple[int, str, float]]:
        """(id, uri, tagged duration) of readable local tracks lacking current features."""
        rows = self.conn.execute(
            "SELECT t.id, t.uri, t.duration FROM tracks t "
            "LEFT JOIN features f ON f.track_id = t.id "
            "WHERE t.source = 'local' AND t.status = 'ok' AND t.analysis_error = '' "
            "AND (f.track_id IS NULL OR f.version < ?) ORDER BY t.id",
            (version,),
        )
        return [(r["id"], r["uri"], r["duration"] or 0.0) for r in rows]

    def store_features(self, track_id: int, features: Features, now: float | None = None) -> None:
        now = time.time() if now is None else now
        env = np.asarray(features.envelope, dtype="<f4").tobytes()
        edge_cols = ", ".join((*EDGE_COLUMNS, "curve", "gaps"))
        marks = ", ".join("?" * (17 + len(EDGE_COLUMNS) + 2))
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO features (track_id, version, duration, loudness_lufs, "
                "loudness_range_lu, peak_dbfs, intensity, envelope, envelope_step, tempo_bpm, "
                "tempo_confidence, lead_silence, trail_silence, brightness_hz, onset_rate, "
                f"voice, analyzed_at, {edge_cols}) VALUES ({marks})",
                (
                    track_id,
                    features.version,
                    features.duration,
                    features.loudness_lufs,
                    features.loudness_range_lu,
                    features.peak_dbfs,
                    features.intensity,
                    env,
                    features.envelope_step,
                    features.tempo_bpm,
                    features.tempo_confidence,
                    features.lead_silence,
                    features.trail_silence,
                    features.brightness_hz,
                    features.onset_rate,
                    features.voice,
                    now,
                    *_edge_row(features.edges),
                ),
            )
            self.conn.execute("UPDATE tracks SET analysis_error = '' WHERE id = ?", (track_id,))

    def store_analysis_error(self, track_id: int, reason: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE tracks SET analysis_error = ? WHERE id = ?", (reason or "failed", track_id)
            )

    def retry_failed_analysis(self) -> None:
        """Clear recorded analysis failures so the next scan tries those files again."""
        with self.transaction():
            self.conn.execute("UPDATE tracks SET analysis_error = '' WHERE analysis_error != ''")

    # -- annotations -------------------------------------------------------------
    def annotation(self, track_id: int) -> Annotation | None:
        row = self.conn.execute(
            "SELECT * FROM annotations WHERE track_id = ?", (track_id,)
        ).fetchone()
        return None if row is None else _annotation(row)

    def annotate(self, track_ids: Sequence[int], change: dict[str, Any]) -> int:
        """Apply the given fields to each track's annotation (others keep their value).

        `change` keys are `Annotation` fields; `tags` adds tags, `untags` removes them.
        """
        now = time.time()
        with self.transaction():
            for track_id in track_ids:
                current = self.annotation(track_id) or Annotation()
                fields = {k: v for k, v in change.items() if k not in ("tags", "untags")}
                tags = list(current.tags)
                for tag in change.get("tags", ()):
                    if tag not in tags:
                        tags.append(tag)
                tags = [t for t in tags if t not in change.get("untags", ())]
                updated = replace(current, tags=tuple(tags), **fields)
                self._write_annotation(track_id, updated, now)
        return len(track_ids)

    def _write_annotation(self, track_id: int, a: Annotation, now: float) -> None:
        if a.empty:
            self.conn.execute("DELETE FROM annotations WHERE track_id = ?", (track_id,))
            return
        self.conn.execute(
            "INSERT OR REPLACE INTO annotations (track_id, intensity, vocals, tempo_bpm, never, "
            "tags, note, updated_at, cue_in, cue_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                track_id,
                a.intensity,
                a.vocals,
                a.tempo_bpm,
                int(a.never),
                json.dumps(list(a.tags)),
                a.note,
                now,
                a.cue_in,
                a.cue_out,
            ),
        )

    def annotated(self) -> list[tuple[Entry, Annotation]]:
        """Every annotated track with its annotation, for export."""
        ids = [
            r[0] for r in self.conn.execute("SELECT track_id FROM annotations ORDER BY track_id")
        ]
        out = []
        for entry in self.entries_by_id(ids):
            if entry.annotation is not None:
                out.append((entry, entry.annotation))
        return out

    def replace_annotations(self, items: Sequence[tuple[int, Annotation]]) -> None:
        """Set these tracks' annotations exactly (an import), in one transaction."""
        now = time.time()
        with self.transaction():
            for track_id, a in items:
                self._write_annotation(track_id, a, now)

    def find_for_annotation(
        self,
        *,
        uri: str = "",
        isrc: str = "",
        artist: str = "",
        title: str = "",
        fingerprint: str = "",
    ) -> int | None:
        """The track an exported annotation refers to: by URI, fingerprint, ISRC, then name."""
        probes = [
            ("uri = ?", uri),
            ("fingerprint = ?", fingerprint),
            ("isrc = ?", isrc),
        ]
        for where, value in probes:
            if value:
                row = self.conn.execute(
                    f"SELECT id FROM tracks WHERE {where} ORDER BY status = 'ok' DESC, id LIMIT 1",
                    (value,),
                ).fetchone()
                if row is not None:
                    return int(row[0])
        if artist and title:
            row = self.conn.execute(
                "SELECT id FROM tracks WHERE lower(artist) = lower(?) AND lower(title) = lower(?) "
                "ORDER BY status = 'ok' DESC, id LIMIT 1",
                (artist, title),
            ).fetchone()
            if row is not None:
                return int(row[0])
        return None

    def fingerprint_of(self, track_id: int) -> str:
        row = self.conn.execute(
            "SELECT fingerprint FROM tracks WHERE id = ?", (track_id,)
        ).fetchone()
        return (row[0] or "") if row else ""

    # -- spotify -------------------------------------------------------------------
    def spotify_digests(self) -> dict[str, str]:
        """The stored digest of every Spotify track, by URI (to skip unchanged ones)."""
        rows = self.conn.execute(
            "SELECT t.uri, s.digest FROM tracks t JOIN spotify_tracks s ON s.track_id = t.id"
        )
        return {r[0]: r[1] for r in rows}

    def spotify_isrcs(self, uris: Iterable[str]) -> dict[str, str]:
        """The ISRC already stored for these Spotify track URIs (where one is)."""
        wanted = sorted(set(uris))
        out: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(
                "SELECT t.uri, t.isrc FROM tracks t JOIN spotify_tracks s ON s.track_id = t.id "
                f"WHERE t.uri IN ({marks}) AND t.isrc != ''",
                chunk,
            )
            out.update((r[0], r[1]) for r in rows)
        return out

    def features_by_isrc(self, isrcs: Iterable[str]) -> dict[str, tuple[Features, str]]:
        """Analysed local copies of these recordings: ISRC -> (features, vocals source).

        Only features measured from audio count (not another estimate), so an estimate
        is never passed off as a measurement.
        """
        wanted = sorted({i for i in isrcs if i})
        out: dict[str, tuple[Features, str]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(
                _SELECT + f" WHERE t.source = 'local' AND t.status = 'ok' AND t.isrc IN "
                f"({marks}) AND f.track_id IS NOT NULL AND f.intensity_source = 'analysis' "
                "ORDER BY t.id",
                chunk,
            )
            for r in rows:
                out.setdefault(r["isrc"], (_features(r), "analysis"))
        return out

    def artist_genres(self, artist_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Genres already fetched for these Spotify artists (absent: not fetched yet)."""
        ids = sorted({i for i in artist_ids if i})
        out: dict[str, tuple[str, ...]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for r in self.conn.execute(
                f"SELECT id, genres FROM spotify_artists WHERE id IN ({marks})", chunk
            ):
                out[r[0]] = tuple(json.loads(r[1] or "[]"))
        return out

    def collection(self, ref: str) -> Collection | None:
        r = self.conn.execute(
            "SELECT ref, name, snapshot_id, tracks FROM spotify_collections WHERE ref = ?", (ref,)
        ).fetchone()
        return None if r is None else Collection(r[0], r[1], r[2], r[3])

    def spotify_uri_for(self, isrc: str) -> str:
        """An imported, playable Spotify track with this ISRC, or ''."""
        if not isrc:
            return ""
        row = self.conn.execute(
            "SELECT t.uri FROM tracks t JOIN spotify_tracks s ON s.track_id = t.id "
            "WHERE t.isrc = ? AND coalesce(s.playable, 1) = 1 ORDER BY t.id LIMIT 1",
            (isrc.upper(),),
        ).fetchone()
        return row[0] if row else ""

    def store_spotify(
        self,
        rows: Sequence[SpotifyRow],
        *,
        artists: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
        collections: Sequence[Collection] = (),
        now: float | None = None,
    ) -> StoreCounts:
        """Insert or update Spotify tracks, artists' genres and collections atomically.

        One transaction for the whole import, so a failure part-way leaves the index as
        it was. Features measured from audio are never replaced by an estimate; a
        therapist's annotations are never touched.
        """
        now = time.time() if now is None else now
        new = updated = unchanged = 0
        with self.transaction():
            for ident, (name, genres) in (artists or {}).items():
                self.conn.execute(
                    "INSERT OR REPLACE INTO spotify_artists (id, name, genres, fetched_at) "
                    "VALUES (?, ?, ?, ?)",
                    (ident, name, json.dumps(list(genres)), now),
                )
            for row in rows:
                t = row.track
                old = self.conn.execute(
                    "SELECT t.id, s.digest, t.genre FROM tracks t "
                    "LEFT JOIN spotify_tracks s ON s.track_id = t.id WHERE t.uri = ?",
                    (t.uri,),
                ).fetchone()
                if old is None:
                    new += 1
                elif old["digest"] == row.digest and old["genre"] == t.genre:
                    unchanged += 1
                else:
                    updated += 1
                track_id = self.conn.execute(
                    "INSERT INTO tracks (source, uri, display_path, format, title, artist, album, "
                    "album_artist, genre, track_number, disc_number, year, isrc, duration, "
                    "status, added_at, updated_at) "
                    "VALUES ('spotify', ?, ?, 'spotify', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', ?, ?) "
                    "ON CONFLICT (uri) DO UPDATE SET title = excluded.title, "
                    "artist = excluded.artist, album = excluded.album, "
                    "album_artist = excluded.album_artist, genre = excluded.genre, "
                    "track_number = excluded.track_number, disc_number = excluded.disc_number, "
                    "year = excluded.year, isrc = excluded.isrc, duration = excluded.duration, "
                    "status = 'ok', updated_at = excluded.updated_at RETURNING id",
                    (
                        t.uri,
                        t.uri,
                        t.title,
                        t.artist,
                        t.album,
                        t.album_artist,
                        t.genre,
                        t.track_number,
                        t.disc_number,
                        t.year,
                        t.isrc,
                        t.duration,
                        now,
                        now,
                    ),
                ).fetchone()[0]
                info = row.info
                self.conn.execute(
                    "INSERT OR REPLACE INTO spotify_tracks (track_id, spotify_id, popularity, "
                    "explicit, playable, album_uri, artist_ids, digest, imported_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        track_id,
                        info.spotify_id,
                        info.popularity,
                        int(info.explicit),
                        None if info.playable is None else int(info.playable),
                        row.album_uri,
                        json.dumps(list(row.artist_ids)),
                        row.digest,
                        now,
                    ),
                )
                self._store_estimate(track_id, row, now)
            for c in collections:
                self.conn.execute(
                    "INSERT OR REPLACE INTO spotify_collections (ref, name, snapshot_id, tracks, "
                    "imported_at) VALUES (?, ?, ?, ?, ?)",
                    (c.ref, c.name, c.snapshot_id, c.tracks, now),
                )
        return StoreCounts(new, updated, unchanged)

    def _store_estimate(self, track_id: int, row: SpotifyRow, now: float) -> None:
        current = self.conn.execute(
            "SELECT intensity_source FROM features WHERE track_id = ?", (track_id,)
        ).fetchone()
        if current is not None and current[0] == "analysis":
            return
        if row.features is None:
            self.conn.execute("DELETE FROM features WHERE track_id = ?", (track_id,))
            return
        f = row.features
        self.conn.execute(
            "INSERT OR REPLACE INTO features (track_id, version, duration, loudness_lufs, "
            "loudness_range_lu, peak_dbfs, intensity, envelope, envelope_step, tempo_bpm, "
            "tempo_confidence, lead_silence, trail_silence, brightness_hz, onset_rate, voice, "
            "analyzed_at, intensity_source, tempo_source, vocals_source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                track_id,
                f.version,
                f.duration,
                f.loudness_lufs,
                f.loudness_range_lu,
                f.peak_dbfs,
                f.intensity,
                np.asarray(f.envelope, dtype="<f4").tobytes(),
                f.envelope_step,
                f.tempo_bpm,
                f.tempo_confidence,
                f.lead_silence,
                f.trail_silence,
                f.brightness_hz,
                f.onset_rate,
                f.voice,
                now,
                row.intensity_source,
                row.tempo_source,
                row.vocals_source,
            ),
        )

    def intensity_sources(self, ids: Sequence[int]) -> dict[int, str]:
        """Where each track's intensity comes from (for a build's summary): analysis,
        spotify, local-copy, heuristic, annotation or none."""
        out: dict[int, str] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(
                "SELECT t.id, CASE WHEN a.intensity IS NOT NULL THEN 'annotation' "
                "ELSE coalesce(f.intensity_source, 'none') END FROM tracks t "
                "LEFT JOIN features f ON f.track_id = t.id "
                f"LEFT JOIN annotations a ON a.track_id = t.id WHERE t.id IN ({marks})",
                chunk,
            )
            out.update({int(r[0]): str(r[1]) for r in rows})
        return out

    # -- browsing ----------------------------------------------------------------
    def search(self, terms: Sequence[Term], *, include_missing: bool = True) -> list[Entry]:
        """Tracks matching every term, ordered by artist, album, disc, track, title."""
        where, args = _where(terms)
        if not include_missing:
            where.append("t.status = 'ok'")
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + _ORDER
        return [self._entry(r) for r in self.conn.execute(sql, args)]

    def entries_by_id(self, ids: Sequence[int]) -> list[Entry]:
        if not ids:
            return []
        out: list[Entry] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(_SELECT + f" WHERE t.id IN ({marks})" + _ORDER, chunk)
            out.extend(self._entry(r) for r in rows)
        return out

    def stats(self) -> dict[str, Any]:
        """Counts by format and status, hours of music, analysis coverage, intensity histogram."""
        c = self.conn
        by_status = dict(
            c.execute("SELECT status, count(*) FROM tracks GROUP BY status").fetchall()
        )
        by_format = dict(
            c.execute(
                "SELECT format, count(*) FROM tracks WHERE status = 'ok' GROUP BY format "
                "ORDER BY count(*) DESC"
            ).fetchall()
        )
        seconds = c.execute("SELECT coalesce(sum(duration), 0) FROM tracks WHERE status = 'ok'")
        analysed = c.execute(
            "SELECT count(*) FROM features f JOIN tracks t ON t.id = f.track_id "
            "WHERE t.status = 'ok' AND f.intensity_source = 'analysis'"
        ).fetchone()[0]
        analysis_failed = c.execute(
            "SELECT count(*) FROM tracks WHERE analysis_error != '' AND status = 'ok'"
        ).fetchone()[0]
        values = [
            r[0]
            for r in c.execute(
                "SELECT coalesce(a.intensity, f.intensity) FROM tracks t "
                "LEFT JOIN features f ON f.track_id = t.id "
                "LEFT JOIN annotations a ON a.track_id = t.id "
                "WHERE t.status = 'ok' AND coalesce(a.intensity, f.intensity) IS NOT NULL"
            )
        ]
        hist, _ = np.histogram(values, bins=10, range=(0.0, 1.0))
        annotated = c.execute("SELECT count(*) FROM annotations").fetchone()[0]
        return {
            "db": display(self.path),
            "tracks": sum(by_status.values()),
            "ok": by_status.get("ok", 0),
            "missing": by_status.get("missing", 0),
            "failed": by_status.get("failed", 0),
            "formats": by_format,
            "hours": round(seconds.fetchone()[0] / 3600.0, 2),
            "analysed": analysed,
            "analysis_failed": analysis_failed,
            "annotated": annotated,
            "intensity_histogram": [int(h) for h in hist],
        }

    def failures(self) -> list[tuple[str, str]]:
        """(path, reason) of every file that failed to read or analyse."""
        rows = self.conn.execute(
            "SELECT display_path, error, analysis_error FROM tracks "
            "WHERE status = 'failed' OR analysis_error != '' ORDER BY display_path"
        )
        return [(r[0], r[1] or r[2]) for r in rows]

    # -- the planner's view --------------------------------------------------------
    def candidates(self, flt: CandidateFilter | None = None) -> Candidates:
        """Playable, analysed tracks passing `flt`, as arrays for vectorised planning.

        Never-play annotations are always excluded; annotations override analysis. A
        Spotify track counts when it has estimated features or an annotated intensity,
        and is left out when Spotify says it cannot be played in the user's market.
        """
        flt = flt or CandidateFilter()
        sql = (
            _SELECT + " WHERE t.status = 'ok' AND coalesce(a.never, 0) = 0 "
            "AND (f.track_id IS NOT NULL OR (t.source = 'spotify' AND a.intensity IS NOT NULL)) "
            "AND coalesce(s.playable, 1) = 1"
        )
        args: list[Any] = []
        if flt.source:
            sql += " AND t.source = ?"
            args.append(flt.source)
        entries = [self._entry(r) for r in self.conn.execute(sql + " ORDER BY t.id", args)]
        keep = []
        excluded_ids = set(flt.exclude_ids)
        excluded_artists = {a.casefold() for a in flt.exclude_artists}
        for e in entries:
            t = e.track
            tags = set(t.tags)
            if t.id in excluded_ids or t.artist.casefold() in excluded_artists:
                continue
            if not flt.min_duration <= t.duration <= flt.max_duration:
                continue
            if flt.vocals is not None and t.vocals not in flt.vocals:
                continue
            if flt.avoid_tags and tags & set(flt.avoid_tags):
                continue
            if flt.require_tags and not set(flt.require_tags) <= tags:
                continue
            keep.append(t)
        return candidates_from_tracks(keep)

    # -- rows to models ------------------------------------------------------------
    def _entry(self, r: sqlite3.Row) -> Entry:
        annotation = _annotation(r) if r["a_track_id"] is not None else None
        features = _features(r) if r["f_version"] is not None else None
        intensity_source = tempo_source = vocals_source = "none"
        if features is not None:
            intensity_source = r["f_intensity_source"] or "analysis"
            tempo_source = (r["f_tempo_source"] or "analysis") if features.tempo_bpm else "none"
            vocals_source = r["f_vocals_source"] or "analysis"
        if annotation is not None and annotation.intensity is not None:
            intensity_source = "annotation"
            if features is not None:
                features = _shift_intensity(features, annotation.intensity)
            elif r["source"] == "spotify":
                # A streamed track has no audio to analyse: the therapist's value is all
                # there is, and enough to plan with.
                features = flat_features(float(r["duration"] or 0.0), annotation.intensity)
        if annotation is not None and annotation.tempo_bpm is not None and features is not None:
            features = replace(features, tempo_bpm=annotation.tempo_bpm, tempo_confidence=1.0)
            tempo_source = "annotation"
        if (
            annotation is not None
            and features is not None
            and (annotation.cue_in is not None or annotation.cue_out is not None)
        ):
            features = with_cue_points(features, annotation.cue_in, annotation.cue_out)
        vocals = "unknown"
        if features is not None and vocals_source != "none":
            # Voice heard but not judged: treat as words until a therapist says otherwise.
            vocals = "lyrics" if features.voice >= 0.5 else "none"
        if annotation is not None and annotation.vocals is not None:
            vocals, vocals_source = annotation.vocals, "annotation"
        tags = _genre_tags(r["genre"])
        if annotation is not None:
            tags = tags + tuple(t for t in annotation.tags if t not in tags)
        track = Track(
            id=r["id"],
            uri=r["uri"],
            title=r["title"] or r["display_path"].rsplit("/", 1)[-1],
            duration=float(r["duration"] or (features.duration if features else 0.0)),
            artist=r["artist"],
            album=r["album"],
            album_artist=r["album_artist"],
            genre=r["genre"],
            source=r["source"],
            track_number=r["track_number"],
            disc_number=r["disc_number"],
            year=r["year"],
            isrc=r["isrc"],
            bpm=r["bpm"],
            language=r["language"],
            tags=tags,
            vocals=vocals,
            features=features,
        )
        return Entry(
            track=track,
            status=r["status"],
            format=r["format"],
            display_path=r["display_path"],
            size=r["size"],
            error=r["error"],
            analysis_error=r["analysis_error"],
            annotation=annotation,
            analyzed=features is not None,
            intensity_source=intensity_source,
            vocals_source=vocals_source,
            loudness_lufs=None if features is None else features.loudness_lufs,
            replaygain_db=r["rg_track_gain"],
            tempo_source=tempo_source,
            spotify=None
            if r["s_track_id"] is None
            else SpotifyInfo(
                spotify_id=r["spotify_id"],
                popularity=r["s_popularity"],
                explicit=bool(r["s_explicit"]),
                playable=None if r["s_playable"] is None else bool(r["s_playable"]),
            ),
        )


_SELECT = (
    "SELECT t.*, f.version AS f_version, f.duration AS f_duration, f.loudness_lufs, "
    "f.loudness_range_lu, f.peak_dbfs, f.intensity AS f_intensity, f.envelope, "
    "f.envelope_step, f.tempo_bpm AS f_tempo_bpm, f.tempo_confidence, f.lead_silence, "
    "f.trail_silence, f.brightness_hz, f.onset_rate, f.voice, "
    "a.track_id AS a_track_id, a.intensity AS a_intensity, a.vocals AS a_vocals, "
    "a.tempo_bpm AS a_tempo_bpm, a.never AS a_never, a.tags AS a_tags, a.note AS a_note, "
    "a.cue_in AS a_cue_in, a.cue_out AS a_cue_out, "
    + "".join(f"f.{c}, " for c in (*EDGE_COLUMNS, "curve", "gaps"))
    + "f.intensity_source AS f_intensity_source, f.tempo_source AS f_tempo_source, "
    "f.vocals_source AS f_vocals_source, s.track_id AS s_track_id, s.spotify_id, "
    "s.popularity AS s_popularity, s.explicit AS s_explicit, s.playable AS s_playable "
    "FROM tracks t LEFT JOIN features f ON f.track_id = t.id "
    "LEFT JOIN annotations a ON a.track_id = t.id "
    "LEFT JOIN spotify_tracks s ON s.track_id = t.id"
)
_ORDER = (
    " ORDER BY lower(coalesce(nullif(t.album_artist, ''), t.artist)), lower(t.album), "
    "t.disc_number, t.track_number, lower(t.title), t.id"
)
_TEXT_FIELDS = ("t.title", "t.artist", "t.album", "t.album_artist", "t.genre", "t.display_path")


def _where(terms: Sequence[Term]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for term in terms:
        like = f"%{term.value.casefold()}%"
        if term.field is None:
            where.append("(" + " OR ".join(f"lower({c}) LIKE ?" for c in _TEXT_FIELDS) + ")")
            args.extend([like] * len(_TEXT_FIELDS))
        elif term.field == "id":
            where.append("t.id = ?")
            args.append(int(term.value))
        elif term.field in ("status", "format"):
            where.append(f"t.{term.field} = ?")
            args.append(term.value.casefold())
        elif term.field == "tag":
            where.append("(lower(t.genre) LIKE ? OR a.tags LIKE ?)")
            args.extend([like, f'%"{term.value.casefold()}"%'])
        elif term.field == "vocals":
            where.append(
                "coalesce(a.vocals, CASE WHEN f.voice IS NULL THEN 'unknown' "
                "WHEN f.voice >= 0.5 THEN 'lyrics' ELSE 'none' END) = ?"
            )
            args.append(term.value.casefold())
        elif term.field == "path":
            where.append("lower(t.display_path) LIKE ?")
            args.append(like)
        else:
            where.append(f"lower(t.{term.field}) LIKE ?")
            args.append(like)
    return where, args


def _genre_tags(genre: str) -> tuple[str, ...]:
    """Tags from a genre field: `Ambient; Drone / Neo-Classical` -> ambient, drone, ..."""
    out: list[str] = []
    for part in genre.replace("/", ";").replace(",", ";").split(";"):
        tag = part.strip().casefold()
        if tag and tag not in out:
            out.append(tag)
    return tuple(out)


def _annotation(r: sqlite3.Row) -> Annotation:
    keys = r.keys()
    prefix = "a_" if "a_intensity" in keys else ""
    return Annotation(
        intensity=r[f"{prefix}intensity"],
        vocals=r[f"{prefix}vocals"],
        tempo_bpm=r[f"{prefix}tempo_bpm"],
        never=bool(r[f"{prefix}never"]),
        tags=tuple(json.loads(r[f"{prefix}tags"] or "[]")),
        note=r[f"{prefix}note"] or "",
        cue_in=r[f"{prefix}cue_in"],
        cue_out=r[f"{prefix}cue_out"],
    )


def _features(r: sqlite3.Row) -> Features:
    envelope = np.frombuffer(r["envelope"], dtype="<f4")
    return Features(
        duration=r["f_duration"],
        loudness_lufs=r["loudness_lufs"],
        loudness_range_lu=r["loudness_range_lu"],
        peak_dbfs=r["peak_dbfs"],
        intensity=r["f_intensity"],
        envelope=tuple(float(v) for v in envelope),
        envelope_step=r["envelope_step"],
        tempo_bpm=r["f_tempo_bpm"],
        tempo_confidence=r["tempo_confidence"],
        lead_silence=r["lead_silence"],
        trail_silence=r["trail_silence"],
        brightness_hz=r["brightness_hz"],
        onset_rate=r["onset_rate"],
        voice=r["voice"],
        version=r["f_version"],
        edges=_edges_from_row(r),
    )


def _shift_intensity(f: Features, target: float) -> Features:
    """Move the envelope so its summary becomes the therapist's value, keeping its shape."""
    delta = target - f.intensity
    env = tuple(float(min(1.0, max(0.0, v + delta))) for v in f.envelope)
    return replace(f, intensity=target, envelope=env)
