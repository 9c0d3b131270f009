"""Control commands: the words a second terminal or the phone page may send."""

from __future__ import annotations

import pytest

from setlist.controls import KEYS, Action, Command, CommandError, Status, TrackInfo, parse_command


@pytest.mark.parametrize(
    ("text", "action", "amount"),
    [
        ("skip", Action.SKIP, None),
        ("  NEXT ", Action.SKIP, None),
        ("extend 5", Action.EXTEND, 5.0),
        ("shorten 2.5", Action.SHORTEN, 2.5),
        ("softer", Action.SOFTER, None),
        ("stronger 0.2", Action.STRONGER, 0.2),
        ("quieter 3", Action.QUIETER, 3.0),
        ("fade_out 30", Action.FADE_OUT, 30.0),
        ("end", Action.FADE_OUT, None),
        ("integration", Action.INTEGRATION, None),
        ("play", Action.RESUME, None),
    ],
)
def test_commands_parse(text: str, action: Action, amount: float | None) -> None:
    cmd = parse_command(text, origin="channel")
    assert (cmd.action, cmd.amount, cmd.origin) == (action, amount, "channel")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty command"),
        ("louder please", "not a number"),
        ("explode", "unknown command 'explode'"),
        ("skip 3", "takes no amount"),
        ("extend -5", r"out of range \(give an amount above 0 and at most 240 minutes\)"),
        ("extend nan", r"out of range .*240 minutes"),
        ("extend 1e9", r"out of range .*240 minutes"),
        ("louder 1000", r"out of range .*at most 46 dB"),
        ("louder inf", r"out of range .*at most 46 dB"),
        ("quieter -inf", r"out of range .*at most 46 dB"),
        ("softer 2", r"out of range .*at most 1 intensity"),
        ("fade-out 1e5", r"out of range .*600 seconds"),
        ("extend 5 minutes", "too many words"),
    ],
)
def test_bad_commands_say_what_is_wrong_in_one_line(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message) as err:
        parse_command(text)
    assert "\n" not in str(err.value)


def test_defaults_fill_in_missing_amounts() -> None:
    assert Command(Action.EXTEND).value == 5.0
    assert Command(Action.EXTEND, 2.0).value == 2.0
    assert Command(Action.LOUDER).value == 2.0
    assert Command(Action.SKIP).value == 0.0
    assert str(Command(Action.SHORTEN, 3.0)) == "shorten 3"


def test_every_key_maps_to_a_real_action_and_pause_is_on_space() -> None:
    assert KEYS[" "] is Action.TOGGLE
    assert set(KEYS.values()) <= set(Action)


def test_status_serialises_for_the_control_channel() -> None:
    now = TrackInfo(3, "Drift", "A", "peak", 100.0, 400.0, 12.34567)
    s = Status(
        110.0,
        3600.0,
        False,
        False,
        "peak",
        900.0,
        "return",
        now,
        None,
        290.0,
        -2.0,
        -0.1,
        False,
        0.8,
    )
    d = s.to_dict()
    assert d["now"] == {
        "key": 3,
        "title": "Drift",
        "artist": "A",
        "phase": "peak",
        "start": 100.0,
        "stop": 400.0,
        "position": 12.346,
    }
    assert d["next"] is None and d["next_change_in"] == 290.0
