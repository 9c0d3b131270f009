"""A fake Spotify (Web API and accounts service) on 127.0.0.1 for the tests.

A real HTTP server, so spotipy's own request code runs against it: the client is pointed
here through `SETLIST_SPOTIFY_API` / `SETLIST_SPOTIFY_ACCOUNTS` (spotipy's `prefix` and
`OAUTH_*_URL`). It implements what setlist uses, with the shapes of 2026: PKCE code
exchange and rotating refresh tokens; `/me` without country or product; playlists with
`/items` whose entries hold `item` (set `legacy = True` for the older `track`/`tracks`
shapes); simplified album tracks without ISRCs; search capped at 10 results; audio
features answering 403 unless data is configured; the Connect player endpoints with
Premium and active-device rules (set `live = True` and the playing track's progress
advances on the `now` clock, pauses freeze it and a track that runs out stops, as on a
real device; `user_plays` is another app changing the track). Faults are switchable:
`fault(status, path=...)` answers the next matching requests with an error (Retry-After
and reasons included), `delay(...)` makes one slow, `expire_tokens()` makes every issued
access token stale.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

CLIENT_ID = "setlisttestclient0000000000000000"


@dataclass
class Fault:
    status: int
    path: str = ""
    method: str = ""
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    message: str = ""
    delay: float = 0.0


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str
    at: float = 0.0  # the fake's `now()` when the request arrived


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class FakeSpotify:
    """Catalogue, user state and fault switches behind a loopback HTTP server."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.client_id = CLIENT_ID
        self.user = {
            "id": "therapist",
            "display_name": "Dr Test",
            "type": "user",
            "uri": "spotify:user:therapist",
            "external_urls": {"spotify": "https://open.spotify.com/user/therapist"},
        }
        self.tracks: dict[str, dict[str, Any]] = {}
        self.albums: dict[str, dict[str, Any]] = {}
        self.album_tracks: dict[str, list[str]] = {}
        self.artists: dict[str, dict[str, Any]] = {}
        self.playlists: dict[str, dict[str, Any]] = {}
        self.saved: list[str] = []
        self.features: dict[str, dict[str, Any]] | None = None  # None: 403 (deprecated)
        self.devices: list[dict[str, Any]] = []
        self.player: dict[str, Any] = {"device_id": None, "is_playing": False, "uri": None}
        self.premium = True
        self.legacy = False
        self.live = False  # progress advances on `now` while playing
        self.now: Callable[[], float] = time.monotonic
        self.codes: dict[str, dict[str, str]] = {}
        self.access: dict[str, float] = {}
        self.refresh: dict[str, str] = {}  # refresh token -> scope
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.fake = self  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def api_url(self) -> str:
        return self.base + "/v1/"

    @property
    def accounts_url(self) -> str:
        return self.base + "/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakeSpotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- switches ----------------------------------------------------------------------
    def fault(
        self, status: int, path: str = "", method: str = "", times: int = 1, **kw: Any
    ) -> None:
        """Answer the next `times` requests whose path contains `path` with `status`."""
        with self.lock:
            self.faults.append(Fault(status, path, method, times, **kw))

    def delay(self, path: str, seconds: float, times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(0, path, "", times, delay=seconds))

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.access:
                self.access[token] = 0.0

    def progress_ms(self) -> int:
        """Where the playing track is now (the stored progress unless `live`)."""
        with self.lock:
            p = self.player
            ms = int(p.get("progress_ms", 0))
            if not (self.live and p["is_playing"] and p["uri"]):
                return ms
            ms += int((self.now() - p.get("since", self.now())) * 1000)
            duration = self.tracks[p["uri"].rsplit(":", 1)[-1]]["duration_ms"]
            if ms >= duration:  # the track ran out: a single-track play stops
                p.update(is_playing=False, progress_ms=0)
                return 0
            return ms

    def user_plays(self, uri: str, position_ms: int = 0) -> None:
        """Someone changes the track from another app (the active device keeps it)."""
        with self.lock:
            self.player.update(uri=uri, is_playing=True, progress_ms=position_ms, since=self.now())

    def user_sets_volume(self, percent: int) -> None:
        """Someone turns the playing device up or down from another app."""
        with self.lock:
            for d in self.devices:
                if d["id"] == self.player["device_id"]:
                    d["volume_percent"] = percent

    def calls(self, method: str = "", path: str = "") -> list[Logged]:
        with self.lock:
            return [
                c
                for c in self.log
                if (not method or c.method == method) and (not path or re.search(path, c.path))
            ]

    def browser(self, url: str, *, deny: bool = False) -> None:
        """What a browser does with the authorize URL: follow Spotify's redirect to the
        app's loopback listener (the user 'agrees', or refuses with `deny`)."""
        if deny:
            url += "&deny=1"
        with requests.Session() as s:
            s.get(url, timeout=10).close()

    # -- catalogue -----------------------------------------------------------------------
    def add_artist(self, artist_id: str, name: str, genres: tuple[str, ...] = ()) -> None:
        self.artists[artist_id] = {
            "id": artist_id,
            "name": name,
            "genres": list(genres),
            "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        }

    def add_album(self, album_id: str, name: str, artist_id: str, year: int = 2020) -> None:
        self.albums[album_id] = {
            "id": album_id,
            "name": name,
            "album_type": "album",
            "type": "album",
            "uri": f"spotify:album:{album_id}",
            "artists": [self._artist_ref(artist_id)],
            "release_date": f"{year}-03-01",
            "release_date_precision": "day",
            "total_tracks": 0,
            "images": [],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
        }
        self.album_tracks.setdefault(album_id, [])

    def add_track(
        self,
        track_id: str,
        name: str,
        artist_id: str,
        album_id: str,
        *,
        duration_ms: int = 300_000,
        isrc: str = "",
        explicit: bool = False,
        playable: bool = True,
        popularity: int | None = None,
    ) -> str:
        album_tracks = self.album_tracks.setdefault(album_id, [])
        album_tracks.append(track_id)
        self.albums[album_id]["total_tracks"] = len(album_tracks)
        t: dict[str, Any] = {
            "id": track_id,
            "name": name,
            "type": "track",
            "uri": f"spotify:track:{track_id}",
            "href": f"{self.base}/v1/tracks/{track_id}",
            "artists": [self._artist_ref(artist_id)],
            "duration_ms": duration_ms,
            "explicit": explicit,
            "is_local": False,
            "disc_number": 1,
            "track_number": len(album_tracks),
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
            "_playable": playable,
        }
        if isrc:
            t["external_ids"] = {"isrc": isrc}
        if popularity is not None:
            t["popularity"] = popularity
        self.tracks[track_id] = t
        return t["uri"]

    def add_playlist(
        self, playlist_id: str, name: str, track_ids: list[str], owner: str = ""
    ) -> None:
        self.playlists[playlist_id] = {
            "id": playlist_id,
            "name": name,
            "description": "",
            "public": False,
            "collaborative": False,
            "owner": {"id": owner or self.user["id"], "type": "user"},
            "snapshot_id": _b64(secrets.token_bytes(9)),
            "uri": f"spotify:playlist:{playlist_id}",
            "external_urls": {"spotify": f"https://open.spotify.com/playlist/{playlist_id}"},
            "entries": [("track", t) for t in track_ids],
        }

    def add_device(
        self, device_id: str, name: str, *, active: bool = False, volume: bool = True
    ) -> None:
        self.devices.append(
            {
                "id": device_id,
                "name": name,
                "type": "Computer" if volume else "Smartphone",
                "is_active": active,
                "is_private_session": False,
                "is_restricted": False,
                "volume_percent": 60 if volume else None,
                "supports_volume": volume,
            }
        )

    def _artist_ref(self, artist_id: str) -> dict[str, Any]:
        a = self.artists.get(artist_id, {"name": artist_id})
        return {
            "id": artist_id,
            "name": a["name"],
            "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
        }

    # -- JSON shapes ---------------------------------------------------------------------
    def full_track(self, track_id: str, market: bool) -> dict[str, Any]:
        t = self.tracks[track_id]
        out = {k: v for k, v in t.items() if not k.startswith("_")}
        album_id = next(a for a, ids in self.album_tracks.items() if track_id in ids)
        out["album"] = dict(self.albums[album_id])
        if market:
            out["is_playable"] = t["_playable"]
            if not t["_playable"]:
                out["restrictions"] = {"reason": "market"}
        return out

    def simple_track(self, track_id: str, market: bool) -> dict[str, Any]:
        out = self.full_track(track_id, market)
        for key in ("album", "external_ids", "popularity"):
            out.pop(key, None)
        return out

    def page(
        self, items: list[Any], path: str, query: dict[str, str], default_limit: int = 20
    ) -> dict[str, Any]:
        limit = int(query.get("limit", default_limit))
        offset = int(query.get("offset", 0))
        chunk = items[offset : offset + limit]

        def link(at: int) -> str:
            q = dict(query, offset=str(at), limit=str(limit))
            return f"{self.base}{path}?{urllib.parse.urlencode(q)}"

        return {
            "href": link(offset),
            "items": chunk,
            "limit": limit,
            "offset": offset,
            "total": len(items),
            "next": link(offset + limit) if offset + limit < len(items) else None,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
        }

    def playlist_json(self, p: dict[str, Any], full: bool, query: dict[str, str]) -> dict[str, Any]:
        out = {k: v for k, v in p.items() if k != "entries"}
        key = "tracks" if self.legacy else "items"
        if full:
            path = f"/v1/playlists/{p['id']}/{key}"
            out[key] = self.page(self.playlist_entries(p, bool(query.get("market"))), path, {}, 100)
        else:
            out[key] = {
                "href": f"{self.base}/v1/playlists/{p['id']}/{key}",
                "total": len(p["entries"]),
            }
        return out

    def playlist_entries(self, p: dict[str, Any], market: bool) -> list[dict[str, Any]]:
        out = []
        for kind, ident in p["entries"]:
            entry: dict[str, Any] = {
                "added_at": "2026-04-01T10:00:00Z",
                "added_by": {"id": self.user["id"]},
                "is_local": kind == "local",
            }
            if kind == "track":
                obj: Any = self.full_track(ident, market)
            elif kind == "episode":
                obj = {
                    "id": ident,
                    "type": "episode",
                    "uri": f"spotify:episode:{ident}",
                    "name": "Talk",
                }
            elif kind == "local":
                obj = {
                    "id": None,
                    "type": "track",
                    "uri": f"spotify:local:::{ident}:200",
                    "is_local": True,
                    "name": ident,
                }
            else:  # a track removed from the catalogue
                obj = None
            entry["track" if self.legacy else "item"] = obj
            out.append(entry)
        return out

    # -- dispatch -------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.times > 0 and f.path in path and (not f.method or f.method == method):
                    f.times -= 1
                    return f
        return None

    def authorised(self, header: str) -> bool:
        token = header.removeprefix("Bearer ").strip()
        with self.lock:
            return self.access.get(token, 0.0) > time.time()

    def issue(self, scope: str) -> dict[str, Any]:
        access, refresh = _b64(secrets.token_bytes(24)), _b64(secrets.token_bytes(24))
        with self.lock:
            self.access[access] = time.time() + 3600
            self.refresh[refresh] = scope
        return {
            "access_token": access,
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": 3600,
            "refresh_token": refresh,
        }


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a slow answer (the timeout tests) is not news."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _error(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"status": status, "message": message}
    if reason:
        err["reason"] = reason
    return {"error": err}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeSpotify:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing ------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            ctype = self.headers.get("Content-Type", "")
            if "x-www-form-urlencoded" in ctype:
                body = {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
        fake = self.fake
        with fake.lock:
            fake.log.append(
                Logged(
                    method,
                    path,
                    query,
                    body,
                    self.headers.get("Authorization", ""),
                    fake.now(),
                )
            )
        fault = fake.take_fault(method, path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
            fault = None
        if fault is not None:
            self._send(
                fault.status,
                _error(fault.status, fault.message or f"fault {fault.status}", fault.reason),
                fault.headers,
            )
            return
        if path == "/authorize":
            self._authorize(query)
            return
        if path == "/api/token":
            self._token(body or {})
            return
        if not path.startswith("/v1/"):
            self._send(404, _error(404, "Service not found"))
            return
        if not fake.authorised(self.headers.get("Authorization", "")):
            self._send(401, _error(401, "The access token expired"))
            return
        try:
            self._api(method, path[3:].rstrip("/") or "/", query, body)
        except KeyError:
            self._send(404, _error(404, "Resource not found"))

    # -- accounts -------------------------------------------------------------------------
    def _authorize(self, q: dict[str, str]) -> None:
        fake = self.fake
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != fake.client_id or q.get("response_type") != "code":
            self._send(400, {"error": "invalid_client"})
            return
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            self._send(400, {"error": "invalid_request", "error_description": "PKCE required"})
            return
        params: dict[str, str] = {}
        if q.get("deny"):
            params["error"] = "access_denied"
        else:
            code = _b64(secrets.token_bytes(16))
            with fake.lock:
                fake.codes[code] = {
                    "challenge": q["code_challenge"],
                    "redirect_uri": redirect,
                    "scope": q.get("scope", ""),
                }
            params["code"] = code
        if "state" in q:
            params["state"] = q["state"]
        self._send(302, None, {"Location": f"{redirect}?{urllib.parse.urlencode(params)}"})

    def _token(self, form: dict[str, str]) -> None:
        fake = self.fake
        if form.get("client_id") != fake.client_id:
            self._send(400, {"error": "invalid_client", "error_description": "Invalid client"})
            return
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with fake.lock:
                info = fake.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if (
                info is None
                or info["redirect_uri"] != form.get("redirect_uri")
                or _b64(hashlib.sha256(verifier.encode()).digest()) != info["challenge"]
            ):
                self._send(
                    400,
                    {"error": "invalid_grant", "error_description": "Invalid authorization code"},
                )
                return
            self._send(200, fake.issue(info["scope"]))
            return
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            with fake.lock:
                scope = fake.refresh.pop(token, None)  # PKCE refresh tokens rotate
            if scope is None:
                self._send(
                    400, {"error": "invalid_grant", "error_description": "Refresh token revoked"}
                )
                return
            self._send(200, fake.issue(scope))
            return
        self._send(400, {"error": "unsupported_grant_type"})

    # -- the Web API -------------------------------------------------------------------------
    def _api(self, method: str, path: str, q: dict[str, str], body: Any) -> None:
        fake = self.fake
        market = bool(q.get("market"))
        full = "/v1" + path
        if method == "GET" and path == "/me":
            self._send(200, fake.user)
        elif method == "GET" and path == "/me/playlists":
            items = [fake.playlist_json(p, False, q) for p in fake.playlists.values()]
            self._send(200, fake.page(items, full, q))
        elif method == "POST" and path == "/me/playlists":
            pid = _b64(secrets.token_bytes(16))[:22].replace("-", "a").replace("_", "b")
            fake.add_playlist(pid, body["name"], [])
            p = fake.playlists[pid]
            p["public"] = bool(body.get("public", True))
            p["description"] = body.get("description", "")
            self._send(201, fake.playlist_json(p, True, q))
        elif m := re.fullmatch(r"/playlists/(\w+)", path):
            p = fake.playlists[m.group(1)]
            if method == "GET":
                self._send(200, fake.playlist_json(p, True, q))
            elif method == "PUT":
                for key in ("name", "description", "public"):
                    if key in body:
                        p[key] = body[key]
                self._send(200, None)
            else:
                self._send(405, _error(405, "Method not allowed"))
        elif m := re.fullmatch(r"/playlists/(\w+)/(items|tracks)", path):
            p = fake.playlists[m.group(1)]
            if m.group(2) == "tracks" and not fake.legacy:
                self._send(403, _error(403, "Forbidden"))
                return
            if method == "GET":
                self._send(200, fake.page(fake.playlist_entries(p, market), full, q, 100))
                return
            uris = body.get("uris", []) if isinstance(body, dict) else list(body or [])
            if len(uris) > 100:
                self._send(400, _error(400, "You can add a maximum of 100 tracks per request."))
                return
            ids = [u.rsplit(":", 1)[-1] for u in uris]
            for i in ids:
                fake.tracks[i]  # an unknown id is a 404 (KeyError)
            if method == "PUT":
                p["entries"] = [("track", i) for i in ids]
            elif method == "POST":
                at = int(q["position"]) if "position" in q else len(p["entries"])
                p["entries"][at:at] = [("track", i) for i in ids]
            p["snapshot_id"] = _b64(secrets.token_bytes(9))
            self._send(200 if method == "PUT" else 201, {"snapshot_id": p["snapshot_id"]})
        elif method == "GET" and (m := re.fullmatch(r"/albums/(\w+)", path)):
            aid = m.group(1)
            album = dict(fake.albums[aid])
            tracks = [fake.simple_track(t, market) for t in fake.album_tracks[aid]]
            album["tracks"] = fake.page(
                tracks,
                f"/v1/albums/{aid}/tracks",
                {"market": q.get("market", "")} if market else {},
                50,
            )
            self._send(200, album)
        elif method == "GET" and (m := re.fullmatch(r"/albums/(\w+)/tracks", path)):
            aid = m.group(1)
            tracks = [fake.simple_track(t, market) for t in fake.album_tracks[aid]]
            self._send(200, fake.page(tracks, full, q, 50))
        elif method == "GET" and (m := re.fullmatch(r"/tracks/(\w+)", path)):
            self._send(200, fake.full_track(m.group(1), market))
        elif method == "GET" and (m := re.fullmatch(r"/artists/(\w+)", path)):
            self._send(200, fake.artists[m.group(1)])
        elif method == "GET" and path == "/me/tracks":
            items = [
                {"added_at": "2026-04-02T09:00:00Z", "track": fake.full_track(t, market)}
                for t in fake.saved
            ]
            self._send(200, fake.page(items, full, q))
        elif method == "GET" and path == "/audio-features":
            if fake.features is None:
                self._send(403, _error(403, "Forbidden"))
                return
            ids = q.get("ids", "").split(",")
            self._send(200, {"audio_features": [fake.features.get(i) for i in ids]})
        elif method == "GET" and path == "/search":
            limit = int(q.get("limit", 10))
            if limit > 10:
                self._send(400, _error(400, "Invalid limit"))
                return
            found = [fake.full_track(t, market) for t in _search(fake, q.get("q", ""))]
            self._send(200, {"tracks": fake.page(found, full, q, 10)})
        elif path.startswith("/me/player"):
            self._player(method, path, q, body)
        else:
            self._send(404, _error(404, "Service not found"))

    def _player(self, method: str, path: str, q: dict[str, str], body: Any) -> None:
        fake = self.fake
        if method == "GET" and path == "/me/player/devices":
            self._send(200, {"devices": fake.devices})
            return
        if method == "GET" and path in ("/me/player", "/me/player/currently-playing"):
            # Playback state names the device (with its volume); "currently playing"
            # does not, as on the real API.
            p = fake.player
            if not p["uri"]:
                self._send(204)
                return
            tid = p["uri"].rsplit(":", 1)[-1]
            progress = fake.progress_ms()  # first: a track that ran out stops playing
            state = {
                "is_playing": p["is_playing"],
                "progress_ms": progress,
                "currently_playing_type": "track",
                "item": fake.full_track(tid, True),
            }
            if path == "/me/player":
                device = next((d for d in fake.devices if d["id"] == p["device_id"]), None)
                state.update(
                    device=dict(device or {"id": p["device_id"]}),
                    shuffle_state=False,
                    repeat_state="off",
                )
            self._send(200, state)
            return
        if not fake.premium:
            self._send(
                403, _error(403, "Player command failed: Premium required", "PREMIUM_REQUIRED")
            )
            return
        active = next((d for d in fake.devices if d["is_active"]), None)
        if method == "PUT" and path == "/me/player":
            target = next((d for d in fake.devices if d["id"] == body["device_ids"][0]), None)
            if target is None:
                self._send(404, _error(404, "Device not found"))
                return
            for d in fake.devices:
                d["is_active"] = d is target
            fake.player.update(device_id=target["id"], is_playing=bool(body.get("play")))
            self._send(204)
            return
        device = next((d for d in fake.devices if d["id"] == q.get("device_id")), None)
        if q.get("device_id") and device is None:
            self._send(404, _error(404, "Device not found"))
            return
        device = device or active
        if device is None:
            self._send(
                404,
                _error(404, "Player command failed: No active device found", "NO_ACTIVE_DEVICE"),
            )
            return
        if method == "PUT" and path == "/me/player/play":
            uris = (body or {}).get("uris") or []
            for d in fake.devices:
                d["is_active"] = d is device
            # Without uris or a position it is a resume: the track carries on where it was.
            default = 0 if uris else fake.progress_ms()
            fake.player.update(
                device_id=device["id"],
                is_playing=True,
                uri=uris[0] if uris else fake.player["uri"],
                progress_ms=(body or {}).get("position_ms", default),
                since=fake.now(),
            )
            self._send(204)
        elif method == "PUT" and path == "/me/player/pause":
            fake.player.update(progress_ms=fake.progress_ms(), is_playing=False)
            self._send(204)
        elif method == "PUT" and path == "/me/player/volume":
            if not device["supports_volume"]:
                self._send(
                    403, _error(403, "Cannot control device volume", "VOLUME_CONTROL_DISALLOW")
                )
                return
            device["volume_percent"] = int(q["volume_percent"])
            self._send(204)
        else:
            self._send(404, _error(404, "Service not found"))


def _search(fake: FakeSpotify, q: str) -> list[str]:
    if m := re.fullmatch(r"isrc:(\S+)", q.strip()):
        isrc = m.group(1).upper()
        return [t for t, d in fake.tracks.items() if d.get("external_ids", {}).get("isrc") == isrc]
    fields = dict(re.findall(r'(track|artist):"([^"]*)"', q))
    rest = re.sub(r'(track|artist):"[^"]*"', "", q).strip().casefold()
    out = []
    for tid, d in fake.tracks.items():
        names = " ".join(a["name"] for a in d["artists"]).casefold()
        if "track" in fields and fields["track"].casefold() not in d["name"].casefold():
            continue
        if "artist" in fields and fields["artist"].casefold() not in names:
            continue
        if rest and rest not in d["name"].casefold() and rest not in names:
            continue
        out.append(tid)
    return out
