"""Exports: the re-loadable setlist file, M3U8, XSPF, the session sheet, the plot, writing."""

from __future__ import annotations

import builtins
import json
import math
import os
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from setlist import exports
from setlist.arcfiles import Catalogue
from setlist.errors import SetlistFileError
from setlist.exports import (
    FORMATS,
    load_setlist,
    m3u8_text,
    parse_setlist,
    plot_svg,
    setlist_from_dict,
    setlist_to_dict,
    setlist_yaml,
    sheet_html,
    write_outputs,
    xspf_text,
)
from setlist.library.index import path_to_uri
from setlist.models import (
    Arc,
    Curve,
    DurationBounds,
    Features,
    Keyframe,
    Penalty,
    Phase,
    PhaseSpan,
    PlanMetrics,
    Setlist,
    SetlistEntry,
    TagRule,
    TempoRange,
    Track,
    Vocals,
)
from setlist.testing import make_track
from setlist.yamlsrc import parse_yaml

XSPF = "{http://xspf.org/ns/0/}"
SVG = "{http://www.w3.org/2000/svg}"
#: XSPF 1 section 4.1.1.2.14.1.1: the order of a track's children.
TRACK_ORDER = (
    "location",
    "identifier",
    "title",
    "creator",
    "annotation",
    "info",
    "image",
    "album",
    "trackNum",
    "duration",
    "link",
    "meta",
    "extension",
)
#: XSPF 1 section 4.1.1.2: the order of the playlist's children.
PLAYLIST_ORDER = (
    "title",
    "creator",
    "annotation",
    "info",
    "location",
    "identifier",
    "image",
    "date",
    "license",
    "attribution",
    "link",
    "meta",
    "extension",
    "trackList",
)


# --- building setlists -----------------------------------------------------------------


def hand_arc() -> Arc:
    """Two phases using every keyframe form (spread, seconds, fraction) and all settings."""
    return Arc(
        name="hand",
        phases=(
            Phase(
                "onset",
                600.0,
                Curve((Keyframe(0.2), Keyframe(0.5))),
                tempo=TempoRange(60.0, 80.0),
                vocals=Vocals.NONE,
                tags=TagRule(("ambient",), ("harsh",)),
                crossfade=8.0,
                volume_db=-3.0,
                notes="Settle in.\nEyeshades on.",
            ),
            Phase(
                "peak",
                900.0,
                Curve((Keyframe(0.5, seconds=0.0), Keyframe(0.8, fraction=0.4), Keyframe(0.4))),
                bounds=DurationBounds(600.0, 900.0, math.inf),
                crossfade=12.0,
            ),
        ),
        description="A test arc",
        dose_at=60.0,
        tolerance=20.0,
        origin="arcs/hand.yaml",
    )


def tile(arc: Arc, tracks: list[Track], *, overlap: float = 6.0) -> Setlist:
    """Entries that cover the arc back to back, overlapping by `overlap` seconds."""
    entries: list[SetlistEntry] = []
    t, i = 0.0, 0
    while not entries or entries[-1].end < arc.length:
        track = tracks[i]
        remaining = arc.length - t
        length = min(track.duration, remaining)
        if remaining - length < 3 * overlap:  # no room for another track: run to the end
            length = remaining
        phase = arc.phases[int(arc.phase_index_at(t + 1.0))]
        entries.append(
            SetlistEntry(
                track=track,
                phase=phase.name,
                start=t,
                length=length,
                offset=1.5,
                fade_in=overlap if i else 0.0,
                fade_out=overlap,
                gain_db=-1.25,
                volume_db=phase.volume_db,
                target=float(arc.intensity_at(t + length / 2)),
                realised=0.4,
                cut=length < track.duration,
                penalties=(Penalty("fit", 12.5, "0.05 off the target"), Penalty("liked", -2.0)),
            )
        )
        t += length - overlap
        i += 1
    spans = tuple(
        PhaseSpan(p.name, float(a), float(b), float(a) + 3.0, float(b) + 3.0)
        for p, a, b in zip(arc.phases, arc.starts, arc.ends, strict=True)
    )
    return Setlist(
        arc=arc,
        entries=tuple(entries),
        phases=spans,
        metrics=PlanMetrics(0.0412, 0.12, 2, 0.5, 3.0, ("a boundary is 3s off",)),
        seed=1234,
        loudness_target=-18.0,
        notes=("liked tracks went mostly to one listener",),
        profiles=("couple-a", "couple-b"),
        created="2024-05-01T10:00:00+02:00",
        library="0123456789abcdef",
    )


def varied_tracks(n: int) -> list[Track]:
    return [
        make_track(i + 1, intensity=0.1 + 0.8 * (i % 7) / 6, duration=200.0 + 37 * i, slope=0.2)
        for i in range(n)
    ]


@pytest.fixture
def small() -> Setlist:
    return tile(hand_arc(), varied_tracks(12))


@pytest.fixture(scope="module")
def shipped() -> Setlist:
    arc = Catalogue.default().load("ketamine-im-psychedelic")
    return tile(arc, varied_tracks(60), overlap=10.0)


def via_yaml(s: Setlist) -> Setlist:
    return parse_setlist(parse_yaml(setlist_yaml(s), "x.setlist.yaml"))


# --- the setlist file round trip -------------------------------------------------------


def test_round_trip_of_a_shipped_template_is_exact(shipped: Setlist) -> None:
    assert setlist_from_dict(setlist_to_dict(shipped)) == shipped
    again = via_yaml(shipped)
    assert again == shipped
    times = np.linspace(0.0, shipped.length, 500)
    assert np.array_equal(again.arc.intensity_at(times), shipped.arc.intensity_at(times))
    assert np.array_equal(again.realised_at(times), shipped.realised_at(times))


def test_round_trip_through_json(small: Setlist) -> None:
    data = json.loads(json.dumps(setlist_to_dict(small)))
    assert setlist_from_dict(data) == small


def test_keyframe_forms_survive_so_a_reloaded_arc_stretches_alike(small: Setlist) -> None:
    arc = via_yaml(small).arc
    peak = arc.phases[1].intensity.keyframes
    assert peak == (Keyframe(0.5, seconds=0.0), Keyframe(0.8, fraction=0.4), Keyframe(0.4))
    assert arc.with_length(1800.0) == small.arc.with_length(1800.0)
    assert math.isinf(arc.phases[1].bounds.maximum)


def test_file_lists_absolute_keyframes_and_clock_times(small: Setlist) -> None:
    data = setlist_to_dict(small)
    peak = data["arc"]["phases"][1]
    assert [k["at"] for k in peak["intensity"]] == [0.0, 360.0, 900.0]
    assert peak["bounds"]["max"] is None
    entry = data["entries"][1]
    assert entry["clock"] == "0:03:14" and entry["start"] == small.entries[1].start
    text = setlist_yaml(small)
    assert text.startswith("# setlist session plan: hand")
    assert "version: 1\n" in text


def test_derived_clock_times_are_ignored_when_loading(small: Setlist) -> None:
    data = setlist_to_dict(small)
    data["entries"][0]["clock"] = "9:99:99"
    data["length"] = -1
    assert setlist_from_dict(data) == small


TRICKY = [
    "08",
    "1e5",
    "0x1F",
    "1_000",
    ".5",
    "true",
    "no",
    "~",
    "null",
    "",
    " leading",
    "trailing ",
    "a: b",
    "- x",
    "#x",
    "1:15:00",
    "2024-05-01",
    "multi\nline\n",
    "trailing \nspace",
    "tab\tx",
    "nel\x85ls\u2028ps\u2029",
    "caf\u00e9 \u2713 \U0001f3b5",
    "'quote\"",
    "nul\x00bell\x07",
    "\ufeffbom",
    ".inf",
    "[a, b]",
]


@pytest.mark.parametrize("text", TRICKY)
def test_strings_that_look_like_other_yaml_survive(small: Setlist, text: str) -> None:
    e = small.entries[0]
    track = replace(e.track, title=text, artist=text, tags=(text, "x"))
    s = replace(small, entries=(replace(e, track=track), *small.entries[1:]), notes=(text,))
    assert via_yaml(s) == s


def test_non_finite_features_survive(small: Setlist) -> None:
    e = small.entries[0]
    features = replace(e.track.features, loudness_lufs=-math.inf, peak_dbfs=-math.inf)
    s = replace(small, entries=(replace(e, track=replace(e.track, features=features)),))
    s = replace(s, entries=(*s.entries, *small.entries[1:]))
    assert via_yaml(s) == s


def test_tracks_without_features_or_optional_tags_survive(small: Setlist) -> None:
    e = small.entries[0]
    bare = Track(
        id=999,
        uri="spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        title="Bare",
        duration=200.0,
        source="spotify",
        track_number=3,
        disc_number=1,
        year=1999,
        bpm=72.5,
        isrc="USRC17607839",
    )
    s = replace(small, entries=(replace(e, track=bare), *small.entries[1:]))
    assert via_yaml(s) == s


# hypothesis: arbitrary (valid) setlists ---------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
unit = st.floats(0.0, 1.0)
nonneg = st.floats(0.0, 1e7, allow_nan=False, allow_infinity=False)
texts = st.text(max_size=12)
#: Fades as shares of the play length; none so small that 1/fade overflows.
fades = st.just(0.0) | st.floats(1e-3, 0.49)


@st.composite
def curves(draw: st.DrawFn, duration: float) -> Curve:
    kind = draw(st.sampled_from(["spread", "seconds", "mixed"]))
    n = draw(st.integers(1, 4))
    values = [draw(unit) for _ in range(n)]
    if kind == "spread":
        return Curve(tuple(Keyframe(v) for v in values))
    if kind == "seconds":
        times = sorted(
            draw(st.lists(st.floats(0.0, duration), min_size=n, max_size=n, unique=True))
        )
        return Curve(tuple(Keyframe(v, seconds=t) for v, t in zip(values, times, strict=True)))
    fractions = sorted(
        draw(
            st.lists(
                st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
                min_size=n,
                max_size=n,
                unique=True,
            )
        )
    )
    keys = [Keyframe(values[0], seconds=0.0)]
    keys += [Keyframe(v, fraction=f) for v, f in zip(values[1:], fractions, strict=False)]
    return Curve((*keys, Keyframe(draw(unit))))


@st.composite
def arcs(draw: st.DrawFn) -> Arc:
    phases = []
    for i in range(draw(st.integers(1, 3))):
        duration = draw(st.floats(10.0, 1e5))
        bounds = draw(
            st.none()
            | st.just(DurationBounds(duration / 2, duration, math.inf))
            | st.just(DurationBounds(duration, duration, duration * 3))
        )
        tempo = draw(st.none() | st.tuples(st.floats(20, 100), st.floats(0, 100)))
        try:
            phases.append(
                Phase(
                    name=draw(st.text(min_size=1, max_size=8).filter(str.strip)) + f"#{i}",
                    duration=duration,
                    intensity=draw(curves(duration)),
                    bounds=bounds,
                    tempo=None if tempo is None else TempoRange(tempo[0], tempo[0] + tempo[1]),
                    vocals=draw(st.sampled_from(list(Vocals))),
                    tags=TagRule(tuple(draw(st.lists(texts, max_size=2))), ()),
                    crossfade=draw(st.floats(0.0, 9.0)),
                    volume_db=draw(st.floats(-40.0, 0.0)),
                    notes=draw(st.text(max_size=40)),
                )
            )
        except ValueError:
            assume(False)
    length = sum(p.duration for p in phases)
    return Arc(
        name=draw(texts),
        phases=tuple(phases),
        description=draw(st.text(max_size=60)),
        dose_at=draw(st.floats(0.0, length, exclude_max=True)),
        tolerance=draw(nonneg),
        origin=draw(texts),
    )


@st.composite
def tracks(draw: st.DrawFn, track_id: int) -> Track:
    features = None
    if draw(st.booleans()):
        features = Features(
            duration=draw(nonneg),
            loudness_lufs=draw(finite),
            loudness_range_lu=draw(finite),
            peak_dbfs=draw(finite),
            intensity=draw(unit),
            envelope=tuple(draw(st.lists(unit, max_size=30))),
            envelope_step=draw(st.floats(0.01, 100.0)),
            tempo_bpm=draw(st.none() | finite),
            tempo_confidence=draw(unit),
            lead_silence=draw(finite),
            trail_silence=draw(finite),
            brightness_hz=draw(finite),
            onset_rate=draw(finite),
            voice=draw(unit),
            version=draw(st.integers(0, 10)),
        )
    return Track(
        id=track_id,
        uri=draw(st.text(min_size=1, max_size=30)),
        title=draw(texts),
        duration=draw(nonneg),
        artist=draw(texts),
        album=draw(texts),
        album_artist=draw(texts),
        genre=draw(texts),
        source=draw(st.sampled_from(["local", "spotify"])),
        track_number=draw(st.none() | st.integers(-5, 10**6)),
        disc_number=draw(st.none() | st.integers(0, 9)),
        year=draw(st.none() | st.integers(1000, 3000)),
        isrc=draw(texts),
        bpm=draw(st.none() | finite),
        language=draw(texts),
        tags=tuple(draw(st.lists(texts, max_size=3))),
        vocals=draw(st.sampled_from(["none", "wordless", "lyrics", "unknown"])),
        features=features,
    )


@st.composite
def setlists(draw: st.DrawFn) -> Setlist:
    arc = draw(arcs())
    n = draw(st.integers(1, 4))
    ids = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n, unique=True))
    starts = sorted(draw(st.lists(nonneg, min_size=n, max_size=n)))
    entries = []
    for track_id, start in zip(ids, starts, strict=True):
        length = draw(st.floats(0.001, 1e5))
        try:
            entries.append(
                SetlistEntry(
                    track=draw(tracks(track_id)),
                    phase=draw(st.sampled_from([p.name for p in arc.phases])),
                    start=start,
                    length=length,
                    offset=draw(nonneg),
                    fade_in=draw(fades) * length,
                    fade_out=draw(fades) * length,
                    gain_db=draw(finite),
                    volume_db=draw(finite),
                    target=draw(finite),
                    realised=draw(finite),
                    cut=draw(st.booleans()),
                    penalties=tuple(
                        Penalty(draw(texts), draw(finite), draw(st.text(max_size=50)))
                        for _ in range(draw(st.integers(0, 2)))
                    ),
                )
            )
        except ValueError:
            assume(False)
    spans = tuple(
        PhaseSpan(p.name, draw(finite), draw(finite), draw(finite), draw(finite))
        for p in arc.phases
    )
    return Setlist(
        arc=arc,
        entries=tuple(entries),
        phases=spans,
        metrics=PlanMetrics(
            draw(finite),
            draw(finite),
            draw(st.integers(-1, 100)),
            draw(finite),
            draw(finite),
            tuple(draw(st.lists(texts, max_size=2))),
        ),
        seed=draw(st.integers(0, 2**64)),
        loudness_target=draw(finite),
        notes=tuple(draw(st.lists(st.text(max_size=50), max_size=2))),
        profiles=tuple(draw(st.lists(texts, max_size=2))),
        created=draw(texts),
        library=draw(texts),
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(setlists())
def test_round_trip_is_exact_for_any_setlist(s: Setlist) -> None:
    assert setlist_from_dict(setlist_to_dict(s)) == s
    assert via_yaml(s) == s
    # every renderer copes with whatever text and numbers a setlist can hold
    root = ET.fromstring(xspf_text(s))
    assert len(root.find(f"{XSPF}trackList")) == len(s.entries)
    m3u = m3u8_text(s, "/music/playlists")
    assert m3u.count("#EXTINF:") == len(s.entries)
    assert "<script" not in sheet_html(s)


# --- malformed files ---------------------------------------------------------------------


def edit(text: str, old: str, new: str, nth: int = 0) -> tuple[str, int]:
    """Replace the `nth` line starting with `old` (after indentation); return its line."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line.lstrip(" -").startswith(old)]
    i = hits[nth]
    lines[i] = lines[i].replace(old, new, 1) if new is not None else ""
    return "\n".join(lines), i + 1


CASES = [
    # (old, new, nth, key path, message fragment)
    ("version: 1", "version: 2", 0, "version", "unsupported version 2"),
    ("length: 237.0", "length: -5.0", 0, "entries[1].length", "must be greater than zero"),
    ("seed: 1234", "seed: abc", 0, "seed", "expected a whole number"),
    ("fade_in:", "fadein:", 2, "entries[2].fadein", "did you mean 'fade_in'?"),
    ("phase: peak", "phase: summit", 0, ".phase", "'summit' is not a phase of the arc"),
    ("id: 2", "id: 1", 0, "entries[1].track.id", "already plays at entries[0]"),
    ("cut: false", "cut: maybe", 0, "entries[0].cut", "expected true or false"),
    ("offset: 1.5", "offset: -1.5", 3, "entries[3].offset", "cannot be negative"),
    ("vocals: none", "vocals: whisper", 0, "arc.phases[0].vocals", "expected one of"),
    ("{at: 900.0", "{at: 800.0", 0, "arc.phases[1].intensity[2].at", "falls at 900s"),
    ("envelope_step: 3.0", "envelope_step: 0", 0, "envelope_step", "greater than zero"),
    ("dose_at: 60.0", "dose_at: 1.0e+30", 0, "arc", "dose time must fall within"),
]


@pytest.mark.parametrize(("old", "new", "nth", "where", "what"), CASES)
def test_malformed_files_point_at_file_line_and_key(
    tmp_path: Path, small: Setlist, old: str, new: str, nth: int, where: str, what: str
) -> None:
    text, line = edit(setlist_yaml(small), old, new, nth)
    path = tmp_path / "bad.setlist.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SetlistFileError) as info:
        load_setlist(path)
    err = info.value
    assert err.problems, err.message
    first = err.problems[0]
    assert first.origin.endswith("bad.setlist.yaml")
    assert where in first.path
    assert what in first.message
    if where != "arc":  # model-level checks point at the record, not the key
        assert first.line == line
    assert re.match(rf".*bad\.setlist\.yaml:{first.line}:{first.column}: ", err.message)


def test_a_missing_key_is_reported_at_its_mapping(tmp_path: Path, small: Setlist) -> None:
    text, line = edit(setlist_yaml(small), "title: Track 3", "", 0)
    path = tmp_path / "s.setlist.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SetlistFileError) as info:
        load_setlist(path)
    first = info.value.problems[0]
    assert first.path == "entries[2].track.title"
    assert "missing required key 'title'" in first.message
    assert first.line == line - 2  # the track mapping starts with `id:`, two lines up


def test_every_bad_entry_is_reported(tmp_path: Path, small: Setlist) -> None:
    text, a = edit(setlist_yaml(small), "gain_db:", "gain_db: loud #", 1)
    text, b = edit(text, "gain_db:", "gain_db: louder #", 4)
    path = tmp_path / "s.setlist.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SetlistFileError) as info:
        load_setlist(path)
    assert [(p.path, p.line) for p in info.value.problems] == [
        ("entries[1].gain_db", a),
        ("entries[4].gain_db", b),
    ]
    assert "(and 1 more)" in info.value.message


def test_entries_out_of_order_are_refused(small: Setlist) -> None:
    data = setlist_to_dict(small)
    data["entries"][1], data["entries"][2] = data["entries"][2], data["entries"][1]
    with pytest.raises(SetlistFileError, match=r"entries\[2\]\.start: .*before the previous"):
        setlist_from_dict(data, "mem")


def test_empty_entries_and_wrong_shapes(small: Setlist) -> None:
    data = setlist_to_dict(small)
    with pytest.raises(SetlistFileError, match="needs at least one entry"):
        setlist_from_dict({**data, "entries": []})
    with pytest.raises(SetlistFileError, match=r"<data>:1:1: entries: 'x': expected a list"):
        setlist_from_dict({**data, "entries": "x"})
    with pytest.raises(SetlistFileError, match="expected a mapping"):
        setlist_from_dict([1, 2])
    with pytest.raises(SetlistFileError, match="expected one span per arc phase"):
        setlist_from_dict({**data, "phases": data["phases"][:1]})


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", ":1:1: the file is empty"),
        (b"version: 1\narc: [\n", ":3:1: YAML syntax error"),
        (b"- 1\n- 2\n", ":1:1: a list: expected a mapping"),
        (b"version: 1\n", ":1:1: arc: missing required key 'arc'"),
        (b"version: 1\n# caf\xe9\n", ":2:1: not UTF-8"),
        (b"version: !!python/object:os.system 1\n", "not allowed"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "s.setlist.yaml"
    path.write_bytes(content)
    with pytest.raises(SetlistFileError) as info:
        load_setlist(path)
    assert fragment in info.value.message


def test_missing_file_and_folder_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(SetlistFileError) as info:
        load_setlist(tmp_path / "nope.setlist.yaml")
    assert info.value.message.endswith("nope.setlist.yaml: no such file")
    assert info.value.problems == ()
    assert info.value.lines() == [info.value.message]
    with pytest.raises(SetlistFileError, match="is a folder"):
        load_setlist(tmp_path)


# --- M3U8 ----------------------------------------------------------------------------------


def with_uris(s: Setlist, uris: list[str], titles: list[str] | None = None) -> Setlist:
    entries = []
    for i, (e, uri) in enumerate(zip(s.entries, uris, strict=False)):
        title = titles[i] if titles else e.track.title
        entries.append(replace(e, track=replace(e.track, uri=uri, title=title)))
    return replace(s, entries=tuple(entries))


def m3u_locations(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_m3u8_relative_paths_within_a_shared_folder(tmp_path: Path, small: Setlist) -> None:
    music, lists = tmp_path / "music" / "Some Album", tmp_path / "playlists"
    names = ["a b.flac", "caf\u00e9 \u2013 1.ogg", "#hash.mp3"]
    uris = [path_to_uri(music / n) for n in names] + [path_to_uri(lists / "#hash.mp3")]
    uris += ["spotify:track:4uLU6hMCjMI75M1A2tKUQC", "file:///elsewhere/x.flac"]
    text = m3u8_text(with_uris(small, uris), lists)
    assert not (tmp_path / "music").exists()  # pure: nothing is looked up on disk
    assert m3u_locations(text)[:6] == [
        "../music/Some Album/a b.flac",
        "../music/Some Album/caf\u00e9 \u2013 1.ogg",
        "../music/Some Album/#hash.mp3",
        "./#hash.mp3",
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        "/elsewhere/x.flac",  # shares only the root with the playlist: kept absolute
    ]
    assert text.startswith("#EXTM3U\n#PLAYLIST:hand 2024-05-01\n")
    e = small.entries[0]
    assert f"#EXTINF:{round(e.length)},{e.track.artist} - {e.track.title}\n#EXTGRP:onset\n" in text


def test_m3u8_relative_paths_resolve_to_the_tracks(tmp_path: Path, small: Setlist) -> None:
    music = tmp_path / "lib"
    uris = [path_to_uri(music / f"{i}.flac") for i in range(len(small.entries))]
    lists = tmp_path / "out" / "deep"
    text = m3u8_text(with_uris(small, uris), lists)
    for loc, uri in zip(m3u_locations(text), uris, strict=True):
        assert os.path.normpath(lists / loc) == urllib.parse.unquote(uri[len("file://") :])


def test_m3u8_writes_non_utf8_names_as_file_uris(tmp_path: Path, small: Setlist) -> None:
    raw = os.fsencode(tmp_path) + b"/music/caf\xe9 \xff.flac"
    uri = path_to_uri(os.fsdecode(raw))
    text = m3u8_text(with_uris(small, [uri]), tmp_path / "playlists")
    text.encode("utf-8")  # strict: the playlist is valid UTF-8
    loc = m3u_locations(text)[0]
    assert loc.startswith("file:///")
    assert urllib.parse.unquote_to_bytes(loc[len("file://") :]) == raw


def test_m3u8_keeps_each_entry_on_its_lines(small: Setlist) -> None:
    s = with_uris(small, ["file:///m/a.flac"], titles=["two\nlines\r\nhere"])
    text = m3u8_text(s, None)
    assert "#EXTINF:" + str(round(s.entries[0].length)) + "," in text
    assert "two lines here" in text
    assert m3u_locations(text)[0] == "/m/a.flac"  # no playlist folder: absolute paths
    assert len(m3u_locations(text)) == len(s.entries)


# --- XSPF ------------------------------------------------------------------------------------


def assert_in_order(tags: list[str], order: tuple[str, ...]) -> None:
    positions = [order.index(t) for t in tags]
    assert positions == sorted(positions), tags
    assert len(set(tags)) == len(tags), tags


def test_xspf_structure_follows_the_spec(small: Setlist) -> None:
    raw = "/music/caf\xe9 \u00e9.flac"
    s = with_uris(
        small,
        [path_to_uri(raw), "spotify:track:abc"],
        titles=['<b>&"x"', "bell\x07"],
    )
    s = replace(
        s,
        entries=(
            replace(s.entries[0], track=replace(s.entries[0].track, album="Alb", track_number=4)),
            *s.entries[1:],
        ),
    )
    text = xspf_text(s)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == f"{XSPF}playlist" and root.get("version") == "1"
    top = [child.tag.removeprefix(XSPF) for child in root]
    assert_in_order(top, PLAYLIST_ORDER)
    assert root.findtext(f"{XSPF}title") == "hand 2024-05-01"
    assert root.findtext(f"{XSPF}creator") == "setlist"
    assert root.findtext(f"{XSPF}date") == "2024-05-01T10:00:00+02:00"
    tracks = root.findall(f"{XSPF}trackList/{XSPF}track")
    assert len(tracks) == len(s.entries)
    for el, e in zip(tracks, s.entries, strict=True):
        assert_in_order([c.tag.removeprefix(XSPF) for c in el], TRACK_ORDER)
        assert el.findtext(f"{XSPF}duration") == str(round(e.length * 1000))
        assert e.phase in el.findtext(f"{XSPF}annotation")
    first, second = tracks[0], tracks[1]
    loc = first.findtext(f"{XSPF}location")
    assert loc.isascii() and urllib.parse.unquote(loc) == "file://" + raw
    assert first.findtext(f"{XSPF}title") == '<b>&"x"'
    assert first.findtext(f"{XSPF}album") == "Alb"
    assert first.findtext(f"{XSPF}trackNum") == "4"
    assert second.findtext(f"{XSPF}location") == "spotify:track:abc"
    assert second.findtext(f"{XSPF}title") == "bell\ufffd"  # XML 1.0 cannot hold BEL
    assert any(t.findtext(f"{XSPF}annotation").endswith("faded early") for t in tracks) == any(
        e.cut for e in s.entries
    )


# --- the session sheet -------------------------------------------------------------------------


def test_sheet_escapes_text_and_is_self_contained(small: Setlist) -> None:
    s = with_uris(small, [small.entries[0].track.uri], titles=['<b>&"x"'])
    arc = replace(s.arc, description="<script>alert(1)</script>")
    s = replace(s, arc=arc, entries=(replace(s.entries[0], cut=True), *s.entries[1:]))
    page = sheet_html(s)
    assert "<b>&" not in page and "&lt;b&gt;&amp;&quot;x&quot;" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    assert page.startswith("<!DOCTYPE html>")
    assert "@media print" in page
    for external in ("src=", "href=", "<link", "@import", "url(", "http://", "https://"):
        body = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert external not in body, external
    assert page.count("<svg") == 1 and 'class="realised"' in page
    assert 'class="cut"' in page
    assert '<section class="notes">' in page
    assert "couple-a, couple-b" in page
    for span in s.phases:
        assert f"<td>{span.name}</td>" in page
    assert "Settle in.\nEyeshades on." in page  # phase notes for the therapist
    assert "0:00:03\u20130:10:03" in page  # realised span clock times
    assert page.count("<tr") == 1 + len(s.phases) + 1 + len(s.entries)


# --- the plot --------------------------------------------------------------------------------


def test_plot_is_valid_svg_matching_the_curves(small: Setlist) -> None:
    arc = replace(
        small.arc, phases=(replace(small.arc.phases[0], name="<on&set>"), *small.arc.phases[1:])
    )
    s = replace(
        small,
        arc=arc,
        entries=tuple(
            replace(e, phase="<on&set>") if e.phase == "onset" else e for e in small.entries
        ),
    )
    svg = plot_svg(s, width=600, height=240)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("600", "240")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<on&set>" in texts and "peak" in texts
    assert {"target", "realised", "0:00", "0:10", "0:20"} <= set(texts)
    lines = root.find(f"{SVG}g[@class='tracks']")
    assert len(lines) == len(s.entries) - 1
    for name, expected in (("target", s.arc.intensity_at), ("realised", s.realised_at)):
        poly = root.find(f"{SVG}polyline[@class='{name}']")
        pts = np.array([p.split(",") for p in poly.get("points").split()], dtype=float)
        assert len(pts) >= s.length / 10
        assert np.all((pts[:, 0] >= 0) & (pts[:, 0] <= 600) & (pts[:, 1] >= 0) & (pts[:, 1] <= 240))
        # invert the axes and compare with the curve the setlist computes
        top, height = 30.0, 240 - 30.0 - 28.0
        left, width = 40.0, 600 - 40.0 - 12.0
        times = (pts[:, 0] - left) / width * max(s.length, s.arc.length)
        values = 1.0 - (pts[:, 1] - top) / height
        assert np.allclose(values, np.asarray(expected(times)), atol=0.02)


def test_plot_refuses_a_tiny_canvas(small: Setlist) -> None:
    with pytest.raises(ValueError, match="at least"):
        plot_svg(small, width=50, height=50)


def test_renderers_never_touch_the_filesystem(
    monkeypatch: pytest.MonkeyPatch, shipped: Setlist
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pure renderer touched the filesystem")

    calls = [
        lambda: setlist_yaml(shipped),
        lambda: m3u8_text(shipped, "/tmp/playlists"),
        lambda: xspf_text(shipped),
        lambda: sheet_html(shipped),
        lambda: plot_svg(shipped),
        lambda: setlist_from_dict(setlist_to_dict(shipped)),
    ]
    for call in calls:
        call()  # warm up lazy imports first
    for name in ("open", "stat", "listdir", "scandir", "mkdir", "replace", "rename"):
        monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(builtins, "open", refuse)
    for call in calls:
        call()


# --- writing -------------------------------------------------------------------------------------


def test_write_outputs_writes_every_format(tmp_path: Path, small: Setlist) -> None:
    out = tmp_path / "a" / "b"
    paths = write_outputs(small, out, "hand-2024-05-01")
    assert [p.name for p in paths] == [
        "hand-2024-05-01.setlist.yaml",
        "hand-2024-05-01.m3u8",
        "hand-2024-05-01.xspf",
        "hand-2024-05-01.html",
        "hand-2024-05-01.svg",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    assert load_setlist(paths[0]) == small
    assert paths[1].read_text(encoding="utf-8") == m3u8_text(small, out)
    assert paths[2].read_text(encoding="utf-8") == xspf_text(small)
    assert paths[3].read_text(encoding="utf-8") == sheet_html(small)
    ET.fromstring(paths[4].read_bytes())


def test_write_outputs_replaces_whole_files_and_leaves_no_temporaries(
    tmp_path: Path, small: Setlist
) -> None:
    old = tmp_path / "s.setlist.yaml"
    old.write_text("x" * 1_000_000)
    paths = write_outputs(small, tmp_path, "s", ("setlist", "svg", "setlist"))
    assert paths == [old, tmp_path / "s.svg"]
    assert old.read_text(encoding="utf-8") == setlist_yaml(small)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.setlist.yaml", "s.svg"]


def test_unknown_formats_and_bad_names_write_nothing(tmp_path: Path, small: Setlist) -> None:
    with pytest.raises(ValueError, match="'pdf'.*expected one of: " + ", ".join(FORMATS)):
        write_outputs(small, tmp_path / "out", "s", ("m3u8", "pdf"))
    with pytest.raises(ValueError, match="not a file name"):
        write_outputs(small, tmp_path / "out", "../s")
    assert not (tmp_path / "out").exists()


def test_a_failing_renderer_writes_nothing(
    tmp_path: Path, small: Setlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(setlist: Setlist) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(exports, "sheet_html", broken)
    with pytest.raises(RuntimeError):
        write_outputs(small, tmp_path, "s")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_keeps_the_old_file_whole(
    tmp_path: Path, small: Setlist, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "s.setlist.yaml"
    old.write_text("previous plan\n")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="the disk is full"):
        write_outputs(small, tmp_path, "s")
    assert old.read_text() == "previous plan\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.setlist.yaml"]
