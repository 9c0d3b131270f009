"""Spotify sign-in, import, build, export and faults against a fake Web API on loopback.

spotipy's real HTTP code runs: the client is pointed at `tests/fakespotify.py` through
SETLIST_SPOTIFY_API / SETLIST_SPOTIFY_ACCOUNTS, and sign-in follows the real redirect
through our loopback listener (the fake's `browser` plays the user's browser).
"""

from __future__ import annotations

import json
import logging
import socket
import stat
import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from setlist.cli import cli
from setlist.cli_spotify import spotify
from setlist.errors import (
    NoActiveDevice,
    PremiumRequired,
    RateLimited,
    SpotifyAuthError,
    SpotifyUnavailable,
)
from setlist.exports import load_setlist
from setlist.library.index import Index, ScannedFile
from setlist.library.query import parse_query
from setlist.library.scan import tags_to_values
from setlist.sources import spotify as sp
from setlist.sources.spotify_sync import export_setlist, import_refs, sidecar_path
from setlist.sources.spotify_translate import parse_ref
from setlist.testing import make_track
from tests.fakespotify import CLIENT_ID, FakeSpotify

GENRES = {
    "ar1": ("Hollow Choir", ("drone", "dark ambient")),
    "ar2": ("Slow Rivers", ("ambient", "new age")),
    "ar3": ("Pale Keys", ("neoclassical", "modern classical")),
    "ar4": ("Night Engine", ("melodic techno",)),
    "ar5": ("Unknown Band", ()),
}


def catalogue(fake: FakeSpotify) -> None:
    """Five artists, an album each, four tracks an album; a playlist, liked songs."""
    for i, (artist_id, (name, genres)) in enumerate(GENRES.items(), 1):
        fake.add_artist(artist_id, name, genres)
        fake.add_album(f"al{i}", f"Album {i}", artist_id)
        for j in range(1, 5):
            n = i * 10 + j
            fake.add_track(
                f"tr{n}",
                f"{name} piece {j}",
                artist_id,
                f"al{i}",
                duration_ms=240_000 + 10_000 * j,
                isrc=f"GBTST26{n:05d}",
                explicit=artist_id == "ar4" and j == 1,
                playable=n != 34,
            )
    ids = [f"tr{i * 10 + j}" for i in range(1, 6) for j in range(1, 5)]
    fake.add_playlist("calmplaylist01", "Calm", ids[:12])
    p = fake.playlists["calmplaylist01"]
    p["entries"] += [("episode", "ep1"), ("local", "my file.mp3"), ("gone", "")]
    fake.saved = ids[10:]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSpotify]:
    with FakeSpotify() as server:
        catalogue(server)
        monkeypatch.setenv(sp.ENV_API, server.api_url)
        monkeypatch.setenv(sp.ENV_ACCOUNTS, server.accounts_url)
        monkeypatch.setenv(sp.ENV_CLIENT_ID, CLIENT_ID)
        monkeypatch.setenv(sp.ENV_REDIRECT_URI, "http://127.0.0.1:0/callback")
        yield server


def settings(**changes: object) -> sp.Settings:
    from dataclasses import replace

    return replace(sp.load_settings(), **changes)  # type: ignore[arg-type]


@pytest.fixture
def signed_in(fake: FakeSpotify) -> FakeSpotify:
    me = sp.login(settings(), open_url=fake.browser, announce=lambda url: None, timeout=10)
    assert me["id"] == "therapist"
    return fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(**changes: object) -> tuple[sp.SpotifyClient, Sleeps]:
    sleeps = Sleeps()
    return sp.SpotifyClient(settings(**changes), sleep=sleeps), sleeps


def token_file() -> Path:
    return sp.load_settings().token_path


# --- sign-in ---------------------------------------------------------------------------------


def test_login_logout_and_status_through_the_cli(
    fake: FakeSpotify, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(sp.ENV_CLIENT_ID)
    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        fake.browser(url)
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    runner = CliRunner()
    result = runner.invoke(spotify, ["login", "--client-id", CLIENT_ID])
    assert result.exit_code == 0, result.output
    assert "signed in to Spotify as Dr Test" in result.stdout
    assert opened and opened[0] in result.stderr  # the address is printed too
    assert "code_challenge_method=S256" in opened[0]
    path = token_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["refresh_token"] and saved["access_token"] not in result.output
    # the client id was remembered: status needs no environment
    status = runner.invoke(spotify, ["status", "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert info["signed_in"] and info["user"]["display_name"] == "Dr Test"
    assert info["client_id"] == CLIENT_ID
    assert (
        saved["access_token"] not in status.stdout and saved["refresh_token"] not in status.stdout
    )
    text = runner.invoke(spotify, ["status"])
    assert "yes, as Dr Test" in text.stdout
    out = runner.invoke(spotify, ["logout"])
    assert out.exit_code == 0 and not path.exists()
    assert "signed in     no" in runner.invoke(spotify, ["status"]).stdout


def test_login_refused_in_the_browser(fake: FakeSpotify) -> None:
    with pytest.raises(SpotifyAuthError, match="access_denied"):
        sp.login(
            settings(),
            open_url=lambda url: fake.browser(url, deny=True),
            announce=lambda url: None,
            timeout=10,
        )
    assert not token_file().exists()


def test_login_needs_a_loopback_redirect(fake: FakeSpotify) -> None:
    result = CliRunner().invoke(
        spotify, ["login", "--redirect-uri", "http://localhost:8888/callback", "--no-browser"]
    )
    assert result.exit_code == 1
    assert "not a loopback address" in result.stderr and "use 127.0.0.1" in result.stderr


def test_commands_without_sign_in_say_how_to_sign_in(fake: FakeSpotify, tmp_path: Path) -> None:
    result = CliRunner().invoke(spotify, ["import", "liked", "--db", str(tmp_path / "x.sqlite")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "setlist: not signed in to Spotify",
        "  hint: run 'setlist spotify login'",
    ]


def test_expired_token_refreshes_once_and_rotates_the_refresh_token(
    signed_in: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    before = json.loads(token_file().read_text())
    signed_in.expire_tokens()
    caplog.set_level(logging.DEBUG)
    c, _ = client()
    with c:
        assert c.me()["id"] == "therapist"
    after = json.loads(token_file().read_text())
    assert after["refresh_token"] != before["refresh_token"]  # rotated and persisted
    assert before["refresh_token"] not in signed_in.refresh
    assert stat.S_IMODE(token_file().stat().st_mode) == 0o600
    for secret in (after["access_token"], after["refresh_token"], before["refresh_token"]):
        assert secret not in caplog.text  # spotipy's debug lines are redacted


def test_a_second_401_asks_for_a_new_sign_in(signed_in: FakeSpotify) -> None:
    signed_in.fault(401, path="/v1/me", times=2)
    c, _ = client()
    with c, pytest.raises(SpotifyAuthError, match="no longer accepts") as info:
        c.me()
    assert info.value.hint == "run 'setlist spotify login'"


def test_revoked_refresh_token_asks_for_a_new_sign_in(signed_in: FakeSpotify) -> None:
    signed_in.expire_tokens()
    signed_in.refresh.clear()
    c, _ = client()
    with c, pytest.raises(SpotifyAuthError, match="invalid_grant"):
        c.me()


# --- faults ----------------------------------------------------------------------------------


def test_429_waits_retry_after_within_the_cap(signed_in: FakeSpotify) -> None:
    signed_in.fault(429, path="/v1/me", headers={"Retry-After": "3"})
    c, sleeps = client()
    with c:
        assert c.me()["id"] == "therapist"
    assert sleeps == [3.0]


def test_429_longer_than_the_cap_fails_at_once(signed_in: FakeSpotify) -> None:
    signed_in.fault(429, path="/v1/me", headers={"Retry-After": "3600"})
    c, sleeps = client()
    with c, pytest.raises(RateLimited, match="wait 3600s") as info:
        c.me()
    assert sleeps == [] and info.value.retry_after == 3600


def test_server_errors_are_retried_with_backoff_then_reported(signed_in: FakeSpotify) -> None:
    signed_in.fault(500, path="/v1/me", times=2)
    c, sleeps = client()
    with c:
        assert c.me()["id"] == "therapist"
    assert sleeps == [0.5, 1.0]
    signed_in.fault(503, path="/v1/me", times=10)
    c, sleeps = client()
    with c, pytest.raises(SpotifyUnavailable, match="failed 4 times"):
        c.me()
    assert len(sleeps) == 3


def test_timeouts_are_retried(signed_in: FakeSpotify) -> None:
    signed_in.delay("/v1/me", 0.6)
    c, sleeps = client(timeout=0.2)
    with c:
        assert c.me()["id"] == "therapist"
    assert sleeps == [0.5]


def test_offline_is_one_line(
    signed_in: FakeSpotify, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(sp.ENV_API, f"http://127.0.0.1:{port}/v1/")
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    result = CliRunner().invoke(spotify, ["devices"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "setlist: cannot reach Spotify to list your Spotify devices (offline?)"
    )


# --- import ----------------------------------------------------------------------------------


def add_local_copy(db: Path, isrc: str, intensity: float) -> None:
    """An analysed local file of the same recording as one Spotify track."""
    t = make_track(900, intensity=intensity, tempo=70.0)
    with Index.open(db) as index:
        index.store_scanned(
            [
                ScannedFile(
                    uri="file:///music/copy.flac",
                    display_path="/music/copy.flac",
                    size=1,
                    mtime_ns=1,
                    fingerprint="fp",
                    values=tags_to_values(
                        {"_format": "flac", "_length": 300.0, "title": ["Copy"], "isrc": [isrc]},
                        "/music/copy.flac",
                    ),
                )
            ]
        )
        (entry,) = index.search([])
        assert t.features is not None
        index.store_features(entry.track.id, t.features)


def test_import_playlist_with_open_fallbacks(signed_in: FakeSpotify, tmp_path: Path) -> None:
    db = tmp_path / "lib.sqlite"
    add_local_copy(db, "GBTST2600013", 0.66)
    url = "https://open.spotify.com/playlist/calmplaylist01?si=x"
    result = CliRunner().invoke(spotify, ["import", url, "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sources"][0]["tracks"] == 12 and report["sources"][0]["skipped"] == 3
    assert (report["new"], report["updated"], report["unchanged"]) == (12, 0, 0)
    assert report["audio_features"] == "refused"
    assert report["intensity_sources"] == {"local-copy": 1, "heuristic": 11}
    assert report["unplayable"] == 1  # tr34 is not available in the market
    with Index.open(db) as index:
        entries = {e.track.uri: e for e in index.search([]) if e.track.source == "spotify"}
        copy = entries["spotify:track:tr13"]
        assert copy.intensity_source == "local-copy" and copy.track.features is not None
        assert copy.track.features.intensity == pytest.approx(0.66, abs=0.01)
        assert copy.tempo_source == "local-copy"
        drone = entries["spotify:track:tr11"]
        assert drone.intensity_source == "heuristic" and drone.track.vocals == "unknown"
        assert drone.track.isrc == "GBTST2600011" and drone.track.album == "Album 1"
        assert "drone" in drone.track.tags
        assert drone.spotify is not None and drone.spotify.playable is True
        assert drone.spotify.popularity is None  # development-mode apps no longer get it
    # `library show` tells how sure the intensity is
    shown = CliRunner().invoke(
        cli, ["library", "show", "title:'Hollow Choir piece 1'", "--db", str(db)]
    )
    assert shown.exit_code == 0, shown.output
    assert "intensity_source heuristic" in " ".join(shown.stdout.split())


def test_reimport_is_incremental(signed_in: FakeSpotify, tmp_path: Path) -> None:
    db = tmp_path / "lib.sqlite"
    c, _ = client()
    with c, Index.open(db) as index:
        first = import_refs(c, index, [parse_ref("spotify:playlist:calmplaylist01")])
        assert first.new == 12
        calls = len(signed_in.calls("GET", "/items"))
        again = import_refs(c, index, [parse_ref("spotify:playlist:calmplaylist01")])
        assert again.sources[0].unchanged and again.new == again.updated == 0
        assert len(signed_in.calls("GET", "/items")) == calls  # snapshot unchanged: not read
        # the playlist changes: one track added, one renamed upstream
        p = signed_in.playlists["calmplaylist01"]
        p["entries"].append(("track", "tr51"))
        p["snapshot_id"] = "changed"
        signed_in.tracks["tr11"]["name"] = "Hollow Choir piece 1 (2026 mix)"
        third = import_refs(c, index, [parse_ref("spotify:playlist:calmplaylist01")])
        assert (third.new, third.updated, third.unchanged) == (1, 1, 11)
        # the unknown band has no genre words: no estimate, no guess
        assert third.intensity == {"none": 1, "heuristic": 1}


def test_import_is_all_or_nothing(signed_in: FakeSpotify, tmp_path: Path) -> None:
    db = tmp_path / "lib.sqlite"
    signed_in.fault(500, path="/v1/me/tracks", times=10)
    c, _ = client()
    with c, Index.open(db) as index:
        with pytest.raises(SpotifyUnavailable):
            refs = [parse_ref("spotify:playlist:calmplaylist01"), parse_ref("liked")]
            import_refs(c, index, refs)
        assert index.search([]) == []
        assert index.collection("spotify:playlist:calmplaylist01") is None


def test_import_liked_albums_tracks_and_all_playlists(
    signed_in: FakeSpotify, tmp_path: Path
) -> None:
    db = tmp_path / "lib.sqlite"
    runner = CliRunner()
    result = runner.invoke(
        spotify, ["import", "liked", "spotify:album:al2", "spotify:track:tr41", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "Liked Songs: 10 tracks" in result.stdout
    assert "Album 2: 4 tracks" in result.stdout
    assert "1 not playable in your market" in result.stdout
    assert "audio features: refused by Spotify" in result.stdout
    assert "tracks have no intensity estimate" in result.stderr  # the unknown band
    with Index.open(db) as index:
        uris = {e.track.uri for e in index.search([])}
        assert len(uris) == 14  # liked (10) + album 2 (4); tr41 is also liked
        album_track = index.search(parse_query("title:'Slow Rivers piece 1'"))[0]
        assert album_track.track.isrc == "GBTST2600021"  # read for it: see the next test
        # the unplayable track is kept in the library but never planned
        planned = {t.uri for t in index.candidates().tracks}
        assert "spotify:track:tr34" in uris and "spotify:track:tr34" not in planned
        assert "spotify:track:tr51" not in planned  # no intensity estimate yet
    # an annotation is enough to plan a track Spotify tells nothing about
    runner.invoke(
        cli,
        [
            "library",
            "annotate",
            "title:'Unknown Band piece 1'",
            "--intensity",
            "0.4",
            "--db",
            str(db),
        ],
    )
    with Index.open(db) as index:
        assert "spotify:track:tr51" in {t.uri for t in index.candidates().tracks}
    signed_in.add_playlist("otherlist00001", "Other", ["tr21"])
    result = runner.invoke(spotify, ["import", "playlists", "--db", str(db), "--json"])
    names = [s["name"] for s in json.loads(result.stdout)["sources"]]
    assert names == ["Calm", "Other"]


def test_legacy_shapes_and_audio_features(signed_in: FakeSpotify, tmp_path: Path) -> None:
    signed_in.legacy = True
    signed_in.features = {
        f"tr{n}": {
            "id": f"tr{n}",
            "energy": 0.2,
            "loudness": -22.0,
            "tempo": 66.0,
            "instrumentalness": 0.9,
        }
        for n in (11, 12, 13, 14)
    }
    c, _ = client()
    with c, Index.open(tmp_path / "lib.sqlite") as index:
        report = import_refs(c, index, [parse_ref("spotify:playlist:calmplaylist01")])
        assert report.audio_features == "used"
        assert report.intensity == {"spotify": 4, "heuristic": 8}
        entry = next(e for e in index.search([]) if e.track.uri == "spotify:track:tr12")
        assert entry.intensity_source == entry.tempo_source == "spotify"
        assert entry.track.vocals == "none" and entry.track.features is not None
        assert entry.track.features.tempo_bpm == 66.0
    assert not signed_in.calls("GET", "/artists/ar1")  # features known: no genre lookup


# --- build and export --------------------------------------------------------------------------

ARC = """\
name: spotify-test
length: 20m
crossfade: 6s
vocals: allow
phases:
  - name: onset
    duration: {min: 5m, max: 12m, nominal: 8m}
    intensity: [0.15, 0.3]
  - name: peak
    duration: {min: 6m, max: 15m, nominal: 12m}
    intensity: 0.35
"""


@pytest.fixture
def built(signed_in: FakeSpotify, tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "lib.sqlite"
    arc = tmp_path / "spotify-test.yaml"
    arc.write_text(ARC)
    runner = CliRunner()
    result = runner.invoke(spotify, ["import", "spotify:playlist:calmplaylist01", "--db", str(db)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli,
        ["build", str(arc), "--db", str(db), "--source", "spotify", "--seed", "3",
         "--dir", str(tmp_path / "out"), "--out", "monday"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tracks have an estimated intensity" in result.stdout
    return db, tmp_path / "out" / "monday.setlist.yaml"


def test_build_from_spotify_writes_uris(built: tuple[Path, Path]) -> None:
    _, plan = built
    session = load_setlist(plan)
    assert all(e.track.source == "spotify" for e in session.entries)
    assert all(e.track.uri.startswith("spotify:track:") for e in session.entries)
    m3u = plan.with_name("monday.m3u8").read_text()
    assert "spotify:track:" in m3u and "file://" not in m3u
    xspf = plan.with_name("monday.xspf").read_text()
    assert "<location>spotify:track:" in xspf


def test_export_creates_then_updates_the_same_private_playlist(
    built: tuple[Path, Path], signed_in: FakeSpotify
) -> None:
    db, plan = built
    runner = CliRunner()
    result = runner.invoke(spotify, ["export", str(plan), "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["created"] and report["unmatched"] == []
    pid = report["playlist_id"]
    p = signed_in.playlists[pid]
    session = load_setlist(plan)
    assert [f"spotify:track:{i}" for _, i in p["entries"]] == [e.track.uri for e in session.entries]
    assert p["public"] is False and p["name"] == "monday"
    assert "spotify-test" in p["description"] and "seed 3" in p["description"]
    assert "onset 0:00:00" in p["description"] and "peak " in p["description"]
    assert json.loads(sidecar_path(plan).read_text())["playlist_id"] == pid
    again = runner.invoke(spotify, ["export", str(plan), "--db", str(db), "--name", "Monday"])
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("updated Spotify playlist 'Monday'")
    assert len(signed_in.playlists) == 2 and p["name"] == "Monday"  # Calm and this one
    # deleted on Spotify: made afresh rather than failing
    del signed_in.playlists[pid]
    third = runner.invoke(spotify, ["export", str(plan), "--db", str(db), "--json"])
    assert json.loads(third.stdout)["created"] and len(signed_in.playlists) == 2


def test_export_matches_local_tracks_and_lists_the_rest(
    built: tuple[Path, Path], signed_in: FakeSpotify, tmp_path: Path
) -> None:
    from dataclasses import replace

    _, plan = built
    session = load_setlist(plan)
    e = list(session.entries)
    local = [
        replace(e[0].track, uri="file:///m/a.flac", source="local", isrc="GBTST2600021"),
        replace(e[1].track, uri="file:///m/b.flac", source="local", isrc="",
                title="Pale Keys piece 2 (Remastered)", artist="Pale Keys", duration=262.0),
        replace(e[2].track, uri="file:///m/c.flac", source="local", isrc="", title="Not There"),
    ]  # fmt: skip
    e[:3] = [replace(x, track=t) for x, t in zip(e[:3], local, strict=True)]
    mixed = replace(session, entries=tuple(e))
    c, _ = client()
    with c:
        report = export_setlist(c, None, mixed, tmp_path / "mixed.setlist.yaml")
    hows = [m.how for m in report.matches[:3]]
    assert hows == ["isrc", "search", "none"]
    assert report.matches[0].uri == "spotify:track:tr21"
    assert report.matches[1].uri == "spotify:track:tr32"
    assert [m.label for m in report.unmatched] == [f"{local[2].artist} - Not There"]
    p = signed_in.playlists[report.playlist_id]
    assert len(p["entries"]) == len(e) - 1
    assert "1 local tracks not on Spotify" in p["description"]
    for call in signed_in.calls("GET", "/search"):
        assert int(call.query["limit"]) <= 10


def test_playlist_items_go_in_batches_of_100(signed_in: FakeSpotify) -> None:
    uris = [f"spotify:track:tr{i * 10 + j}" for i in range(1, 6) for j in range(1, 5)] * 13
    c, _ = client()
    with c:
        created = c.create_playlist("Long", public=False, description="")
        assert c.replace_playlist_items(created["id"], uris) == 3
    writes = [x for x in signed_in.calls(path="/items") if x.method in ("PUT", "POST")]
    sizes = [len(x.body["uris"] if isinstance(x.body, dict) else x.body) for x in writes]
    assert sizes == [100, 100, 60]
    assert len(signed_in.playlists[created["id"]]["entries"]) == 260


# --- Spotify Connect: the seam for a live player ---------------------------------------------


def test_connect_devices_transfer_play_volume(signed_in: FakeSpotify) -> None:
    signed_in.add_device("dev-room", "Session Room")
    signed_in.add_device("dev-phone", "Phone", volume=False)
    c, _ = client()
    with c:
        with pytest.raises(NoActiveDevice, match="no Spotify device is active"):
            c.find_device()
        with pytest.raises(NoActiveDevice, match="no active Spotify device to start playback"):
            c.start_playback(["spotify:track:tr11"])
        room = c.find_device("session")
        c.transfer(room.id)
        assert c.find_device().id == "dev-room"
        c.start_playback(["spotify:track:tr11"], position=12.5)
        now = c.playback()
        assert now is not None and now.is_playing and now.uri == "spotify:track:tr11"
        assert now.progress == 12.5 and now.device_id == "dev-room"
        c.set_volume(35, room.id)
        assert signed_in.devices[0]["volume_percent"] == 35
        with pytest.raises(sp.SpotifyRefused, match="volume"):
            c.set_volume(20, "dev-phone")
        c.pause(room.id)
        assert not signed_in.player["is_playing"]
        signed_in.premium = False
        with pytest.raises(PremiumRequired, match="Premium is required"):
            c.start_playback(["spotify:track:tr12"], device_id=room.id)
    result = CliRunner().invoke(spotify, ["devices"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "* Session Room  (Computer, volume 35%)",
        "  Phone  (Smartphone, no volume control)",
    ]


def test_nothing_playing_is_none(signed_in: FakeSpotify) -> None:
    c, _ = client()
    with c:
        assert c.playback() is None
        assert c.devices() == []


def test_album_tracks_get_their_isrc_and_with_it_a_local_copy(
    signed_in: FakeSpotify, tmp_path: Path
) -> None:
    """Album listings carry no ISRC; each track is read once (no batch endpoint for
    development-mode apps) and re-imports reuse what the index holds."""
    db = tmp_path / "lib.sqlite"
    add_local_copy(db, "GBTST2600022", 0.71)
    runner = CliRunner()
    args = ["import", "spotify:album:al2", "--db", str(db), "--json"]
    result = runner.invoke(spotify, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["intensity_sources"]["local-copy"] == 1
    asked = signed_in.calls("GET", r"^/v1/tracks/\w+$")
    assert sorted(c.path for c in asked) == [f"/v1/tracks/tr2{i}" for i in range(1, 5)]
    with Index.open(db) as index:
        album = {e.track.uri: e for e in index.search([]) if e.track.source == "spotify"}
        assert {e.track.isrc for e in album.values()} == {f"GBTST260002{i}" for i in range(1, 5)}
        copy = album["spotify:track:tr22"]
        assert copy.intensity_source == "local-copy"
        assert copy.track.features is not None
        assert copy.track.features.intensity == pytest.approx(0.71, abs=0.01)
    again = runner.invoke(spotify, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["unchanged"] == 4
    assert len(signed_in.calls("GET", r"^/v1/tracks/\w+$")) == 4  # nothing asked again
    runner.invoke(spotify, [*args, "--refresh"])
    assert len(signed_in.calls("GET", r"^/v1/tracks/\w+$")) == 8
