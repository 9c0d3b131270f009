"""`setlist spotify ...`: sign in, import into the library, export sessions, list devices.

A click group registered on the main CLI with `cli.add_command(spotify)`. It carries its
own copy of the error boundary (one line per `SetlistError`, its hint, its exit code;
tracebacks only with `--debug`) so it behaves the same when invoked on its own, as the
tests do. Heavy modules (spotipy, requests, the index) load inside the commands.
"""

from __future__ import annotations

import datetime as dt
import webbrowser
from pathlib import Path
from typing import Any

import click

from setlist.cliutil import SetlistGroup, db_option, emit_json, json_option
from setlist.errors import SpotifyAuthError


@click.group(cls=SetlistGroup)
def spotify() -> None:
    """Use Spotify: sign in, import tracks into the library, export sessions as playlists.

    Needs a Spotify app of your own (client id and redirect URI); see docs/spotify.md.
    """


@spotify.command()
@click.option(
    "--client-id", help="Your Spotify app's client id (remembered; env SPOTIPY_CLIENT_ID)."
)
@click.option(
    "--redirect-uri",
    help="The redirect URI registered in the app (default http://127.0.0.1:8888/callback).",
)
@click.option("--no-browser", is_flag=True, help="Only print the address; open it yourself.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds to wait for the browser sign-in.",
)
def login(
    client_id: str | None, redirect_uri: str | None, no_browser: bool, timeout: float
) -> None:
    """Sign in to Spotify in the browser (Authorization Code with PKCE; no secret needed)."""
    from setlist.sources import spotify as sp

    settings = sp.load_settings(client_id=client_id, redirect_uri=redirect_uri)
    if not settings.client_id:
        raise SpotifyAuthError(
            "no Spotify client id",
            hint="create an app at https://developer.spotify.com/dashboard, then "
            "'setlist spotify login --client-id ID'",
        )
    sp.parse_redirect(settings.redirect_uri)

    def announce(url: str) -> None:
        click.echo("Sign in to Spotify at this address (opening a browser):", err=True)
        click.echo(url, err=True)

    def open_url(url: str) -> None:
        if not no_browser:
            webbrowser.open(url)

    me = sp.login(settings, open_url=open_url, announce=announce, timeout=timeout)
    sp.save_settings(settings)
    click.echo(f"signed in to Spotify as {me.get('display_name') or me.get('id') or '?'}")


@spotify.command()
def logout() -> None:
    """Forget the saved Spotify sign-in on this computer."""
    from setlist.sources import spotify as sp

    if sp.logout(sp.load_settings()):
        click.echo("signed out of Spotify (saved token removed)")
    else:
        click.echo("not signed in to Spotify")


@spotify.command()
@json_option
def status(as_json: bool) -> None:
    """Show the Spotify app and sign-in in use (never the token itself)."""
    from setlist.errors import SpotifyError
    from setlist.sources import spotify as sp

    settings = sp.load_settings()
    info: dict[str, Any] = {
        "client_id": settings.client_id or None,
        "redirect_uri": settings.redirect_uri,
        "token_file": str(settings.token_path),
        **sp.token_status(settings),
    }
    if info["signed_in"] and settings.client_id:
        try:
            with sp.SpotifyClient(settings) as client:
                me = client.me()
            info["user"] = {"id": me.get("id"), "display_name": me.get("display_name")}
        except SpotifyError as exc:
            info["error"] = exc.message
    if as_json:
        emit_json(info)
        return
    click.echo(
        f"client id     {info['client_id'] or '(none: setlist spotify login --client-id ID)'}"
    )
    click.echo(f"redirect URI  {info['redirect_uri']}")
    if not info["signed_in"]:
        click.echo("signed in     no (setlist spotify login)")
        return
    user = info.get("user") or {}
    who = user.get("display_name") or user.get("id") or "?"
    click.echo(f"signed in     yes, as {who}" if user else "signed in     yes")
    if info.get("expires_at"):
        when = dt.datetime.fromtimestamp(info["expires_at"]).astimezone()
        click.echo(f"token         refreshed automatically; current one until {when:%H:%M}")
    if info.get("error"):
        click.echo(f"warning: {info['error']}", err=True)


@spotify.command("import")
@click.argument("sources", nargs=-1, required=True, metavar="URL|URI|liked|playlists...")
@db_option
@click.option("--refresh", is_flag=True, help="Re-read unchanged playlists and re-estimate tracks.")
@click.option("--no-genres", is_flag=True, help="Do not fetch artists' genres (fewer API calls).")
@json_option
def import_(
    sources: tuple[str, ...], db: Path | None, refresh: bool, no_genres: bool, as_json: bool
) -> None:
    """Import playlists, albums, tracks or your liked songs into the library.

    Incremental and all-or-nothing: unchanged playlists are skipped, and a failure
    part-way leaves the library as it was.
    """
    from setlist.library.index import Index
    from setlist.sources import spotify as sp
    from setlist.sources.spotify_sync import import_refs
    from setlist.sources.spotify_translate import parse_ref

    refs = [parse_ref(s) for s in sources]
    with sp.SpotifyClient(sp.load_settings()).require_sign_in() as client, Index.open(db) as index:
        report = import_refs(
            client,
            index,
            refs,
            refresh=refresh,
            genres=not no_genres,
            progress=(lambda m: None) if as_json else (lambda m: click.echo(m + " ...", err=True)),
        )
    if as_json:
        emit_json(report.to_dict())
        return
    for s in report.sources:
        extra = f", {s.skipped} skipped (episodes or local files)" if s.skipped else ""
        same = " (unchanged since the last import)" if s.unchanged else ""
        click.echo(f"{s.name or s.ref}: {s.tracks} tracks{extra}{same}")
    click.echo(
        f"imported: {report.new} new, {report.updated} updated, {report.unchanged} unchanged"
        + (f"; {report.unplayable} not playable in your market" if report.unplayable else "")
    )
    if report.audio_features == "refused":
        click.echo("audio features: refused by Spotify for this app; intensity estimated openly")
    if report.intensity:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(report.intensity.items()))
        click.echo(f"intensity from: {parts}")
    unknown = report.intensity.get("none", 0)
    if unknown:
        click.echo(
            f"note: {unknown} tracks have no intensity estimate and are left out of sessions "
            "until annotated: setlist library annotate ID --intensity 0.3",
            err=True,
        )


@spotify.command("export")
@click.argument("playlist", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="Playlist name (default: the session's file name).")
@click.option("--public", is_flag=True, help="Make the playlist public (default: private).")
@db_option
@json_option
def export(playlist: Path, name: str | None, public: bool, db: Path | None, as_json: bool) -> None:
    """Export a built session (NAME.setlist.yaml) as a Spotify playlist in session order.

    Exporting again updates the same playlist (its id is kept in NAME.spotify.json).
    Local tracks are matched by ISRC, then artist and title; unmatched ones are listed.
    """
    from setlist.exports import load_setlist
    from setlist.library.index import Index, default_db_path
    from setlist.sources import spotify as sp
    from setlist.sources.spotify_sync import export_setlist

    session = load_setlist(playlist)
    db_path = db or default_db_path()
    index = Index.open(db_path) if db_path.exists() else None
    try:
        with sp.SpotifyClient(sp.load_settings()).require_sign_in() as client:
            report = export_setlist(client, index, session, playlist, name=name, public=public)
    finally:
        if index is not None:
            index.close()
    if as_json:
        emit_json(report.to_dict())
        return
    found = sum(1 for m in report.matches if m.uri)
    verb = "created" if report.created else "updated"
    click.echo(
        f"{verb} Spotify playlist '{report.name}': {found} of {len(report.matches)} tracks "
        f"in session order"
    )
    click.echo(report.url)
    for m in report.unmatched:
        click.echo(f"warning: not found on Spotify, left out: #{m.position} {m.label}", err=True)


@spotify.command()
@json_option
def devices(as_json: bool) -> None:
    """List Spotify Connect devices (where a session could play; '*' marks the active one)."""
    from dataclasses import asdict

    from setlist.sources import spotify as sp

    with sp.SpotifyClient(sp.load_settings()).require_sign_in() as client:
        found = client.devices()
    if as_json:
        emit_json([asdict(d) for d in found])
        return
    if not found:
        click.echo("no Spotify devices online: open Spotify on the computer or speaker to use")
        return
    for d in found:
        volume = (
            f"volume {d.volume_percent}%"
            if d.supports_volume and d.volume_percent is not None
            else "no volume control"
        )
        mark = "*" if d.is_active else " "
        click.echo(f"{mark} {d.name}  ({d.type}, {volume})")
