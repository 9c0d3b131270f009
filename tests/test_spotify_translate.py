"""Web API JSON to setlist values: every shape the API has used, as plain dictionaries."""

from __future__ import annotations

from typing import Any

import pytest

from setlist.errors import SpotifyError
from setlist.sources.spotify_translate import (
    SpotifyRef,
    features_from_audio,
    genre_intensity,
    heuristic_features,
    page_tracks,
    parse_ref,
    playlist_info,
    track_from_json,
)

ID = "4uLU6hMCjMI75M1A2tKUQC"


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        (f"spotify:playlist:{ID}", SpotifyRef("playlist", ID)),
        (f"spotify:album:{ID}", SpotifyRef("album", ID)),
        (f"spotify:track:{ID}", SpotifyRef("track", ID)),
        (f"spotify:user:someone:playlist:{ID}", SpotifyRef("playlist", ID)),
        (f"https://open.spotify.com/playlist/{ID}?si=abc", SpotifyRef("playlist", ID)),
        (f"https://open.spotify.com/intl-de/album/{ID}", SpotifyRef("album", ID)),
        (f"open.spotify.com/track/{ID}", SpotifyRef("track", ID)),
        ("liked", SpotifyRef("liked")),
        ("Playlists", SpotifyRef("playlists")),
    ],
)
def test_parse_ref(text: str, ref: SpotifyRef) -> None:
    assert parse_ref(text) == ref


@pytest.mark.parametrize("text", ["", "spotify:artist:" + ID, "https://example.com/x", "nope"])
def test_parse_ref_refuses_what_cannot_be_imported(text: str) -> None:
    with pytest.raises(SpotifyError, match="not a Spotify playlist"):
        parse_ref(text)


def full_track(**extra: Any) -> dict[str, Any]:
    t = {
        "id": ID,
        "uri": f"spotify:track:{ID}",
        "type": "track",
        "name": "Slow Light",
        "duration_ms": 312_500,
        "explicit": False,
        "is_local": False,
        "track_number": 3,
        "disc_number": 1,
        "artists": [{"id": "a1", "name": "Lumen"}, {"id": "a2", "name": "Guest"}],
        "album": {
            "name": "Dawn",
            "uri": "spotify:album:al1",
            "release_date": "2019-05-01",
            "artists": [{"id": "a1", "name": "Lumen"}],
        },
        "external_ids": {"isrc": "gbaaa1900001"},
    }
    t.update(extra)
    return t


def test_full_track_2026_shape_without_popularity() -> None:
    t = track_from_json(full_track(is_playable=True))
    assert t is not None
    assert (t.title, t.artist, t.album, t.album_artist) == (
        "Slow Light",
        "Lumen, Guest",
        "Dawn",
        "Lumen",
    )
    assert t.duration == pytest.approx(312.5)
    assert (t.isrc, t.year, t.track_number, t.popularity, t.playable) == (
        "GBAAA1900001",
        2019,
        3,
        None,
        True,
    )
    track = t.to_track(genre="ambient")
    assert track.source == "spotify" and track.uri == f"spotify:track:{ID}"


def test_older_fields_and_market_restrictions() -> None:
    t = track_from_json(full_track(popularity=41, restrictions={"reason": "market"}))
    assert t is not None and t.popularity == 41 and t.playable is False


def test_simplified_album_track_takes_the_album_given() -> None:
    simple = full_track()
    del simple["album"], simple["external_ids"]
    t = track_from_json(simple, album={"name": "Dawn", "release_date": "2019", "artists": []})
    assert t is not None and t.album == "Dawn" and t.year == 2019 and t.isrc == ""


def test_pages_in_every_shape_skip_what_cannot_be_planned() -> None:
    episode = {"type": "episode", "uri": "spotify:episode:x", "id": "x"}
    local = {"is_local": True, "uri": "spotify:local:::a:1", "type": "track"}
    page_2026 = {
        "items": [
            {"item": full_track(), "is_local": False},
            {"item": episode},
            {"item": local, "is_local": True},
            {"item": None},
        ]
    }
    tracks, skipped = page_tracks(page_2026)
    assert [t.title for t in tracks] == ["Slow Light"] and skipped == 3
    legacy = {"items": [{"track": full_track(), "added_at": "2020-01-01T00:00:00Z"}]}
    assert len(page_tracks(legacy)[0]) == 1
    bare = {"items": [full_track()]}
    assert len(page_tracks(bare)[0]) == 1


def test_playlist_counts_in_both_shapes() -> None:
    new = playlist_info({"id": "p", "name": "Calm", "snapshot_id": "s1", "items": {"total": 7}})
    old = playlist_info({"id": "p", "name": "Calm", "tracks": {"total": 9}})
    assert (new.total, new.uri, new.snapshot_id) == (7, "spotify:playlist:p", "s1")
    assert old.total == 9


def test_audio_features_give_intensity_tempo_and_voice_with_provenance() -> None:
    calm = features_from_audio(
        {"energy": 0.1, "loudness": -25.0, "tempo": 62.0, "instrumentalness": 0.95}, 300
    )
    loud = features_from_audio(
        {"energy": 0.9, "loudness": -5.0, "tempo": 128.0, "instrumentalness": 0.0}, 300
    )
    assert calm is not None and loud is not None
    assert calm.features.intensity < 0.2 < 0.8 < loud.features.intensity
    assert calm.features.tempo_bpm == 62.0 and calm.features.voice < 0.5 <= loud.features.voice
    assert (calm.intensity_source, calm.tempo_source, calm.vocals_source) == ("spotify",) * 3
    assert len(calm.features.envelope) == 100  # flat, one value every 3 s
    assert features_from_audio({"tempo": 90}, 300) is None


def test_genre_heuristics_are_open_about_what_they_do_not_know() -> None:
    assert genre_intensity(["dark ambient"]) == pytest.approx(0.2)
    assert genre_intensity(["melodic techno"]) == pytest.approx(0.8)
    assert genre_intensity(["polka-step"]) is None
    est = heuristic_features(240, ["drone", "modern classical"], explicit=True)
    assert est is not None and est.intensity_source == "heuristic"
    assert est.tempo_source == "none" and est.vocals_source == "heuristic"
    assert est.features.voice == 1.0 and est.features.tempo_bpm is None
    assert heuristic_features(240, []) is None
