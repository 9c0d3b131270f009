"""The Spotify Web API client: sign-in (Authorization Code + PKCE), calls, faults.

The only module that imports spotipy. Why it wraps spotipy rather than exposing it:

- **Faults become one-line errors.** spotipy gets our own `requests` session with no
  retry adapter, so a 429 surfaces at once (spotipy's own retry would sleep the whole
  `Retry-After`, which can be an hour). We wait ourselves, only up to a cap, and say so
  when Spotify asks for longer; 5xx and timeouts get a few retries with backoff; a 401
  refreshes the token once, then asks for a new sign-in; offline is one line.
- **Tokens stay private.** The token cache lives in the user config folder, is written
  atomically with mode 0600 (a rotated PKCE refresh token is persisted the moment it
  arrives) and is never printed or logged: spotipy's debug log lines that carry tokens
  are redacted, and its error log lines are kept off the terminal.
- **Never interactive by surprise.** Without a saved sign-in a call fails with a hint to
  run `setlist spotify login` instead of spotipy prompting for a pasted URL.

`SpotifyClient` also carries the small Spotify Connect method set (devices, transfer,
start, pause, volume, what is playing) that a live Connect player builds on.
"""

from __future__ import annotations

import contextlib
import email.utils
import html
import json
import logging
import os
import re
import secrets
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
import requests
import spotipy
from spotipy.cache_handler import CacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError

from setlist.errors import (
    NoActiveDevice,
    PremiumRequired,
    RateLimited,
    SpotifyAuthError,
    SpotifyError,
    SpotifyUnavailable,
)
from setlist.fsutil import atomic_write_text
from setlist.sources.spotify_translate import SpotifyTrack, page_tracks, track_from_json

API_URL = "https://api.spotify.com/v1/"
ACCOUNTS_URL = "https://accounts.spotify.com/"
#: The redirect URI to register in the Spotify app (loopback IP: Spotify refuses
#: `localhost` since 2025).
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
#: Point the client at another Web API / accounts server (a local fake in tests).
ENV_API = "SETLIST_SPOTIFY_API"
ENV_ACCOUNTS = "SETLIST_SPOTIFY_ACCOUNTS"
ENV_CLIENT_ID = "SPOTIPY_CLIENT_ID"
ENV_REDIRECT_URI = "SPOTIPY_REDIRECT_URI"

#: What setlist asks to do: read the library and playlists, write its own playlists,
#: and control playback on a Connect device.
SCOPES = (
    "user-library-read",
    "playlist-read-private",
    "playlist-read-collaborative",
    "playlist-modify-private",
    "playlist-modify-public",
    "user-read-playback-state",
    "user-modify-playback-state",
    "user-read-currently-playing",
)
LOGIN_HINT = "run 'setlist spotify login'"
PAGE = 50
BATCH = 100

_T = TypeVar("_T")


# --- settings and the token cache --------------------------------------------------------


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir("setlist"))


@dataclass(frozen=True, slots=True)
class Settings:
    """Where and how to reach Spotify; `max_wait` caps how long a Retry-After is honoured."""

    client_id: str
    redirect_uri: str = DEFAULT_REDIRECT_URI
    directory: Path = field(default_factory=config_dir)
    api_url: str = API_URL
    accounts_url: str = ACCOUNTS_URL
    timeout: float = 10.0
    attempts: int = 4
    max_wait: float = 30.0
    backoff: float = 0.5

    @property
    def token_path(self) -> Path:
        return self.directory / "spotify-token.json"

    @property
    def config_path(self) -> Path:
        return self.directory / "spotify.json"


def load_settings(
    *, client_id: str | None = None, redirect_uri: str | None = None, directory: Path | None = None
) -> Settings:
    """Settings from the arguments, else the environment, else `spotify.json` in the
    config folder (written by `setlist spotify login`)."""
    folder = directory or config_dir()
    stored: dict[str, Any] = {}
    path = folder / "spotify.json"
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            stored = data
    return Settings(
        client_id=(
            client_id or os.environ.get(ENV_CLIENT_ID) or str(stored.get("client_id") or "")
        ).strip(),
        redirect_uri=(
            redirect_uri
            or os.environ.get(ENV_REDIRECT_URI)
            or str(stored.get("redirect_uri") or "")
            or DEFAULT_REDIRECT_URI
        ).strip(),
        directory=folder,
        api_url=_slash(os.environ.get(ENV_API) or API_URL),
        accounts_url=_slash(os.environ.get(ENV_ACCOUNTS) or ACCOUNTS_URL),
    )


def save_settings(settings: Settings) -> None:
    """Remember the client id and redirect URI (neither is a secret) for later commands."""
    data = {"client_id": settings.client_id, "redirect_uri": settings.redirect_uri}
    _ensure_private_dir(settings.directory)
    atomic_write_text(settings.config_path, json.dumps(data, indent=2) + "\n", mode=0o600)


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _ensure_private_dir(folder: Path) -> None:
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)


class TokenCache(CacheHandler):  # type: ignore[misc]
    """spotipy's token cache as a private file: mode 0600, replaced atomically, so a
    rotated refresh token is never half-written or readable by other users."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_cached_token(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("access_token") else None

    def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
        _ensure_private_dir(self.path.parent)
        atomic_write_text(self.path, json.dumps(token_info), mode=0o600)

    def clear(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


# --- logging: spotipy logs request headers and token bodies at debug level ---------------

_SECRETS = re.compile(
    r"(Bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|((?:access_token|refresh_token|code_verifier|code)['\"]?\s*[:=]\s*['\"]?)[^'\",&\s}]+"
)


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or "") + "[redacted]", text)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


def _quiet_spotipy_logs() -> None:
    spotipy_log = logging.getLogger("spotipy")
    if not any(isinstance(h, logging.NullHandler) for h in spotipy_log.handlers):
        # A handler here keeps logging's last-resort stderr printer off: our errors
        # already say what went wrong, in one line.
        spotipy_log.addHandler(logging.NullHandler())
    for name in ("spotipy.client", "spotipy.oauth2"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _Redact) for f in log.filters):
            log.addFilter(_Redact())


_quiet_spotipy_logs()


# --- errors --------------------------------------------------------------------------------


class SpotifyRefused(SpotifyError):
    """Spotify answered a request with an error we do not retry (its HTTP status kept)."""

    def __init__(self, message: str, *, status: int, reason: str = "", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


def _retry_after(headers: Mapping[str, str] | None) -> float:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    if value is None:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else 1.0


def _api_message(exc: SpotifyException) -> str:
    text = str(exc.msg or "")
    text = text.split(":\n", 1)[-1].strip()  # spotipy prefixes the URL
    return text or f"HTTP {exc.http_status}"


def _refusal(exc: SpotifyException, what: str) -> SpotifyError:
    status, reason = exc.http_status, str(exc.reason or "")
    message = _api_message(exc)
    if status == 403 and (reason == "PREMIUM_REQUIRED" or "premium" in message.lower()):
        return PremiumRequired(
            f"Spotify Premium is required to {what}",
            hint="playback control through Spotify Connect needs a Premium account; "
            "import and export work without it",
        )
    if status == 404 and (reason == "NO_ACTIVE_DEVICE" or "active device" in message.lower()):
        return NoActiveDevice(
            f"no active Spotify device to {what}",
            hint="open Spotify on the room's computer or speaker and play anything for a "
            "moment, then 'setlist spotify devices'",
        )
    if status == 403 and reason == "VOLUME_CONTROL_DISALLOW":
        return SpotifyRefused(
            "this Spotify device does not let other apps set its volume",
            status=status,
            reason=reason,
            hint="phones and some speakers refuse; use a computer or a Connect speaker",
        )
    return SpotifyRefused(
        f"Spotify refused to {what} (HTTP {status}: {message})", status=status, reason=reason
    )


# --- the auth manager ------------------------------------------------------------------------


class _PKCE(spotipy.SpotifyPKCE):  # type: ignore[misc]
    """SpotifyPKCE aimed at our settings' accounts server, never prompting for input."""

    def __init__(self, settings: Settings, cache: TokenCache, session: requests.Session):
        super().__init__(
            client_id=settings.client_id,
            redirect_uri=settings.redirect_uri,
            scope=" ".join(SCOPES),
            cache_handler=cache,
            requests_session=session,
            requests_timeout=settings.timeout,
            open_browser=False,
        )
        self.OAUTH_AUTHORIZE_URL = settings.accounts_url + "authorize"
        self.OAUTH_TOKEN_URL = settings.accounts_url + "api/token"

    def get_authorization_code(self, response: str | None = None) -> str:
        if response:
            return str(super().get_authorization_code(response))
        raise SpotifyAuthError("not signed in to Spotify", hint=LOGIN_HINT)


# --- playback values for a Connect player -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    """A Spotify Connect device; phones usually report `supports_volume` False."""

    id: str
    name: str
    type: str
    is_active: bool
    volume_percent: int | None
    supports_volume: bool
    is_restricted: bool = False


@dataclass(frozen=True, slots=True)
class Playback:
    """What the active device is playing, as far as the Web API reports it (coarse)."""

    is_playing: bool
    uri: str
    progress: float
    duration: float
    device_id: str = ""
    volume: int | None = None  # the device's volume percent, when it has one


# --- the client ----------------------------------------------------------------------------


class SpotifyClient:
    """A signed-in Web API client with bounded retries; use as a context manager."""

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] | None = None) -> None:
        if not settings.client_id:
            raise SpotifyAuthError(
                "no Spotify client id",
                hint="create an app at developer.spotify.com, then "
                "'setlist spotify login --client-id ID' (or set SPOTIPY_CLIENT_ID)",
            )
        self.settings = settings
        # Looked up at call time, so a test can stand in for the clock.
        self.sleep = sleep if sleep is not None else (lambda seconds: time.sleep(seconds))
        self.cache = TokenCache(settings.token_path)
        self.session = requests.Session()
        self.auth = _PKCE(settings, self.cache, self.session)
        self.sp = spotipy.Spotify(
            auth_manager=self.auth,
            requests_session=self.session,
            requests_timeout=settings.timeout,
            retries=0,
            status_retries=0,
        )
        self.sp.prefix = settings.api_url

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SpotifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the fault policy --------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """`fn(*args, **kwargs)` under the fault policy; `what` completes "cannot ...".

        429: wait Retry-After when it is within `max_wait`, else fail saying how long
        Spotify asked for. 5xx, timeouts and dropped connections: up to `attempts` tries
        with doubling backoff. 401: refresh the token once, then ask for a new sign-in.
        """
        s = self.settings
        tries, refreshed, delay = 0, False, s.backoff
        while True:
            tries += 1
            last = tries >= s.attempts
            try:
                return fn(*args, **kwargs)
            except SpotifyException as exc:
                status = exc.http_status
                if status == 401 and not refreshed:
                    refreshed = True
                    tries -= 1
                    self._refresh()
                    continue
                if status == 401:
                    raise SpotifyAuthError(
                        "Spotify no longer accepts the saved sign-in", hint=LOGIN_HINT
                    ) from None
                if status == 429:
                    wait = _retry_after(exc.headers)
                    if wait > s.max_wait:
                        raise RateLimited(
                            f"Spotify's rate limit: it asks to wait {wait:.0f}s before we {what}",
                            retry_after=wait,
                            hint="try again later; development-mode apps have a low limit",
                        ) from None
                    if last:
                        raise RateLimited(
                            f"Spotify's rate limit: still refused after {tries} tries to {what}",
                            retry_after=wait,
                            hint="try again in a minute",
                        ) from None
                    self.sleep(wait)
                    continue
                if status >= 500:
                    if last:
                        raise SpotifyUnavailable(
                            f"Spotify failed {tries} times to {what} (HTTP {status})",
                            hint="Spotify may be having trouble; try again later",
                        ) from None
                    self.sleep(delay)
                    delay *= 2
                    continue
                raise _refusal(exc, what) from None
            except SpotifyOauthError as exc:
                raise self._auth_failure(exc) from None
            except requests.Timeout:
                if last:
                    raise SpotifyUnavailable(
                        f"Spotify did not answer in {s.timeout:g}s ({tries} tries) to {what}",
                        hint="check the network and try again",
                    ) from None
            except requests.ConnectionError:
                if last:
                    raise SpotifyUnavailable(
                        f"cannot reach Spotify to {what} (offline?)",
                        hint="check the network connection and try again",
                    ) from None
            self.sleep(delay)
            delay *= 2

    def _auth_failure(self, exc: SpotifyOauthError) -> SpotifyError:
        error = getattr(exc, "error", None) or "refused"
        return SpotifyAuthError(f"Spotify refused the saved sign-in ({error})", hint=LOGIN_HINT)

    def _refresh(self) -> None:
        token = self.cache.get_cached_token()
        if not token or not token.get("refresh_token"):
            raise SpotifyAuthError("not signed in to Spotify", hint=LOGIN_HINT)
        try:
            self.auth.refresh_access_token(token["refresh_token"])
        except SpotifyOauthError as exc:
            raise self._auth_failure(exc) from None

    def signed_in(self) -> bool:
        return self.cache.get_cached_token() is not None

    def require_sign_in(self) -> SpotifyClient:
        """Fail early, before any work, when there is no saved sign-in."""
        if not self.signed_in():
            raise SpotifyAuthError("not signed in to Spotify", hint=LOGIN_HINT)
        return self

    def _pages(self, what: str, first: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
        page = first
        while page:
            yield page
            if not page.get("next"):
                return
            page = self.call(what, self.sp.next, page)

    # -- reading ------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return dict(self.call("read your profile", self.sp.me) or {})

    def my_playlists(self) -> list[dict[str, Any]]:
        what = "list your playlists"
        first = self.call(what, self.sp.current_user_playlists, limit=PAGE)
        return [dict(p) for page in self._pages(what, first) for p in page.get("items") or ()]

    def playlist(self, playlist_id: str) -> dict[str, Any]:
        return dict(self.call("read the playlist", self.sp.playlist, playlist_id) or {})

    def playlist_tracks(self, playlist_id: str) -> tuple[list[SpotifyTrack], int]:
        what = "read the playlist's tracks"
        first = self.call(
            what,
            self.sp.playlist_items,
            playlist_id,
            limit=PAGE,
            market="from_token",
            additional_types=("track",),
        )
        return _collect(self._pages(what, first))

    def album(self, album_id: str) -> tuple[dict[str, Any], list[SpotifyTrack], int]:
        what = "read the album"
        album = dict(self.call(what, self.sp.album, album_id, market="from_token") or {})
        tracks, skipped = _collect(self._pages(what, album.get("tracks")), album)
        return album, tracks, skipped

    def saved_tracks(self) -> tuple[list[SpotifyTrack], int]:
        what = "read your liked songs"
        first = self.call(what, self.sp.current_user_saved_tracks, limit=PAGE, market="from_token")
        return _collect(self._pages(what, first))

    def track(self, track_id: str) -> SpotifyTrack | None:
        data = self.call("read the track", self.sp.track, track_id, market="from_token")
        return track_from_json(data)

    def artist(self, artist_id: str) -> dict[str, Any]:
        return dict(self.call("read the artist", self.sp.artist, artist_id) or {})

    def audio_features(self, track_ids: list[str]) -> dict[str, dict[str, Any]] | None:
        """Audio features by track id, or None when this app may not read them (the
        endpoint answers 403 for apps created after November 2024)."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(track_ids), BATCH):
            chunk = track_ids[start : start + BATCH]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    rows = self.call("read audio features", self.sp.audio_features, chunk)
            except SpotifyRefused as exc:
                if exc.status in (403, 404, 410):
                    return None
                raise
            for row in rows or ():
                if isinstance(row, Mapping) and row.get("id"):
                    out[str(row["id"])] = dict(row)
        return out

    def search_tracks(self, query: str, limit: int = 10) -> list[SpotifyTrack]:
        data = self.call(
            "search", self.sp.search, query, limit=limit, type="track", market="from_token"
        )
        tracks, _ = page_tracks((data or {}).get("tracks") or {})
        return tracks

    # -- writing playlists ----------------------------------------------------------------
    def create_playlist(self, name: str, *, public: bool, description: str) -> dict[str, Any]:
        return dict(
            self.call(
                "create the playlist",
                self.sp.current_user_playlist_create,
                name,
                public=public,
                description=description,
            )
            or {}
        )

    def find_playlist(self, playlist_id: str) -> dict[str, Any] | None:
        """The playlist, or None when it was deleted (unfollowed) or never existed."""
        try:
            data = self.playlist(playlist_id)
        except SpotifyRefused as exc:
            if exc.status in (403, 404):
                return None
            raise
        return data or None

    def update_playlist(
        self, playlist_id: str, *, name: str, public: bool, description: str
    ) -> None:
        self.call(
            "update the playlist",
            self.sp.playlist_change_details,
            playlist_id,
            name=name,
            public=public,
            description=description,
        )

    def replace_playlist_items(self, playlist_id: str, uris: list[str]) -> int:
        """Make the playlist hold exactly `uris` in order: a replace with the first 100,
        then adds of 100 at a time (the API's batch limit). Returns the calls made."""
        self.call("fill the playlist", self.sp.playlist_replace_items, playlist_id, uris[:BATCH])
        calls = 1
        for start in range(BATCH, len(uris), BATCH):
            self.call(
                "fill the playlist",
                self.sp.playlist_add_items,
                playlist_id,
                uris[start : start + BATCH],
            )
            calls += 1
        return calls

    # -- Spotify Connect (the seam for a live player) ------------------------------------
    def devices(self) -> list[Device]:
        data = self.call("list your Spotify devices", self.sp.devices) or {}
        out = []
        for d in data.get("devices") or ():
            volume = d.get("volume_percent")
            out.append(
                Device(
                    id=str(d.get("id") or ""),
                    name=str(d.get("name") or ""),
                    type=str(d.get("type") or ""),
                    is_active=bool(d.get("is_active")),
                    volume_percent=volume if isinstance(volume, int) else None,
                    supports_volume=bool(d.get("supports_volume", volume is not None)),
                    is_restricted=bool(d.get("is_restricted")),
                )
            )
        return out

    def find_device(self, name: str | None = None) -> Device:
        """The device called `name` (case-insensitive, or a unique prefix), else the
        active one, else the only one."""
        devices = self.devices()
        if not devices:
            raise NoActiveDevice(
                "no Spotify devices are online",
                hint="open Spotify on the room's computer or speaker, then try again",
            )
        if name:
            key = name.casefold()
            exact = [d for d in devices if d.name.casefold() == key or d.id == name]
            found = exact or [d for d in devices if d.name.casefold().startswith(key)]
            if len(found) == 1:
                return found[0]
            names = ", ".join(repr(d.name) for d in devices)
            raise NoActiveDevice(
                f"no single Spotify device matches {name!r}", hint=f"devices: {names}"
            )
        active = [d for d in devices if d.is_active]
        if active:
            return active[0]
        if len(devices) == 1:
            return devices[0]
        names = ", ".join(repr(d.name) for d in devices)
        raise NoActiveDevice("no Spotify device is active", hint=f"pick one with --device: {names}")

    def transfer(self, device_id: str, *, play: bool = False) -> None:
        self.call(
            "move playback to the device", self.sp.transfer_playback, device_id, force_play=play
        )

    def start_playback(
        self, uris: list[str], *, device_id: str | None = None, position: float = 0.0
    ) -> None:
        self.call(
            "start playback",
            self.sp.start_playback,
            device_id=device_id,
            uris=uris,
            position_ms=max(0, round(position * 1000)),
        )

    def pause(self, device_id: str | None = None) -> None:
        self.call("pause playback", self.sp.pause_playback, device_id=device_id)

    def set_volume(self, percent: float, device_id: str | None = None) -> None:
        value = int(min(100, max(0, round(percent))))
        self.call("set the volume", self.sp.volume, value, device_id=device_id)

    def playback(self) -> Playback | None:
        """What is playing now, and on which device at what volume, or None when nothing
        is (the API answers 204). The playback state (GET /me/player), not "currently
        playing": only the former names the device and its volume, for the same call."""
        data = self.call("read what is playing", self.sp.current_playback)
        if not data:
            return None
        item = data.get("item") or {}
        device = data.get("device") or {}
        volume = device.get("volume_percent")
        return Playback(
            is_playing=bool(data.get("is_playing")),
            uri=str(item.get("uri") or ""),
            progress=float(data.get("progress_ms") or 0) / 1000.0,
            duration=float(item.get("duration_ms") or 0) / 1000.0,
            device_id=str(device.get("id") or ""),
            volume=volume if isinstance(volume, int) and not isinstance(volume, bool) else None,
        )


def _collect(
    pages: Iterator[Mapping[str, Any]], album: Mapping[str, Any] | None = None
) -> tuple[list[SpotifyTrack], int]:
    tracks: list[SpotifyTrack] = []
    skipped = 0
    for page in pages:
        found, missed = page_tracks(page, album)
        tracks.extend(found)
        skipped += missed
    return tracks, skipped


# --- sign-in ---------------------------------------------------------------------------------


def parse_redirect(uri: str) -> tuple[int, str]:
    """(port, path) of a loopback redirect URI; Spotify accepts only `http://127.0.0.1:PORT`
    (or `[::1]`) for apps on the user's own machine."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1"):
        hint = "register and use http://127.0.0.1:8888/callback in the Spotify app"
        if parts.hostname == "localhost":
            hint = "Spotify no longer accepts 'localhost'; use 127.0.0.1 instead"
        raise SpotifyAuthError(
            f"redirect URI {uri!r} is not a loopback address like {DEFAULT_REDIRECT_URI}",
            hint=hint,
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise SpotifyAuthError(
            f"redirect URI {uri!r} needs a port, like {DEFAULT_REDIRECT_URI}",
            hint="register the same URI, port included, in the Spotify app",
        )
    return port, parts.path or "/"


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        if parts.path != self.server.path or not ({"code", "error"} & set(query)):
            self.send_error(404)
            return
        self.server.answer = {k: v[0] for k, v in query.items()}
        ok = "code" in query
        text = (
            "Signed in to Spotify. You can close this window and return to setlist."
            if ok
            else f"Spotify sign-in failed: {html.escape(query['error'][0])}"
        )
        body = f"<!DOCTYPE html><html><body><p>{text}</p></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # the query holds the authorization code: keep it out of the terminal


class _CallbackServer(HTTPServer):
    def __init__(self, port: int, path: str) -> None:
        self.path = path
        self.answer: dict[str, str] | None = None
        super().__init__(("127.0.0.1", port), _CallbackHandler)


def login(
    settings: Settings,
    *,
    open_url: Callable[[str], object],
    announce: Callable[[str], None],
    timeout: float = 300.0,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Sign in with Authorization Code + PKCE and save the token; returns the profile.

    Listens on the redirect URI's loopback port, `announce`s the authorize URL (for a
    browser on another screen) and `open_url`s it, waits up to `timeout` seconds for
    Spotify's redirect, checks the state, exchanges the code with the PKCE verifier.
    A port of 0 picks a free port (for tests; a real app must register its exact URI).
    """
    port, path = parse_redirect(settings.redirect_uri)
    try:
        server = _CallbackServer(port, path)
    except OSError as exc:
        raise SpotifyAuthError(
            f"cannot listen on 127.0.0.1:{port} for Spotify's answer ({exc.strerror or exc})",
            hint="close the program using that port, or register another redirect URI in "
            "the Spotify app and pass it with --redirect-uri",
        ) from None
    try:
        if port == 0:
            settings = replace(
                settings, redirect_uri=f"http://127.0.0.1:{server.server_address[1]}{path}"
            )
        state = secrets.token_urlsafe(16)
        client = SpotifyClient(settings, sleep=sleep)
        try:
            url = client.auth.get_authorize_url(state=state)
            announce(url)
            opener = threading.Thread(target=open_url, args=(url,), daemon=True)
            opener.start()
            answer = _await_answer(server, timeout)
            if answer.get("state") != state:
                raise SpotifyAuthError(
                    "Spotify's answer does not belong to this sign-in (state mismatch)",
                    hint="run 'setlist spotify login' again",
                )
            if "error" in answer:
                raise SpotifyAuthError(
                    f"Spotify sign-in was not completed ({answer['error']})",
                    hint="run 'setlist spotify login' again and accept the request",
                )
            client.call(
                "finish signing in",
                client.auth.get_access_token,
                code=answer["code"],
                check_cache=False,
            )
            opener.join(timeout=1.0)
            return client.me()
        finally:
            client.close()
    finally:
        server.server_close()


def _await_answer(server: _CallbackServer, timeout: float) -> dict[str, str]:
    server.timeout = 0.2
    deadline = time.monotonic() + timeout
    while server.answer is None:
        if time.monotonic() > deadline:
            raise SpotifyAuthError(
                f"no answer from Spotify within {timeout:.0f}s",
                hint="open the printed address in a browser on this machine, or run "
                "'setlist spotify login' again",
            )
        server.handle_request()
    return server.answer


def logout(settings: Settings) -> bool:
    """Forget the saved token; True if there was one."""
    return TokenCache(settings.token_path).clear()


def token_status(settings: Settings) -> dict[str, Any]:
    """What is known about the saved sign-in without showing any token."""
    token = TokenCache(settings.token_path).get_cached_token()
    if token is None:
        return {"signed_in": False}
    expires = token.get("expires_at")
    return {
        "signed_in": True,
        "expires_at": expires if isinstance(expires, int) else None,
        "scopes": sorted(str(token.get("scope") or "").split()),
        "refreshable": bool(token.get("refresh_token")),
    }
