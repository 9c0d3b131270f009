"""`setlist play`, `setlist control` and `setlist log show`: the live-session commands.

Kept apart from `cli.py` so the playback stack (libVLC, the HTTP channel, the terminal
view) loads only when a session is played; `cli.py` registers these commands. Errors
are `SetlistError`s, turned into one line by the CLI's error boundary.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from setlist.cliutil import fade_shape_option, session_time
from setlist.timeline import FadeShape


@click.command("play")
@click.argument("playlist", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--start-at",
    metavar="MM:SS",
    callback=session_time,
    help="Start this far into the session (MM:SS, H:MM:SS or 20m).",
)
@click.option("--device", metavar="NAME", help="Audio output device (see --list-devices).")
@click.option("--list-devices", is_flag=True, help="List the audio output devices and exit.")
@click.option(
    "--resume",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="LOG",
    help="Pick up a session from its log (same track and offset) and append to that log.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Session log file (default: NAME.YYYYmmdd-HHMM.session.jsonl beside the setlist).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the control channel on 127.0.0.1 (0 picks a free one).",
)
@click.option("--no-channel", is_flag=True, help="Do not open the local control channel.")
@fade_shape_option
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SETLIST_DB",
    help="Library index for re-planning (default: the platform data folder; env SETLIST_DB).",
)
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Listener profile the session was built for; re-plans keep its vetoes (repeat).",
)
@click.option(
    "--backend",
    type=click.Choice(["vlc", "spotify"]),
    default="vlc",
    show_default=True,
    help="Play local files with libVLC, or Spotify tracks on a Spotify Connect device.",
)
@click.option("--aout", hidden=True, help="libVLC audio output module (tests: adummy).")
def play(
    playlist: Path | None,
    start_at: float | None,
    device: str | None,
    list_devices: bool,
    resume: Path | None,
    log_path: Path | None,
    port: int,
    no_channel: bool,
    fade_shape: str,
    db: Path | None,
    profiles: tuple[Path, ...],
    backend: str,
    aout: str | None,
) -> None:
    """Play a built session (NAME.setlist.yaml) live, with therapist controls.

    Keys: space pause/resume, n skip, +/- volume, s/S softer/stronger, e/E extend or
    shorten the phase, i integration, q fade out and end, ? help. Another terminal can
    send the same commands with 'setlist control'. Ctrl-C fades out and ends.
    """
    from setlist.playback import PlayRequest
    from setlist.playback import list_devices as devices
    from setlist.playback import play as run

    if list_devices and backend == "spotify":
        from setlist.cli_spotify import devices as spotify_devices

        click.get_current_context().invoke(spotify_devices, as_json=False)
        return
    if list_devices:
        found = devices(aout)
        if not found:
            click.echo("no audio output devices found")
        for ident, description in found:
            click.echo(f"{ident}\t{description}" if description else ident)
        return
    if start_at is not None and resume is not None:
        raise click.UsageError("--start-at and --resume cannot be combined")
    if playlist is None and resume is None:
        raise click.UsageError("give the setlist to play (NAME.setlist.yaml), or --resume LOG")
    run(
        PlayRequest(
            playlist=playlist,
            start_at=start_at,
            device=device,
            resume=resume,
            log=log_path,
            port=port,
            channel=not no_channel,
            shape=FadeShape(fade_shape),
            aout=aout,
            db=db,
            profiles=profiles,
            backend=backend,
        )
    )


@click.command("control")
@click.argument("command", nargs=-1, required=True)
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="LOG",
    help="The running session's log (its control file sits beside it).",
)
@click.option("--url", help="The channel's URL, e.g. http://127.0.0.1:8765 (with --token).")
@click.option("--token", help="The channel's token (with --url).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def control(
    command: tuple[str, ...],
    log_path: Path | None,
    url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Send COMMAND to a running session and print its status.

    COMMAND is one of: pause, resume, toggle, skip, louder [DB], quieter [DB],
    softer [STEP], stronger [STEP], extend [MIN], shorten [MIN], integration,
    fade-out [SEC], status. Without --log or --url, the session most recently
    started by this user is used.
    """
    from setlist.channel import fetch_status, find_endpoint, send_command, status_from_dict
    from setlist.controls import Action, parse_command
    from setlist.liveview import status_line

    text = " ".join(command)
    parsed = parse_command(text)  # a typo is reported before anything is sent
    endpoint = find_endpoint(log_path, url, token)
    if parsed.action is Action.STATUS:
        answer = fetch_status(endpoint)
    else:
        answer = send_command(endpoint, text)
    if as_json:
        click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        click.echo(status_line(status_from_dict(answer)))


@click.group("log")
def log() -> None:
    """Read session logs."""


@log.command("show")
@click.argument("path", metavar="LOG", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def log_show(path: Path, as_json: bool) -> None:
    """Print a session log as a timeline for clinical notes."""
    from setlist.errors import PlaybackError
    from setlist.sessionlog import format_log, read_log_checked

    if not path.is_file():
        raise PlaybackError(f"{path}: no such session log")
    reading = read_log_checked(path)
    events = list(reading.events)
    if as_json:
        click.echo(json.dumps(events, indent=2, ensure_ascii=False))
    else:
        for line in format_log(events):
            click.echo(line)
    if reading.problems:  # shown in full, but a damaged log never passes for a whole one
        for problem in reading.problems:
            click.echo(f"setlist: damaged session log: {problem}", err=True)
        raise SystemExit(1)


COMMANDS = (play, control, log)
