"""Spotify to the library and back: `setlist spotify import` and `setlist spotify export`.

Application services between the client (`spotify.py`) and the index: they fetch
everything first and write once, so an import that fails part-way (offline, a rate limit
we will not wait out) leaves the index exactly as it was. Features a streamed track cannot
have measured are estimated openly, best source first, each with its provenance:
Spotify's audio features (where the app may still read them), an analysed local copy with
the same ISRC, genre words; with none of those a track waits for a therapist's annotation.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from setlist.errors import SpotifyError
from setlist.fsutil import atomic_write_text
from setlist.library.index import Collection, Index, SpotifyInfo, SpotifyRow
from setlist.models import Setlist, Track
from setlist.sources.spotify import SpotifyClient
from setlist.sources.spotify_translate import (
    FeatureEstimate,
    SpotifyRef,
    SpotifyTrack,
    features_from_audio,
    heuristic_features,
    playlist_info,
)
from setlist.units import format_clock

#: Spotify cuts playlist descriptions at 300 characters.
DESCRIPTION_LIMIT = 300


# --- import ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceReport:
    """One playlist, album, track or the liked songs as imported."""

    ref: str
    name: str
    tracks: int
    skipped: int = 0
    unchanged: bool = False  # a playlist whose snapshot matched the last import


@dataclass(frozen=True, slots=True)
class ImportReport:
    sources: tuple[SourceReport, ...]
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    unplayable: int = 0
    audio_features: str = "not needed"  # used | refused | not needed
    intensity: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [
                {
                    "ref": s.ref,
                    "name": s.name,
                    "tracks": s.tracks,
                    "skipped": s.skipped,
                    "unchanged": s.unchanged,
                }
                for s in self.sources
            ],
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "unplayable": self.unplayable,
            "audio_features": self.audio_features,
            "intensity_sources": dict(self.intensity),
        }


Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


def import_refs(
    client: SpotifyClient,
    index: Index,
    refs: Sequence[SpotifyRef],
    *,
    refresh: bool = False,
    genres: bool = True,
    progress: Progress = _noop,
) -> ImportReport:
    """Import the referenced playlists, albums, tracks or liked songs into `index`.

    Incremental: a playlist whose snapshot is unchanged is not fetched again, and a track
    whose data is unchanged keeps its stored estimate (`refresh` re-estimates them all).
    """
    fetched: dict[str, SpotifyTrack] = {}
    reports: list[SourceReport] = []
    collections: list[Collection] = []

    def add(ref: str, name: str, tracks: list[SpotifyTrack], skipped: int, snap: str = "") -> None:
        for t in tracks:
            fetched.setdefault(t.uri, t)
        reports.append(SourceReport(ref, name, len(tracks), skipped))
        collections.append(Collection(ref, name, snap, len(tracks)))

    def playlist(data: dict[str, Any]) -> None:
        info = playlist_info(data)
        previous = index.collection(info.uri)
        if (
            not refresh
            and previous is not None
            and info.snapshot_id
            and previous.snapshot_id == info.snapshot_id
        ):
            reports.append(SourceReport(info.uri, info.name, previous.tracks, unchanged=True))
            return
        progress(f"reading playlist {info.name!r}")
        tracks, skipped = client.playlist_tracks(info.id)
        add(info.uri, info.name, tracks, skipped, info.snapshot_id)

    for ref in refs:
        if ref.kind == "playlists":
            for data in client.my_playlists():
                playlist(data)
        elif ref.kind == "playlist":
            playlist(client.playlist(ref.id))
        elif ref.kind == "album":
            progress(f"reading album {ref.uri}")
            album, tracks, skipped = client.album(ref.id)
            tracks = _with_isrcs(client, index, tracks, refresh=refresh, progress=progress)
            add(ref.uri, str(album.get("name") or ref.uri), tracks, skipped)
        elif ref.kind == "track":
            track = client.track(ref.id)
            add(ref.uri, track.title if track else ref.uri, [track] if track else [], 0)
        elif ref.kind == "liked":
            progress("reading your liked songs")
            tracks, skipped = client.saved_tracks()
            add("liked", "Liked Songs", tracks, skipped)
        else:  # pragma: no cover - parse_ref makes only the kinds above
            raise SpotifyError(f"cannot import {ref}")

    digests = index.spotify_digests()
    fresh = [t for t in fetched.values() if refresh or digests.get(t.uri) != t.digest()]
    estimates, artists, af_state = _estimate(client, index, fresh, genres=genres, progress=progress)
    rows = [_row(t, estimates.get(t.uri), artists) for t in fresh]
    counts = index.store_spotify(
        rows,
        artists={k: (n, g) for k, (n, g) in artists.items() if n is not None},
        collections=collections,
    )
    sources = Counter(r.intensity_source for r in rows)
    return ImportReport(
        sources=tuple(reports),
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged + (len(fetched) - len(fresh)),
        unplayable=sum(1 for t in fetched.values() if t.playable is False),
        audio_features=af_state,
        intensity=dict(sources),
    )


def _with_isrcs(
    client: SpotifyClient,
    index: Index,
    tracks: list[SpotifyTrack],
    *,
    refresh: bool,
    progress: Progress,
) -> list[SpotifyTrack]:
    """Album tracks with their ISRCs, which album listings leave out.

    The ISRC is what finds an analysed local copy of a recording (measured features
    instead of an estimate) and the same recording again at export. Development-mode
    apps lost "Get Several Tracks" in February 2026, so each track costs one request;
    ISRCs the index already holds are reused, so a re-import asks again only with
    `--refresh`.
    """
    missing = [t for t in tracks if not t.isrc]
    if not missing:
        return tracks
    known = {} if refresh else index.spotify_isrcs(t.uri for t in missing)
    ask = [t for t in missing if t.uri not in known]
    if ask:
        progress(f"reading the ISRCs of {len(ask)} album tracks")
    for t in ask:
        full = client.track(t.spotify_id)
        if full is not None and full.isrc:
            known[t.uri] = full.isrc
    return [replace(t, isrc=known[t.uri]) if not t.isrc and t.uri in known else t for t in tracks]


def _estimate(
    client: SpotifyClient,
    index: Index,
    tracks: Sequence[SpotifyTrack],
    *,
    genres: bool,
    progress: Progress,
) -> tuple[dict[str, FeatureEstimate], dict[str, tuple[str | None, tuple[str, ...]]], str]:
    """Best available estimate per track URI, the artists' genres, and whether Spotify's
    audio features were used, refused or not needed."""
    out: dict[str, FeatureEstimate] = {}
    if not tracks:
        return out, {}, "not needed"
    progress("reading audio features")
    af = client.audio_features([t.spotify_id for t in tracks])
    state = "refused" if af is None else "used"
    for t in tracks:
        row = (af or {}).get(t.spotify_id)
        est = features_from_audio(row, t.duration) if row else None
        if est is not None:
            out[t.uri] = est
    local = index.features_by_isrc(t.isrc for t in tracks if t.uri not in out)
    for t in tracks:
        if t.uri in out or t.isrc not in local:
            continue
        features, _ = local[t.isrc]
        out[t.uri] = FeatureEstimate(
            features,
            intensity_source="local-copy",
            tempo_source="local-copy" if features.tempo_bpm else "none",
            vocals_source="local-copy",
        )
    # Genres: stored ones first; fetch the rest only for tracks still without an estimate
    # (one call per artist: development-mode apps lost the batch endpoint).
    ids = {a for t in tracks for a in t.artist_ids if a}
    known: dict[str, tuple[str | None, tuple[str, ...]]] = {
        k: (None, v) for k, v in index.artist_genres(ids).items()
    }
    if genres:
        wanted = sorted(
            {a for t in tracks if t.uri not in out for a in t.artist_ids if a and a not in known}
        )
        if wanted:
            progress(f"reading genres of {len(wanted)} artists")
        for artist_id in wanted:
            data = client.artist(artist_id)
            known[artist_id] = (
                str(data.get("name") or ""),
                tuple(str(g) for g in data.get("genres") or ()),
            )
    for t in tracks:
        if t.uri in out:
            continue
        est = heuristic_features(t.duration, _genres(t, known), explicit=t.explicit)
        if est is not None:
            out[t.uri] = est
    return out, known, state


def _genres(t: SpotifyTrack, known: dict[str, tuple[str | None, tuple[str, ...]]]) -> list[str]:
    out: list[str] = []
    for a in t.artist_ids:
        for g in known.get(a, (None, ()))[1]:
            if g not in out:
                out.append(g)
    return out


def _row(
    t: SpotifyTrack,
    est: FeatureEstimate | None,
    known: dict[str, tuple[str | None, tuple[str, ...]]],
) -> SpotifyRow:
    features = est.features if est else None
    if features is not None and abs(features.duration - t.duration) > 1e-6 and t.duration > 0:
        features = replace(features, duration=t.duration)
    explicit_lyrics = est is None and t.explicit
    return SpotifyRow(
        track=t.to_track(genre="; ".join(_genres(t, known))),
        info=SpotifyInfo(t.spotify_id, t.popularity, t.explicit, t.playable),
        album_uri=t.album_uri,
        artist_ids=t.artist_ids,
        digest=t.digest(),
        features=features,
        intensity_source=est.intensity_source if est else "none",
        tempo_source=est.tempo_source if est else "none",
        vocals_source=est.vocals_source if est else ("heuristic" if explicit_lyrics else "none"),
    )


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """How one session entry was found on Spotify (or not: `uri` empty)."""

    position: int
    label: str
    uri: str
    how: str  # spotify | library | isrc | search | none


@dataclass(frozen=True, slots=True)
class ExportReport:
    playlist_id: str
    url: str
    name: str
    created: bool
    matches: tuple[Match, ...]
    calls: int
    sidecar: Path

    @property
    def unmatched(self) -> list[Match]:
        return [m for m in self.matches if not m.uri]

    def to_dict(self) -> dict[str, Any]:
        return {
            "playlist_id": self.playlist_id,
            "url": self.url,
            "name": self.name,
            "created": self.created,
            "tracks": sum(1 for m in self.matches if m.uri),
            "unmatched": [{"position": m.position, "track": m.label} for m in self.unmatched],
            "matches": [
                {"position": m.position, "track": m.label, "uri": m.uri, "how": m.how}
                for m in self.matches
            ],
            "sidecar": str(self.sidecar),
        }


def sidecar_path(setlist_file: Path) -> Path:
    """`NAME.spotify.json` beside `NAME.setlist.yaml`: the exported playlist's id."""
    name = setlist_file.name
    stem = name[: -len(".setlist.yaml")] if name.endswith(".setlist.yaml") else setlist_file.stem
    return setlist_file.with_name(stem + ".spotify.json")


def describe(setlist: Setlist, unmatched: int = 0) -> str:
    """The playlist description: arc, seed and when each phase begins (Spotify keeps 300
    characters, so phases are listed as far as they fit)."""
    s = setlist
    head = f"setlist session: {s.arc.name}, seed {s.seed}"
    if s.created:
        head += f", built {s.created[:10]}"
    tail = f" {unmatched} local tracks not on Spotify." if unmatched else ""
    phases = [f"{p.name} {format_clock(p.start)}" for p in s.phases]
    text = head + ". Phases: "
    for i, part in enumerate(phases):
        piece = part + (", " if i < len(phases) - 1 else ".")
        if len(text) + len(piece) + len(tail) > DESCRIPTION_LIMIT:
            text = text.rstrip(", ") + " ..."
            break
        text += piece
    return (text + tail)[:DESCRIPTION_LIMIT]


def _norm(text: str) -> str:
    text = re.sub(r"\s*[\(\[].*?[\)\]]", "", text.casefold())  # "(Remastered 2011)"
    text = re.sub(r"\s+-\s+.*$", "", text)  # "Title - Live"
    return re.sub(r"[^\w]+", " ", text).strip()


def _best(track: Track, found: Iterable[SpotifyTrack]) -> SpotifyTrack | None:
    title = _norm(track.title)
    artist = _norm(track.artist)
    for cand in found:
        if cand.playable is False or _norm(cand.title) != title:
            continue
        names = {_norm(a) for a in cand.artists}
        if artist and not any(n and (n in artist or artist in n) for n in names):
            continue
        if track.duration and cand.duration and abs(track.duration - cand.duration) > 15:
            continue
        return cand
    return None


def _quote(text: str) -> str:
    """A title or name for a search field: no quotes, no "(Remastered 2011)" or "- Live"
    decorations that the catalogue spells differently."""
    text = re.sub(r"\s*[\(\[].*?[\)\]]", "", text)
    text = re.sub(r"\s+-\s+.*$", "", text)
    return text.replace('"', " ").strip()


def match_entries(
    client: SpotifyClient, index: Index | None, setlist: Setlist
) -> tuple[Match, ...]:
    """Each entry's Spotify URI: its own, an imported track with its ISRC, an ISRC
    search, then an artist and title search; the rest stay unmatched (and are listed)."""
    out = []
    for i, e in enumerate(setlist.entries, 1):
        t = e.track
        label = f"{t.artist} - {t.title}" if t.artist else t.title
        if t.uri.startswith("spotify:track:"):
            out.append(Match(i, label, t.uri, "spotify"))
            continue
        uri, how = "", "none"
        if t.isrc and index is not None:
            uri, how = index.spotify_uri_for(t.isrc), "library"
        if not uri and t.isrc:
            hits = [
                h
                for h in client.search_tracks(f"isrc:{t.isrc}", limit=5)
                if h.playable is not False and h.isrc in ("", t.isrc.upper())
            ]
            uri, how = (hits[0].uri, "isrc") if hits else ("", "none")
        if not uri and t.title:
            query = f'track:"{_quote(t.title)}"'
            if t.artist:
                query += f' artist:"{_quote(t.artist)}"'
            best = _best(t, client.search_tracks(query, limit=10))
            uri, how = (best.uri, "search") if best else ("", "none")
        out.append(Match(i, label, uri, how if uri else "none"))
    return tuple(out)


def export_setlist(
    client: SpotifyClient,
    index: Index | None,
    setlist: Setlist,
    setlist_file: Path,
    *,
    name: str | None = None,
    public: bool = False,
) -> ExportReport:
    """Create, or update in place, the Spotify playlist for a built session.

    Idempotent: the playlist id is kept in the sidecar file beside the setlist, so
    exporting again replaces that playlist's tracks and details rather than making
    another; a playlist deleted on Spotify is created afresh.
    """
    matches = match_entries(client, index, setlist)
    uris = [m.uri for m in matches if m.uri]
    if not uris:
        raise SpotifyError(
            f"none of the {len(matches)} tracks could be found on Spotify",
            hint="import Spotify tracks and build with --source spotify, or tag local files "
            "with ISRCs",
        )
    sidecar = sidecar_path(setlist_file)
    state: dict[str, Any] = {}
    try:
        loaded = json.loads(sidecar.read_text(encoding="utf-8"))
        state = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        state = {}
    title = name or str(state.get("name") or "") or _default_name(setlist, setlist_file)
    description = describe(setlist, sum(1 for m in matches if not m.uri))
    playlist_id = str(state.get("playlist_id") or "")
    existing = client.find_playlist(playlist_id) if playlist_id else None
    created = existing is None
    if existing is None:
        data = client.create_playlist(title, public=public, description=description)
        playlist_id = str(data.get("id") or "")
        url = str((data.get("external_urls") or {}).get("spotify") or "")
        calls = 1
        if not playlist_id:
            raise SpotifyError("Spotify did not say which playlist it created")
    else:
        client.update_playlist(playlist_id, name=title, public=public, description=description)
        url = str((existing.get("external_urls") or {}).get("spotify") or "")
        calls = 1
    # Remember the id before filling it, so a failure below never leads to a duplicate.
    state = {"playlist_id": playlist_id, "name": title, "url": url, "public": public}
    atomic_write_text(sidecar, json.dumps(state, indent=2) + "\n")
    calls += client.replace_playlist_items(playlist_id, uris)
    url = url or f"https://open.spotify.com/playlist/{playlist_id}"
    return ExportReport(playlist_id, url, title, created, matches, calls, sidecar)


def _default_name(setlist: Setlist, setlist_file: Path) -> str:
    return sidecar_path(setlist_file).name[: -len(".spotify.json")] or setlist.arc.name
