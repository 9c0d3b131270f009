"""Spotify Web API JSON to setlist values: pure functions, no HTTP, no spotipy.

Kept apart from the client (as Mopidy keeps its translators beside its I/O modules) so
every shape the API has used can be tested with plain dictionaries: playlist items under
`item` (2026) or `track` (before), paging objects, simplified album tracks, saved tracks,
and fields that development-mode apps no longer receive (`popularity`, `available_markets`).

Features get a provenance per value, because a Spotify track has no audio to analyse:
`spotify` (the audio-features endpoint, where the app may still read it), `local-copy`
(an analysed local file with the same ISRC), `heuristic` (genre words, the explicit flag)
or `none`; annotations override all of them when the index reads a track back.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from setlist.errors import SpotifyError
from setlist.models import Features, Track

#: Envelope step for features that have no measured envelope (flat at the estimate).
FLAT_STEP = 3.0
#: Spotify normalises playback to about -14 LUFS; the level we assume when nothing is known.
SPOTIFY_LOUDNESS = -14.0
#: A `Features.version` for estimated (not analysed) features; analysis versions start at 1.
ESTIMATE_VERSION = 0

_ID = r"[0-9A-Za-z]+"
_URI = re.compile(rf"^spotify:(track|album|playlist):({_ID})$")
_USER_PLAYLIST_URI = re.compile(rf"^spotify:user:[^:]+:playlist:({_ID})$")
_URL = re.compile(
    rf"^(?:https?://)?open\.spotify\.com/(?:intl-[a-z]{{2}}(?:-[a-z]{{2}})?/)?"
    rf"(?:user/[^/]+/)?(track|album|playlist)/({_ID})/?(?:[?#].*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SpotifyRef:
    """What `setlist spotify import` was asked for: one item, or the liked songs, or all
    of the user's playlists."""

    kind: str  # track | album | playlist | liked | playlists
    id: str = ""

    @property
    def uri(self) -> str:
        return f"spotify:{self.kind}:{self.id}" if self.id else self.kind

    def __str__(self) -> str:
        return self.uri


def parse_ref(text: str) -> SpotifyRef:
    """A reference from a URI, an open.spotify.com URL, `liked` or `playlists`."""
    value = text.strip()
    word = value.casefold()
    if word in ("liked", "liked-songs", "saved"):
        return SpotifyRef("liked")
    if word in ("playlists", "all-playlists"):
        return SpotifyRef("playlists")
    if m := _URI.match(value):
        return SpotifyRef(m.group(1), m.group(2))
    if m := _USER_PLAYLIST_URI.match(value):
        return SpotifyRef("playlist", m.group(1))
    if m := _URL.match(value):
        return SpotifyRef(m.group(1).lower(), m.group(2))
    raise SpotifyError(
        f"{text!r} is not a Spotify playlist, album or track",
        hint="give a URL such as https://open.spotify.com/playlist/ID, a URI such as "
        "spotify:album:ID, 'liked' or 'playlists'",
    )


@dataclass(frozen=True, slots=True)
class SpotifyTrack:
    """One catalogue track as the Web API described it, with what the index keeps.

    `uri` is what a player opens (the relinked, playable version in the user's market);
    `playable` is None when the response said nothing about the market. `popularity` is
    None for development-mode apps, which no longer receive it.
    """

    uri: str
    spotify_id: str
    title: str
    duration: float
    artists: tuple[str, ...] = ()
    artist_ids: tuple[str, ...] = ()
    album: str = ""
    album_artist: str = ""
    album_uri: str = ""
    isrc: str = ""
    popularity: int | None = None
    explicit: bool = False
    playable: bool | None = None
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None

    @property
    def artist(self) -> str:
        return ", ".join(self.artists)

    def digest(self) -> str:
        """Changes when anything the index stores changes: re-imports skip equal digests."""
        data = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.blake2b(data.encode("utf-8"), digest_size=8).hexdigest()

    def to_track(self, *, track_id: int = 0, genre: str = "") -> Track:
        return Track(
            id=track_id,
            uri=self.uri,
            title=self.title,
            duration=self.duration,
            artist=self.artist,
            album=self.album,
            album_artist=self.album_artist,
            genre=genre,
            source="spotify",
            track_number=self.track_number,
            disc_number=self.disc_number,
            year=self.year,
            isrc=self.isrc,
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _year(release_date: Any) -> int | None:
    if isinstance(release_date, str) and re.match(r"^\d{4}", release_date):
        return int(release_date[:4])
    return None


def _names(people: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = []
    ids: list[str] = []
    for p in people if isinstance(people, list) else ():
        if isinstance(p, Mapping) and p.get("name"):
            names.append(str(p["name"]))
            ids.append(str(p.get("id") or ""))
    return tuple(names), tuple(ids)


def track_from_json(obj: Any, album: Mapping[str, Any] | None = None) -> SpotifyTrack | None:
    """A track object (full or simplified) as a `SpotifyTrack`; None for what cannot be
    planned: episodes, local files in a playlist, removed (null) tracks.

    `album` supplies the album for simplified tracks (an album's track list omits it).
    """
    if not isinstance(obj, Mapping) or obj.get("is_local") or obj.get("type", "track") != "track":
        return None
    uri = obj.get("uri")
    if not isinstance(uri, str) or not uri.startswith("spotify:track:"):
        return None
    alb = obj.get("album") if isinstance(obj.get("album"), Mapping) else (album or {})
    artists, artist_ids = _names(obj.get("artists"))
    album_artists, _ = _names(alb.get("artists"))
    external = obj.get("external_ids") if isinstance(obj.get("external_ids"), Mapping) else {}
    playable = obj.get("is_playable")
    restrictions = obj.get("restrictions") if isinstance(obj.get("restrictions"), Mapping) else {}
    if playable is None and restrictions.get("reason") == "market":
        playable = False
    duration_ms = obj.get("duration_ms")
    return SpotifyTrack(
        uri=uri,
        spotify_id=str(obj.get("id") or uri.rsplit(":", 1)[-1]),
        title=str(obj.get("name") or ""),
        duration=float(duration_ms) / 1000.0 if isinstance(duration_ms, int | float) else 0.0,
        artists=artists,
        artist_ids=artist_ids,
        album=str(alb.get("name") or ""),
        album_artist=album_artists[0] if album_artists else "",
        album_uri=str(alb.get("uri") or ""),
        isrc=str(external.get("isrc") or "").upper(),
        popularity=_int(obj.get("popularity")),
        explicit=bool(obj.get("explicit", False)),
        playable=playable if isinstance(playable, bool) else None,
        track_number=_int(obj.get("track_number")),
        disc_number=_int(obj.get("disc_number")),
        year=_year(alb.get("release_date")),
    )


def page_tracks(
    page: Mapping[str, Any], album: Mapping[str, Any] | None = None
) -> tuple[list[SpotifyTrack], int]:
    """The tracks on one paging object and how many entries were skipped (episodes,
    local files, removed tracks).

    Entries may be bare tracks (album tracks, search), or wrappers holding the track
    under `item` (playlist items since 2026) or `track` (saved tracks, older playlists).
    """
    tracks: list[SpotifyTrack] = []
    skipped = 0
    for entry in page.get("items") or ():
        obj = entry
        if isinstance(entry, Mapping) and ("item" in entry or "track" in entry):
            inner = entry.get("item", entry.get("track"))
            obj = inner if isinstance(inner, Mapping) or inner is None else None
            if entry.get("is_local"):
                obj = None
        track = track_from_json(obj, album)
        if track is None:
            skipped += 1
        else:
            tracks.append(track)
    return tracks, skipped


@dataclass(frozen=True, slots=True)
class PlaylistInfo:
    id: str
    uri: str
    name: str
    snapshot_id: str
    total: int
    owner: str = ""


def playlist_info(obj: Mapping[str, Any]) -> PlaylistInfo:
    """A playlist (full or simplified); the item count sits under `items` since 2026 and
    under `tracks` before."""
    count = obj.get("items") if isinstance(obj.get("items"), Mapping) else obj.get("tracks")
    total = count.get("total") if isinstance(count, Mapping) else None
    owner = obj.get("owner") if isinstance(obj.get("owner"), Mapping) else {}
    pid = str(obj.get("id") or "")
    return PlaylistInfo(
        id=pid,
        uri=str(obj.get("uri") or f"spotify:playlist:{pid}"),
        name=str(obj.get("name") or ""),
        snapshot_id=str(obj.get("snapshot_id") or ""),
        total=total if isinstance(total, int) else 0,
        owner=str(owner.get("id") or ""),
    )


# --- features ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureEstimate:
    """Features for a track without analysable audio, and where each value came from."""

    features: Features
    intensity_source: str
    tempo_source: str
    vocals_source: str


def flat_features(
    duration: float,
    intensity: float,
    *,
    tempo: float | None = None,
    tempo_confidence: float = 0.0,
    voice: float = 0.5,
    loudness: float = SPOTIFY_LOUDNESS,
) -> Features:
    """Features with a flat envelope at `intensity`: all a summary number can tell."""
    value = min(1.0, max(0.0, float(intensity)))
    steps = max(1, math.ceil(max(duration, FLAT_STEP) / FLAT_STEP))
    return Features(
        duration=max(0.0, duration),
        loudness_lufs=loudness,
        loudness_range_lu=6.0,
        peak_dbfs=-1.0,
        intensity=value,
        envelope=(value,) * steps,
        envelope_step=FLAT_STEP,
        tempo_bpm=tempo,
        tempo_confidence=tempo_confidence if tempo else 0.0,
        lead_silence=0.0,
        trail_silence=0.0,
        brightness_hz=0.0,
        onset_rate=0.0,
        voice=min(1.0, max(0.0, voice)),
        version=ESTIMATE_VERSION,
    )


def features_from_audio(af: Mapping[str, Any], duration: float) -> FeatureEstimate | None:
    """Spotify's audio features as setlist features, or None if the object is unusable.

    Intensity leans on `energy` (Spotify's own "perceptual measure of intensity"), with
    loudness as a smaller term; voice is the opposite of `instrumentalness`.
    """
    energy = af.get("energy")
    if not isinstance(energy, int | float):
        return None
    loud = af.get("loudness")
    loudness = float(loud) if isinstance(loud, int | float) else SPOTIFY_LOUDNESS
    loud_norm = min(1.0, max(0.0, (loudness + 30.0) / 25.0))
    intensity = 0.8 * float(energy) + 0.2 * loud_norm
    tempo = af.get("tempo")
    bpm = float(tempo) if isinstance(tempo, int | float) and 20 <= tempo <= 300 else None
    instrumental = af.get("instrumentalness")
    voice = 1.0 - float(instrumental) if isinstance(instrumental, int | float) else 0.5
    return FeatureEstimate(
        flat_features(
            duration, intensity, tempo=bpm, tempo_confidence=0.6, voice=voice, loudness=loudness
        ),
        intensity_source="spotify",
        tempo_source="spotify" if bpm else "none",
        vocals_source="spotify" if isinstance(instrumental, int | float) else "none",
    )


#: Genre words and the intensity they suggest (0 = near-silent drone, 1 = most driving).
GENRE_INTENSITY: tuple[tuple[str, float], ...] = (
    ("sleep", 0.1),
    ("meditation", 0.12),
    ("drone", 0.15),
    ("ambient", 0.2),
    ("new age", 0.2),
    ("healing", 0.15),
    ("chant", 0.25),
    ("choral", 0.3),
    ("neoclassical", 0.3),
    ("neo-classical", 0.3),
    ("modern classical", 0.3),
    ("piano", 0.3),
    ("minimal", 0.35),
    ("classical", 0.35),
    ("lo-fi", 0.35),
    ("chill", 0.35),
    ("soundtrack", 0.4),
    ("downtempo", 0.4),
    ("folk", 0.4),
    ("singer-songwriter", 0.4),
    ("jazz", 0.45),
    ("world", 0.45),
    ("trip hop", 0.45),
    ("soul", 0.5),
    ("indie", 0.5),
    ("r&b", 0.55),
    ("pop", 0.6),
    ("electronic", 0.6),
    ("hip hop", 0.65),
    ("rap", 0.7),
    ("rock", 0.7),
    ("house", 0.7),
    ("techno", 0.8),
    ("trance", 0.8),
    ("edm", 0.85),
    ("drum and bass", 0.85),
    ("punk", 0.85),
    ("dubstep", 0.9),
    ("metal", 0.9),
    ("hardcore", 0.9),
)


def genre_intensity(genres: Iterable[str]) -> float | None:
    """The mean intensity the genre words suggest (the most specific word per genre), or
    None when no word is known: no evidence, no guess."""
    values = []
    for genre in genres:
        g = genre.casefold()
        hits = [(len(word), value) for word, value in GENRE_INTENSITY if word in g]
        if hits:
            values.append(max(hits)[1])
    return sum(values) / len(values) if values else None


def heuristic_features(
    duration: float, genres: Iterable[str], *, explicit: bool = False
) -> FeatureEstimate | None:
    """Features from genre words and the explicit flag, or None when nothing is known
    (such a track is planned only after a therapist annotates its intensity)."""
    intensity = genre_intensity(genres)
    if intensity is None:
        return None
    return FeatureEstimate(
        flat_features(duration, intensity, voice=1.0 if explicit else 0.5),
        intensity_source="heuristic",
        tempo_source="none",
        vocals_source="heuristic" if explicit else "none",
    )
