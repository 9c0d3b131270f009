"""The Spotify Connect player against the fake Web API: what the device was told, and when.

spotipy's real HTTP code runs against `tests/fakespotify.py` on loopback. Sessions run on
a `FakeClock` shared by the conductor, the player and the fake server (whose progress
advances on it), and the conductor's `on_tick` waits for the player's worker to act on
each tick (`sync`), so every request lands at a known session time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from setlist.conductor import PAUSE_FADE, Conductor
from setlist.controls import Action, Command
from setlist.errors import NoActiveDevice, PremiumRequired
from setlist.players.base import Player, VoiceState
from setlist.players.spotify_connect import (
    HANDOFF,
    MIN_STEP,
    VOLUME_INTERVAL,
    SpotifyConnectPlayer,
    VolumeCurve,
    connect_player,
    track_uri,
    volume_percent,
)
from setlist.sessionlog import SessionLog, read_log
from setlist.sources import spotify as sp
from setlist.testing import FakeClock, make_track
from setlist.timeline import Cue, Timeline
from tests.fakespotify import CLIENT_ID, FakeSpotify, Logged

REF = 60  # the fake devices' volume when the session begins: the room's level


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSpotify]:
    with FakeSpotify() as server:
        server.add_artist("ar1", "Slow Rivers")
        server.add_album("al1", "Rivers", "ar1")
        for i in range(1, 6):
            server.add_track(f"tr{i}", f"River {i}", "ar1", "al1", duration_ms=120_000)
        monkeypatch.setenv(sp.ENV_API, server.api_url)
        monkeypatch.setenv(sp.ENV_ACCOUNTS, server.accounts_url)
        monkeypatch.setenv(sp.ENV_CLIENT_ID, CLIENT_ID)
        token = server.issue(" ".join(sp.SCOPES))
        token["expires_at"] = int(time.time()) + 3600
        sp.TokenCache(sp.load_settings().token_path).save_token_to_cache(token)
        yield server


@pytest.fixture
def clock(fake: FakeSpotify) -> FakeClock:
    c = FakeClock()
    fake.now = c.now  # the fake device's progress runs on session time too
    fake.live = True
    return c


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake: FakeSpotify, sleeps: Sleeps) -> Iterator[sp.SpotifyClient]:
    with sp.SpotifyClient(sp.load_settings(), sleep=sleeps) as c:
        yield c


def room(fake: FakeSpotify, *, volume: bool = True) -> None:
    fake.add_device("dev-room", "Session Room", active=True, volume=volume)


def cue(
    key: int,
    track: int,
    start: float,
    stop: float,
    *,
    offset: float = 0.0,
    fade_in: float = 0.0,
    fade_out: float = 0.0,
) -> Cue:
    t = replace(make_track(track, duration=120.0), uri=f"spotify:track:tr{track}")
    return Cue(key, t, "settling", start, stop, offset, fade_in, fade_out)


#: Three tracks, 8 s equal-power crossfades; the first joins 30 s into its file.
TIMELINE = Timeline(
    (
        cue(0, 1, 0.0, 20.0, offset=30.0, fade_in=2.0, fade_out=8.0),
        cue(1, 2, 12.0, 40.0, fade_in=8.0, fade_out=8.0),
        cue(2, 3, 32.0, 50.0, fade_in=8.0, fade_out=4.0),
    )
)


def handoff_time(timeline: Timeline, out: int, into: int, threshold: float) -> float:
    """First session time the outgoing gain is below `threshold` times the incoming one:
    where the player should start the incoming track (a tick later at most)."""
    a, b = timeline.cue(out), timeline.cue(into)
    t = np.arange(b.start, a.stop + 0.01, 0.001)
    return float(t[np.argmax(a.gain_at(t) < threshold * b.gain_at(t))])


def run(
    player: SpotifyConnectPlayer, clock: FakeClock, timeline: Timeline, log: Path
) -> tuple[float, list[tuple[float, int | None, float | None]]]:
    """Run the whole session; returns the clock time it began and, per tick, the session
    time, the current cue and the player's position for it."""
    conductor = Conductor(timeline, player, clock, log=SessionLog.create(log, {"setlist": "t"}))
    seen: list[tuple[float, int | None, float | None]] = []

    def after_tick(status: object) -> None:
        assert player.sync(), "the worker did not keep up"
        t = conductor.session_time
        current = conductor.timeline.current(t)
        key = current.key if current is not None else None
        seen.append((t, key, player.position(key) if key is not None else None))

    conductor.on_tick = after_tick
    t0 = clock.now()
    conductor.run()
    return t0, seen


def plays(fake: FakeSpotify) -> list[Logged]:
    return fake.calls("PUT", r"/me/player/play$")


def volumes(fake: FakeSpotify) -> list[tuple[float, int]]:
    return [
        (c.at, int(c.query["volume_percent"])) for c in fake.calls("PUT", r"/me/player/volume$")
    ]


def faults_in(log: Path) -> list[dict[str, object]]:
    return [e for e in read_log(log) if e["kind"] == "fault"]


# --- the mapping -----------------------------------------------------------------------------


def test_volume_mapping_is_relative_to_the_room_level_and_never_louder() -> None:
    assert volume_percent(1.0, REF) == REF
    assert volume_percent(2.0, REF) == REF  # a quiet track's boost is clamped to the room
    assert volume_percent(0.0, REF) == 0 and volume_percent(float("nan"), REF) == 0
    assert volume_percent(0.125, 100) == 50  # cubic: -18 dB at half the scale
    assert volume_percent(0.1, 100, VolumeCurve.LOG) == 67  # -20 dB of a 60 dB range
    g = np.linspace(0, 1, 200)
    for curve in VolumeCurve:
        p = [volume_percent(float(x), REF, curve) for x in g]
        assert p == sorted(p) and p[-1] == REF


def test_only_spotify_tracks_are_playable_uris() -> None:
    assert (
        track_uri("spotify:track:4uLU6hMCjMI75M1A2tKUQC") == "spotify:track:4uLU6hMCjMI75M1A2tKUQC"
    )
    assert track_uri("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=x") == (
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC"
    )
    assert track_uri("file:///music/a.flac") is None
    assert track_uri("spotify:episode:abc") is None
    assert track_uri("spotify:local:::a.mp3:200") is None


# --- a whole session ------------------------------------------------------------------------


def test_three_tracks_each_start_once_in_order_with_ramps_around_each_start(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient, tmp_path: Path
) -> None:
    room(fake)
    player = connect_player(client, "session", clock=clock)
    assert isinstance(player, Player)
    log = tmp_path / "s.jsonl"
    t0, seen = run(player, clock, TIMELINE, log)
    player.close()
    assert player.errors == [] and faults_in(log) == []

    # Each track started once, in order, on our device, where its cue said it should be.
    started = plays(fake)
    assert [c.body["uris"] for c in started] == [[f"spotify:track:tr{i}"] for i in (1, 2, 3)]
    assert all(c.query["device_id"] == "dev-room" for c in started)
    hb = handoff_time(TIMELINE, 0, 1, HANDOFF)  # about 18.7 s
    hc = handoff_time(TIMELINE, 1, 2, HANDOFF)  # about 38.7 s
    expect = [(0.0, 30.0), (hb, hb - 12.0), (hc, hc - 32.0)]
    for call, (at, position) in zip(started, expect, strict=True):
        assert call.at - t0 == pytest.approx(at, abs=0.1)
        assert call.body["position_ms"] / 1000 == pytest.approx(position, abs=0.1)

    # Volume: down before each handoff, the new track starts low, then up again.
    vols = volumes(fake)
    assert max(v for _, v in vols) <= REF  # never louder than the room was set
    for start, (fade_from, _) in zip(started[1:], [(12.0, 0), (32.0, 0)], strict=True):
        before = [v for at, v in vols if fade_from <= at - t0 <= start.at - t0]
        after = [v for at, v in vols if start.at < at < start.at + 5.0]
        assert len(before) >= 4 and before == sorted(before, reverse=True)
        low = volume_percent(HANDOFF, REF)
        assert before[-1] <= low + MIN_STEP  # the change happens quietly
        assert len(after) >= 4 and after == sorted(after)
        assert after[0] - before[-1] <= 2 * MIN_STEP  # no jump at the start
    rise = [v for at, v in vols if 20.0 <= at - t0 < 32.0]
    assert rise and rise[-1] >= REF - MIN_STEP  # back at the room's level
    first = [v for at, v in vols if at <= started[0].at]
    assert first and first[-1] == 0  # the fade-in starts from silence

    # Rate limit: at most two volume calls a second, except the one set just before a
    # start (so the new track begins at the right level).
    [paused] = fake.calls("PUT", "/me/player/pause$")
    times = [at for at, _ in vols if at < paused.at]  # then the room's level is restored
    starts = {c.at for c in started}
    gaps = [b - a for a, b in itertools.pairwise(times) if b not in starts]
    assert min(gaps) >= VOLUME_INTERVAL - 1e-9
    assert len(vols) <= 2 * TIMELINE.length / 2  # far fewer than the ticks' 1250 gains

    # Positions: extrapolated on the clock and corrected by polls, never standing still.
    for t, key, pos in seen:
        if key is not None and pos is not None and t > 0.1:
            assert pos == pytest.approx(TIMELINE.cue(key).file_time(t), abs=0.15)
    assert player.counts["poll"] <= TIMELINE.length / 2 + 3

    # The end: paused, and the room's volume given back.
    assert not fake.player["is_playing"]
    assert fake.devices[0]["volume_percent"] == REF


def test_a_device_without_volume_control_cuts_at_each_crossfade_midpoint(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient, tmp_path: Path
) -> None:
    room(fake, volume=False)
    player = connect_player(client, clock=clock)
    notes = player.notices()
    assert len(notes) == 1 and "does not let setlist set its volume" in notes[0]
    log = tmp_path / "s.jsonl"
    t0, _ = run(player, clock, TIMELINE, log)
    player.close()
    assert volumes(fake) == [] and player.errors == [] and faults_in(log) == []
    started = plays(fake)
    assert len(started) == 3
    # Symmetric crossfades cross over at their middle: 16 s and 36 s.
    for call, (at, position) in zip(started[1:], [(16.0, 4.0), (36.0, 4.0)], strict=True):
        assert call.at - t0 == pytest.approx(at, abs=0.1)
        assert call.body["position_ms"] / 1000 == pytest.approx(position, abs=0.1)
    assert player.notices() == []  # said once


def test_a_device_that_refuses_its_volume_switches_to_cuts_and_says_so(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient, tmp_path: Path
) -> None:
    room(fake)
    fake.fault(403, path="/me/player/volume", reason="VOLUME_CONTROL_DISALLOW", message="no")
    player = connect_player(client, clock=clock)
    log = tmp_path / "s.jsonl"
    t0, _ = run(player, clock, TIMELINE, log)
    player.close()
    assert len(volumes(fake)) == 1  # the refused one, never again
    assert faults_in(log) == [] and not player.supports_volume
    assert any("refuses volume changes" in n for n in player.notices())
    assert [c.at - t0 for c in plays(fake)][1] == pytest.approx(16.0, abs=0.1)


def test_pause_mid_crossfade_and_resume_through_the_conductor(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient, tmp_path: Path
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    log = tmp_path / "s.jsonl"
    conductor = Conductor(TIMELINE, player, clock, log=SessionLog.create(log, {"setlist": "t"}))

    def after_tick(status: object) -> None:
        assert player.sync(), "the worker did not keep up"

    conductor.on_tick = after_tick
    t0 = clock.now()
    conductor.run_for(15.0)  # mid-crossfade: the second track is still waiting
    assert len(plays(fake)) == 1
    conductor.submit(Command(Action.PAUSE))
    conductor.run_for(20.0)
    [paused] = fake.calls("PUT", "/me/player/pause$")
    assert not fake.player["is_playing"] and len(plays(fake)) == 1
    held = player.position(0)
    assert held == pytest.approx(30.0 + 15.0 + PAUSE_FADE, abs=0.1)
    assert fake.devices[0]["volume_percent"] == 0  # faded down before the pause
    conductor.submit(Command(Action.RESUME))
    conductor.run()
    player.close()
    assert faults_in(log) == [] and player.errors == []
    again = plays(fake)[1]
    assert again.body["uris"] == ["spotify:track:tr1"]
    assert again.body["position_ms"] / 1000 == pytest.approx(held, abs=0.05)  # where it stood
    assert [c.body["uris"][0][-3:] for c in plays(fake)] == ["tr1", "tr1", "tr2", "tr3"]
    # The rest of the session moved by the pause, handoffs included.
    shift = again.at - paused.at
    hb = handoff_time(TIMELINE, 0, 1, HANDOFF)
    assert plays(fake)[2].at - t0 == pytest.approx(hb + shift, abs=0.15)


# --- the player driven directly ----------------------------------------------------------


def advance(player: SpotifyConnectPlayer, clock: FakeClock, seconds: float) -> None:
    """Let `seconds` of session pass, the worker acting every 0.1 s."""
    for _ in range(round(seconds / 0.1)):
        clock.advance(0.1)
        assert player.sync()


def test_calls_never_wait_for_the_network(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    fake.delay("/me/player/play", 1.0)
    fake.delay("/me/player/volume", 1.0)
    began = time.monotonic()
    player.open(0, "spotify:track:tr1", 0.0)
    player.start(0, 0.5)
    for i in range(50):
        player.set_gain(0, 0.5 - i / 100)
        player.state(0)
        player.position(0)
        player.faults()
    calls = time.monotonic() - began
    assert player.sync(timeout=10)
    network = time.monotonic() - began
    player.close()
    assert network >= 1.9  # a volume call, then the start: a second each
    assert calls < 0.5
    assert len(plays(fake)) == 1 and volumes(fake)[0][1] == volume_percent(0.01, REF)


def test_pause_and_resume_use_the_pause_and_start_endpoints(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    player.open(0, "spotify:track:tr1", 10.0)
    player.start(0, 1.0)
    advance(player, clock, 3.0)
    player.set_gain(0, 0.0)
    player.pause(0)
    advance(player, clock, 5.0)
    assert player.state(0) is VoiceState.PAUSED
    assert player.position(0) == pytest.approx(13.0, abs=0.05)  # stood still
    assert not fake.player["is_playing"]
    player.resume(0)
    player.set_gain(0, 1.0)
    assert player.sync()
    advance(player, clock, 1.0)
    started = plays(fake)
    assert len(started) == 2 and len(fake.calls("PUT", "/me/player/pause$")) == 1
    assert started[1].body["uris"] == ["spotify:track:tr1"]
    assert started[1].body["position_ms"] / 1000 == pytest.approx(13.0, abs=0.05)
    assert fake.player["is_playing"] and player.faults() == []
    player.close()


def test_a_local_file_is_a_fault_at_open(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    with connect_player(client, clock=clock) as player:
        player.open(3, "file:///music/calm.flac", 0.0)
        assert player.state(3) is VoiceState.FAILED
        [fault] = player.faults()
        assert fault.key == 3 and "not a Spotify track (a local file)" in fault.reason
        assert "VLC" in fault.reason
    assert plays(fake) == []


def test_the_user_changing_the_track_is_a_fault(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    player.open(0, "spotify:track:tr1", 0.0)
    player.start(0, 1.0)
    advance(player, clock, 3.0)
    assert player.faults() == [] and player.counts["poll"] >= 1
    fake.user_plays("spotify:track:tr5")
    advance(player, clock, 2.5)
    [fault] = player.faults()
    assert fault.key == 0 and "changed from another app or device" in fault.reason
    assert "spotify:track:tr5" in fault.reason
    assert player.state(0) is VoiceState.FAILED
    player.release(0)
    player.close()
    assert len(plays(fake)) == 1


def test_a_track_that_runs_out_has_ended(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    player.open(0, "spotify:track:tr1", 115.0)  # 5 s before the end of 120
    player.start(0, 1.0)
    advance(player, clock, 9.0)
    assert player.state(0) is VoiceState.ENDED and player.faults() == []
    assert player.position(0) == pytest.approx(120.0)
    player.close()


def test_no_active_device_during_the_session_is_a_clear_fault(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    fake.fault(
        404,
        path="/me/player/play",
        reason="NO_ACTIVE_DEVICE",
        message="Player command failed: No active device found",
    )
    player.open(0, "spotify:track:tr1", 0.0)
    player.start(0, 1.0)
    assert player.sync()
    [fault] = player.faults()
    assert fault.key == 0 and fault.reason == "no active Spotify device to start playback"
    player.close()


def test_premium_lost_during_the_session_is_a_clear_fault(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    fake.premium = False
    player.open(0, "spotify:track:tr1", 0.0)
    player.start(0, 1.0)
    assert player.sync()
    [fault] = player.faults()
    assert "Spotify Premium is required" in fault.reason
    player.close()


def test_429_retry_after_is_honoured(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient, sleeps: Sleeps
) -> None:
    room(fake)
    player = connect_player(client, clock=clock)
    fake.fault(429, path="/me/player/play", headers={"Retry-After": "2"})
    player.open(0, "spotify:track:tr1", 0.0)
    player.start(0, 1.0)
    assert player.sync()
    assert sleeps == [2.0]  # the client waited as asked, on the worker thread
    assert len(plays(fake)) == 2 and fake.player["is_playing"]
    assert player.faults() == [] and player.state(0) is VoiceState.PLAYING
    # Asked to wait longer than a session can: no calls until then, the music goes on.
    fake.fault(429, path="/me/player/volume", headers={"Retry-After": "600"})
    player.set_gain(0, 0.3)
    advance(player, clock, 3.0)
    assert len(volumes(fake)) == 1  # the refused one, not retried
    assert any("rate limit" in n for n in player.notices())
    assert player.faults() == []
    clock.advance(600)
    player.set_gain(0, 0.2)
    assert player.sync()
    assert volumes(fake)[-1][1] == volume_percent(0.2, REF)
    player.close()


# --- connecting ------------------------------------------------------------------------------


def test_connect_moves_playback_to_the_room_and_pauses_what_was_playing(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    fake.add_device("dev-phone", "Phone", active=True, volume=False)
    fake.add_device("dev-room", "Session Room")
    fake.user_plays("spotify:track:tr4")  # something was playing on the phone
    with connect_player(client, "session room", clock=clock) as player:
        assert player.device.id == "dev-room" and player.reference == REF
        [transfer] = fake.calls("PUT", "/me/player$")
        assert transfer.body["device_ids"] == ["dev-room"]
        assert not fake.player["is_playing"]


def test_connect_without_a_device_says_what_to_do(client: sp.SpotifyClient) -> None:
    with pytest.raises(NoActiveDevice) as err:
        connect_player(client)
    assert err.value.message == "cannot play through Spotify: no Spotify devices are online"
    assert err.value.hint is not None and "open Spotify on the room's computer" in err.value.hint


def test_connect_with_an_unknown_or_ambiguous_device_lists_them(
    fake: FakeSpotify, client: sp.SpotifyClient
) -> None:
    fake.add_device("a", "Kitchen")
    fake.add_device("b", "Study")
    with pytest.raises(NoActiveDevice, match="no Spotify device is active") as err:
        connect_player(client)
    assert err.value.hint is not None and "'Kitchen', 'Study'" in err.value.hint
    with pytest.raises(NoActiveDevice, match="no single Spotify device matches 'garden'"):
        connect_player(client, "garden")


def test_connect_without_premium_says_premium_is_required(
    fake: FakeSpotify, client: sp.SpotifyClient
) -> None:
    room(fake)
    fake.premium = False
    with pytest.raises(PremiumRequired) as err:
        connect_player(client)
    assert "Premium is required to play a session" in err.value.message
    assert err.value.hint is not None and "export" in err.value.hint


# -- `setlist play --backend spotify` wiring ----------------------------------------------


def test_play_backend_spotify_opens_the_device_and_closes_the_client(fake: FakeSpotify) -> None:
    from setlist.playback import PlayRequest, make_player

    room(fake)
    player = make_player(PlayRequest(None, device="Session Room", backend="spotify"))
    try:
        player.open(0, "spotify:track:tr1", 0.0)
        assert player.state(0) is not VoiceState.FAILED
    finally:
        player.close()
    with pytest.raises(NoActiveDevice):
        make_player(PlayRequest(None, device="Kitchen", backend="spotify"))


def test_play_backend_spotify_refuses_a_session_of_local_files(tmp_path: Path) -> None:
    from setlist.errors import PlaybackError
    from setlist.exports import write_outputs
    from setlist.playback import PlayRequest, prepare
    from tests.test_play_cli import build_session

    path = build_session(tmp_path)
    with pytest.raises(PlaybackError, match="can be played through Spotify") as err:
        prepare(PlayRequest(path, backend="spotify", db=tmp_path / "none.sqlite"))
    assert "--source spotify" in (err.value.hint or "")
    # and the other way round: Spotify tracks need the Spotify backend
    from setlist.exports import load_setlist

    built = load_setlist(path)
    entries = tuple(
        replace(e, track=replace(e.track, uri=f"spotify:track:tr{i}"))
        for i, e in enumerate(built.entries, 1)
    )
    (remote,) = write_outputs(replace(built, entries=entries), tmp_path, "remote", ["setlist"])
    with pytest.raises(PlaybackError, match="can be read") as err:
        prepare(PlayRequest(remote, db=tmp_path / "none.sqlite"))
    assert "--backend spotify" in (err.value.hint or "")


def test_play_lists_spotify_devices(fake: FakeSpotify) -> None:
    from click.testing import CliRunner

    from setlist.cli import cli

    room(fake)
    result = CliRunner().invoke(cli, ["play", "--backend", "spotify", "--list-devices"])
    assert result.exit_code == 0, result.output
    assert "Session Room" in result.output


def test_a_volume_changed_from_another_app_becomes_the_sessions_level(
    fake: FakeSpotify, clock: FakeClock, client: sp.SpotifyClient
) -> None:
    """Turned down from a phone mid-track, the room must not be ramped back up by the
    next fade: the session's full level follows the change."""
    room(fake)
    player = connect_player(client, clock=clock)
    player.open(0, "spotify:track:tr1", 0.0)
    player.start(0, 0.8)  # 0.8 of the room's level: 60 * 0.8^(1/3) = 56 %
    advance(player, clock, 4.0)
    assert fake.devices[0]["volume_percent"] == volume_percent(0.8, REF) == 56
    player.notices()
    fake.user_sets_volume(28)  # half as loud a setting
    advance(player, clock, 4.0)  # a poll or two
    assert player.reference == 30  # 60 * 28 / 56
    [note] = player.notices()
    assert "set to 28 %" in note and "full level is now 30 %" in note
    calls = len(volumes(fake))
    player.set_gain(0, 1.0)  # the next ramp goes up within the new level...
    advance(player, clock, 3.0)
    assert fake.devices[0]["volume_percent"] == 30  # ...not back to the old 60
    assert max(v for _, v in volumes(fake)[calls:]) == 30
    fake.user_sets_volume(31)  # a small difference is a device's rounding, not a change
    advance(player, clock, 5.0)
    assert player.reference == 30 and player.notices() == []
    player.release(0)
    player.close()
