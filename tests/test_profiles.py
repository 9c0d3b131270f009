"""Listener profiles: located validation, matching, and how two listeners combine."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from setlist.errors import ProfileError
from setlist.models import Track
from setlist.profilefiles import load_profile
from setlist.profiles import (
    Audience,
    Matcher,
    Profile,
    language_codes,
    parse_profile_text,
)
from setlist.testing import make_track

from .conftest import REPO


def profile(text: str, origin: str = "p.yaml") -> Profile:
    return parse_profile_text(textwrap.dedent(text), origin)


def track(
    i: int = 1,
    *,
    artist: str = "Lumen Drift",
    title: str = "Slow Tide",
    vocals: str = "none",
    tags: tuple[str, ...] = (),
    **fields: object,
) -> Track:
    base = make_track(i, artist=artist, title=title, vocals=vocals, tags=tags)
    return replace(base, **fields)  # type: ignore[arg-type]


# -- parsing ----------------------------------------------------------------------------

FULL = """\
name: Partner A
likes:
  artists: [Mara Ellory, '  hollow   PINES ']
  genres: [neoclassical]
  tags: [piano]
  tracks: ['Lumen Drift - Slow Tide']
vetoes:
  genres: [electronic]
familiar:
  artists: [Ilse Varga]
use_familiar: true
vocals: wordless
understands: [EN, de]
max_volume_db: -4.5
notes: |
  Prefers piano.
"""


def test_a_full_profile_parses() -> None:
    p = profile(FULL, "profiles/a.yaml")
    assert p.name == "Partner A"
    assert p.likes.artists == ("Mara Ellory", "hollow PINES")
    assert p.likes.tracks == ("Lumen Drift - Slow Tide",)
    assert p.vetoes.genres == ("electronic",)
    assert p.familiar.artists == ("Ilse Varga",)
    assert p.use_familiar is True
    assert p.vocals == "wordless"
    assert p.understands == ("en", "de")
    assert p.max_volume_db == -4.5
    assert p.notes == "Prefers piano."
    assert p.origin == "profiles/a.yaml"


def test_defaults_and_name_from_the_file() -> None:
    p = profile("likes:\n  artists: [Lumen Drift]\nvetoes:\n", "profiles/partner-b.yaml")
    assert p.name == "partner-b"
    assert p.vocals == "lyrics"
    assert p.understands == ()
    assert p.max_volume_db is None
    assert not p.use_familiar
    assert p.vetoes.empty and p.familiar.empty


def test_a_bare_string_is_a_one_item_list_and_false_means_no_voice() -> None:
    p = profile("vetoes:\n  artists: Lumen Drift\nvocals: false\nunderstands: en\n")
    assert p.vetoes.artists == ("Lumen Drift",)
    assert p.vocals == "none"
    assert p.understands == ("en",)


def test_max_volume_accepts_a_db_string() -> None:
    assert profile("max_volume_db: '-6 dB'\n").max_volume_db == -6.0


MALFORMED = [
    pytest.param(
        "name: A\nlikez:\n  artists: [X]\n",
        "p.yaml:2:1: likez: unknown key (did you mean 'likes'?)",
        id="typo-top",
    ),
    pytest.param(
        "vetoes:\n  artist: [X]\n",
        "p.yaml:2:3: vetoes.artist: unknown key (did you mean 'artists'?)",
        id="typo-nested",
    ),
    pytest.param(
        "colour: blue\n",
        "p.yaml:1:1: colour: unknown key (expected one of: name, likes, vetoes, familiar, "
        "use_familiar, vocals, understands, max_volume_db, notes)",
        id="unknown-no-guess",
    ),
    pytest.param(
        "vocals: loud\n",
        "p.yaml:1:9: vocals: 'loud' is not a vocals tolerance (expected none, wordless or lyrics)",
        id="vocals-loud",
    ),
    pytest.param(
        "vocals: lyric\n",
        "p.yaml:1:9: vocals: 'lyric' is not a vocals tolerance "
        "(expected none, wordless or lyrics; did you mean 'lyrics'?)",
        id="vocals-typo",
    ),
    pytest.param(
        "max_volume_db: 3\n",
        "p.yaml:1:16: max_volume_db: +3 dB would boost past the normalised level "
        "(expected 0 or below)",
        id="volume-positive",
    ),
    pytest.param(
        "max_volume_db: -60\n",
        "p.yaml:1:16: max_volume_db: -60 dB is below -40 dB (inaudible)",
        id="volume-inaudible",
    ),
    pytest.param(
        "max_volume_db: quiet\n",
        "p.yaml:1:16: max_volume_db: 'quiet': expected dB, e.g. -6 or '-6dB'",
        id="volume-word",
    ),
    pytest.param(
        "understands: [en, english]\n",
        "p.yaml:1:19: understands[1]: 'english' is not an ISO 639-1 language code; "
        "did you mean 'en'?",
        id="language-name",
    ),
    pytest.param(
        "understands: [en-GB]\n",
        "p.yaml:1:15: understands[0]: 'en-GB' is not an ISO 639-1 language code; "
        "did you mean 'en'?",
        id="language-region",
    ),
    pytest.param(
        "understands: [xx]\n",
        "p.yaml:1:15: understands[0]: 'xx' is not an ISO 639-1 language code (e.g. en, de, fr)",
        id="language-unknown",
    ),
    pytest.param(
        "use_familiar: yes\n",
        "p.yaml:1:15: use_familiar: 'yes': expected true or false",
        id="familiar-flag",
    ),
    pytest.param(
        "likes:\n  tracks: [1999]\n",
        "p.yaml:2:12: likes.tracks[0]: 1999: expected text (quote it: '1999')",
        id="number-title",
    ),
    pytest.param(
        "likes: [Lumen Drift]\n",
        "p.yaml:1:8: likes: expected a mapping with keys: artists, genres, tags, tracks",
        id="section-not-mapping",
    ),
    pytest.param(
        "likes:\n  artists: [Lumen Drift]\nvetoes:\n  artists: [lumen drift]\n",
        "p.yaml:4:13: vetoes.artists[0]: 'lumen drift' is also in likes.artists; "
        "remove it from one of them",
        id="liked-and-vetoed",
    ),
    pytest.param(
        "- likes\n- vetoes\n",
        "p.yaml:1:1: expected a mapping with keys: name, likes, vetoes, familiar, "
        "use_familiar, vocals, understands, max_volume_db, notes",
        id="not-a-mapping",
    ),
    pytest.param(
        "name: A\nlikes: [unclosed\n",
        "p.yaml:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)",
        id="yaml-syntax",
    ),
    pytest.param("# only a comment\n", "p.yaml:1:1: the file is empty", id="empty"),
    pytest.param(
        "name: ''\n",
        "p.yaml:1:7: name: '': expected text",
        id="empty-name",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_malformed_profiles_are_located(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile_text(text, "p.yaml")
    assert info.value.lines()[0] == expected


def test_every_problem_is_reported_in_file_order() -> None:
    text = "vocals: loud\nlikes:\n  artsts: [X]\nmax_volume_db: 2\n"
    with pytest.raises(ProfileError) as info:
        parse_profile_text(text, "p.yaml")
    lines = info.value.lines()
    assert [line.split(": ", 1)[0] for line in lines] == ["p.yaml:1:9", "p.yaml:3:3", "p.yaml:4:16"]
    assert "(and 2 more)" in info.value.message


def test_profile_model_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="vocals"):
        Profile("A", vocals="loud")
    with pytest.raises(ValueError, match="ISO 639-1"):
        Profile("A", understands=("english",))
    with pytest.raises(ValueError, match="above 0 dB"):
        Profile("A", max_volume_db=1.0)


# -- files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["individual-example", "partner-a", "partner-b"])
def test_shipped_examples_load(name: str) -> None:
    p = load_profile(REPO / "profiles" / f"{name}.yaml")
    assert p.name and not p.likes.empty and not p.vetoes.empty
    assert p.understands


def test_shipped_couple_combines() -> None:
    a = load_profile(REPO / "profiles" / "partner-a.yaml")
    b = load_profile(REPO / "profiles" / "partner-b.yaml")
    audience = Audience((a, b))
    assert audience.names == ("Partner A", "Partner B")
    assert audience.vocals == "none"
    assert audience.max_volume_db == -6.0


def test_load_profile_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ProfileError, match=r"missing\.yaml: no such file"):
        load_profile(missing)
    with pytest.raises(ProfileError, match="is a folder"):
        load_profile(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"name: A\nnotes: caf\xe9\n")
    with pytest.raises(ProfileError) as info:
        load_profile(latin1)
    assert info.value.lines() == [f"{latin1}:2:1: not UTF-8 text (save the file as UTF-8)"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("vocals: loud\n", encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(bad)
    assert info.value.lines()[0].startswith(f"{bad}:1:9: vocals: ")


def test_load_profile_defaults_the_name_to_the_stem(tmp_path: Path) -> None:
    path = tmp_path / "partner-c.yml"
    path.write_text("\ufeffvocals: wordless\n", encoding="utf-8")
    assert load_profile(path).name == "partner-c"


# -- matching ---------------------------------------------------------------------------


def test_artists_match_case_and_whitespace_insensitively_and_within_credits() -> None:
    m = Matcher(artists=("  lumen   DRIFT ",))
    assert m.matches(track(artist="Lumen Drift"))
    assert m.matches(track(artist="Hollow Pines feat. Lumen Drift"))
    assert m.matches(track(artist="Hollow Pines & Lumen Drift"))
    assert m.matches(track(artist="Various Artists", album_artist="Lumen Drift"))
    assert not m.matches(track(artist="Lumen Drifters"))
    assert m.reasons(track(artist="LUMEN DRIFT")) == ["artist '  lumen   DRIFT '"]


def test_genres_match_any_part_of_the_genre_field() -> None:
    m = Matcher(genres=("Drone", "neo-classical"))
    assert m.matches(track(genre="Ambient; Drone"))
    assert m.matches(track(genre="ambient / drone"))
    assert m.matches(track(genre="Neo-Classical"))
    assert not m.matches(track(genre="Ambient; Drone Metal"))
    assert not m.matches(track(genre=""))


def test_tags_match_track_tags() -> None:
    m = Matcher(tags=("Piano",))
    assert m.matches(track(tags=("pad", "piano")))
    assert not m.matches(track(tags=("pad",), genre="piano"))


@pytest.mark.parametrize(
    ("entry", "hit", "miss"),
    [
        ("Lumen Drift - Slow Tide", {}, {"artist": "Hollow Pines"}),
        ("lumen drift \u2013 slow  tide", {}, {"title": "Slow Tides"}),  # en dash, spaces
        ("Slow Tide", {"artist": "Anyone"}, {"title": "Slow"}),
        ("Slow Tide - Live", {"title": "Slow Tide - Live"}, {"title": "Slow Tide"}),
        ("US-AB1-24-00017", {"isrc": "USAB12400017"}, {"isrc": "USAB12400018"}),
        ("spotify:track:4uLU6hMCjMI75M1A2tKUQC",
         {"uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC"}, {"uri": "spotify:track:other"}),
        ("file:///music/1.flac", {}, {"uri": "file:///music/2.flac"}),
    ],
)  # fmt: skip
def test_track_entries(entry: str, hit: dict[str, str], miss: dict[str, str]) -> None:
    m = Matcher(tracks=(entry,))
    yes, no = track(**hit), track(**miss)
    assert m.matches(yes)
    assert not m.matches(no)
    assert m.mask([yes, no]).tolist() == [True, False]
    assert m.reasons(yes) == [f"track {entry!r}"]


def test_mask_agrees_with_reasons_on_a_library() -> None:
    tracks = [
        track(i, artist=f"Artist {i % 7}", title=f"Piece {i}", genre=g, tags=(t,))
        for i, (g, t) in enumerate(
            zip(
                ["ambient; drone", "piano", "electronic / pulse"] * 20,
                ["pad", "warm"] * 30,
                strict=True,
            ),
            start=1,
        )
    ]
    m = Matcher(
        artists=("Artist 3",), genres=("pulse",), tags=("warm",), tracks=("Artist 1 - Piece 8",)
    )
    mask = m.mask(tracks)
    assert mask.dtype == np.bool_ and mask.shape == (60,)
    assert mask.tolist() == [bool(m.reasons(t)) for t in tracks]
    assert 0 < mask.sum() < 60
    assert not Matcher().mask(tracks).any()


def test_matcher_refuses_empty_entries() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        Matcher(artists=("",))


# -- audiences --------------------------------------------------------------------------


def test_language_tags_normalise_to_iso_639_1() -> None:
    assert language_codes("en") == ("en",)
    assert language_codes("ENG") == ("en",)
    assert language_codes("English") == ("en",)
    assert language_codes("en-GB") == ("en",)
    assert language_codes("ger") == language_codes("Deutsch") == ("de",)
    assert language_codes("en; fr") == ("en", "fr")
    assert language_codes("") == language_codes("zxx") == language_codes("und") == ()
    assert language_codes("Klingon") == ()


def test_empty_audience_vetoes_and_likes_nothing() -> None:
    tracks = [track(1, vocals="lyrics", language="en"), track(2, vocals="unknown")]
    audience = Audience()
    assert audience.vetoed(tracks).tolist() == [False, False]
    assert audience.likes(tracks).shape == (0, 2)
    assert audience.max_volume_db is None and audience.names == ()
    assert audience.veto_reasons(tracks[0]) == []


def test_vetoes_are_the_union_of_both_profiles() -> None:
    a = profile("name: A\nvetoes: {artists: [Lumen Drift]}\n")
    b = profile("name: B\nvetoes: {tags: [choral]}\n")
    tracks = [
        track(1, artist="Lumen Drift"),
        track(2, artist="Hollow Pines", tags=("choral",)),
        track(3, artist="Hollow Pines"),
    ]
    audience = Audience((a, b))
    assert audience.vetoed(tracks).tolist() == [True, True, False]
    assert Audience((a,)).vetoed(tracks).tolist() == [True, False, False]
    assert audience.veto_reasons(tracks[0]) == ["A vetoes artist 'Lumen Drift'"]
    assert audience.veto_reasons(tracks[1]) == ["B vetoes tag 'choral'"]
    assert audience.veto_reasons(tracks[2]) == []


@pytest.mark.parametrize(
    ("tolerances", "vetoed"),
    [
        (("lyrics",), [False, False, False, False]),
        (("lyrics", "wordless"), [False, False, True, False]),
        (("wordless", "none"), [False, True, True, True]),
        (("none",), [False, True, True, True]),
    ],
)
def test_the_strictest_vocals_tolerance_wins(
    tolerances: tuple[str, ...], vetoed: list[bool]
) -> None:
    profiles = tuple(Profile(f"P{i}", vocals=v) for i, v in enumerate(tolerances))
    tracks = [track(i, vocals=v) for i, v in enumerate(("none", "wordless", "lyrics", "unknown"))]
    assert Audience(profiles).vetoed(tracks).tolist() == vetoed


def test_voice_reasons_name_the_strict_listener() -> None:
    audience = Audience((Profile("A"), Profile("B", vocals="wordless")))
    assert audience.veto_reasons(track(vocals="lyrics")) == [
        "has lyrics; B accepts wordless voice at most"
    ]
    audience = Audience((Profile("A", vocals="none"), Profile("B", vocals="none")))
    (reason,) = audience.veto_reasons(track(vocals="unknown"))
    assert reason.endswith("A and B accept no voice")


def test_lyrics_in_an_understood_language_are_vetoed() -> None:
    a = Profile("A", understands=("en",))
    b = Profile("B", understands=("de",))
    tracks = [
        track(1, vocals="lyrics", language="eng"),
        track(2, vocals="lyrics", language="German"),
        track(3, vocals="lyrics", language="fr"),
        track(4, vocals="wordless", language="en"),
        track(5, vocals="lyrics", language=""),
        track(6, vocals="lyrics", language="zxx"),
    ]
    audience = Audience((a, b))
    assert audience.vetoed(tracks).tolist() == [True, True, False, False, False, False]
    assert audience.understood_lyrics(tracks).tolist() == audience.vetoed(tracks).tolist()
    assert audience.veto_reasons(tracks[0]) == ["lyrics in English (en), which A understands"]
    assert audience.veto_reasons(tracks[1]) == ["lyrics in German (de), which B understands"]
    # An unrecorded language is not vetoed by this rule, but it is flagged.
    assert audience.veto_reasons(tracks[4]) == []
    (caution,) = audience.cautions(tracks[4])
    assert "unrecorded language" in caution and "en, de" in caution
    assert audience.cautions(tracks[2]) == []
    assert Audience((Profile("C"),)).cautions(tracks[4]) == []


def test_familiar_music_is_vetoed_unless_used_on_purpose() -> None:
    text = "name: A\nfamiliar: {tracks: ['Lumen Drift - Slow Tide']}\n"
    known, other = track(1), track(2, title="Deep River")
    avoid = profile(text)
    assert Audience((avoid,)).vetoed([known, other]).tolist() == [True, False]
    (reason,) = Audience((avoid,)).veto_reasons(known)
    assert reason.startswith("familiar to A (track 'Lumen Drift - Slow Tide'")
    chosen = profile(text + "use_familiar: true\n")
    assert Audience((chosen,)).vetoed([known, other]).tolist() == [False, False]
    # One partner's familiar music is vetoed for the couple even if the other opts in.
    other_partner = replace(chosen, name="B")
    assert Audience((avoid, other_partner)).vetoed([known]).tolist() == [True]


def test_veto_reasons_agree_with_vetoed() -> None:
    a = profile("name: A\nvetoes: {genres: [drone]}\nvocals: wordless\nunderstands: [en]\n")
    b = profile("name: B\nfamiliar: {artists: [Hollow Pines]}\n")
    tracks = [
        track(i, artist=artist, genre=genre, vocals=vocals, language=lang)
        for i, (artist, genre, vocals, lang) in enumerate(
            [
                ("Lumen Drift", "ambient", "none", ""),
                ("Lumen Drift", "Drone", "none", ""),
                ("Hollow Pines", "ambient", "none", ""),
                ("Lumen Drift", "ambient", "lyrics", "fr"),
                ("Lumen Drift", "ambient", "unknown", "en"),
                ("Mara Ellory", "ambient; drone", "lyrics", "en"),
            ]
        )
    ]
    audience = Audience((a, b))
    vetoed = audience.vetoed(tracks).tolist()
    assert vetoed == [False, True, True, True, False, True]
    assert [bool(audience.veto_reasons(t)) for t in tracks] == vetoed
    assert audience.veto_reasons(tracks[5]) == [
        "A vetoes genre 'drone'",
        "has lyrics; A accepts wordless voice at most",
        "lyrics in English (en), which A understands",
    ]


def test_likes_have_one_row_per_listener() -> None:
    a = profile("name: A\nlikes: {artists: [Lumen Drift]}\n")
    b = profile("name: B\nlikes: {genres: [drone]}\n")
    c = Profile("C")
    tracks = [
        track(1, artist="Lumen Drift"),
        track(2, artist="Hollow Pines", genre="drone"),
        track(3, artist="Lumen Drift", genre="drone"),
        track(4, artist="Mara Ellory"),
    ]
    likes = Audience((a, b, c)).likes(tracks)
    assert likes.dtype == np.bool_ and likes.shape == (3, 4)
    assert likes.tolist() == [
        [True, False, True, False],
        [False, True, True, False],
        [False, False, False, False],
    ]


def test_the_lowest_volume_cap_applies() -> None:
    caps = (Profile("A", max_volume_db=-3.0), Profile("B"), Profile("C", max_volume_db=-6.0))
    assert Audience(caps).max_volume_db == -6.0
    assert Audience((Profile("B"),)).max_volume_db is None


def test_two_profiles_with_one_name_are_refused() -> None:
    with pytest.raises(ProfileError, match=r"x/a\.yaml and y/a\.yaml are both named"):
        Audience((Profile("A", origin="x/a.yaml"), Profile("a", origin="y/a.yaml")))


def test_underserved_partners_are_named() -> None:
    a = profile("name: Partner A\nlikes: {artists: [X]}\n")
    b = profile("name: Partner B\nlikes: {artists: [Y]}\n")
    audience = Audience((a, b))
    assert audience.underserved([9, 1], 24) == [
        "Partner B's likes fill 1 of 24 tracks against Partner A's 9"
    ]
    assert audience.underserved([0, 4], 12) == [
        "Partner A's likes fill 0 of 12 tracks against Partner B's 4"
    ]
    assert audience.underserved([5, 3], 24) == []  # over half is fair enough
    assert audience.underserved([1, 0], 24) == []  # one track is not a pattern
    assert audience.underserved([4, 2], 24) == []  # exactly half is not under half
    # A listener whose profile names no likes asked for nothing, so is never under-served.
    assert Audience((a, Profile("C"))).underserved([6, 0], 24) == []
    with pytest.raises(ValueError, match="one each"):
        audience.underserved([1], 24)
