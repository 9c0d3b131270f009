"""Listener profiles: what one client likes, vetoes and knows, and how an audience combines.

Pure: works on located YAML nodes (`setlist.yamlsrc`) and on `Track` values; reading
files is `setlist.profilefiles`' job. A profile records what was asked in preparation
(DOMAIN.md): music to avoid, familiar music with its associations, how much voice the
listener accepts, and the languages they understand, since lyrics in a known language
pull a dissociated listener into words. For couples work an `Audience` of two profiles
vetoes what either partner vetoes and keeps each partner's likes apart, so the planner
can serve both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np
import numpy.typing as npt

from setlist.errors import Problem, ProfileError
from setlist.models import Track
from setlist.yamlsrc import Mark, Node, parse_yaml
from setlist.yamlsrc import join_path as _join
from setlist.yamlsrc import show_value as _show
from setlist.yamlsrc import suggest as _suggest

BoolArray = npt.NDArray[np.bool_]

#: How much voice a listener accepts, least first. A track's "unknown" ranks with
#: "wordless": it is ruled out only for a listener who accepts no voice at all.
VOCALS_TOLERANCES = ("none", "wordless", "lyrics")
_VOICE_RANK = {"none": 0, "wordless": 1, "unknown": 1, "lyrics": 2}

#: A cap below this is inaudible under a room's noise; a typo rather than a choice.
VOLUME_FLOOR_DB = -40.0

PROFILE_KEYS: dict[str, str] = {
    "name": "A label shown in setlist files and messages (default: the file name); "
    "never the client's real name.",
    "likes": "Music the listener enjoys: artists, genres, tags, tracks.",
    "vetoes": "Music never to play for this listener: artists, genres, tags, tracks.",
    "familiar": "Music the listener knows (associations); avoided unless use_familiar.",
    "use_familiar": "true to allow familiar music on purpose (default false).",
    "vocals": "The most voice accepted anywhere in the session: none, wordless or "
    "lyrics (default lyrics).",
    "understands": "ISO 639-1 codes of languages the listener understands, e.g. [en, de]; "
    "lyrics in them are vetoed.",
    "max_volume_db": "A cap on playback level in dB relative to the normalised level (<= 0).",
    "notes": "Free text for the therapist.",
}
MATCHER_KEYS: dict[str, str] = {
    "artists": "Artist names (also matches one artist of 'A & B' or 'A feat. B').",
    "genres": "Genres (matches any part of a 'Ambient; Drone' genre field).",
    "tags": "Library tags (genre words and therapists' annotation tags).",
    "tracks": "'Artist - Title', a title alone, an ISRC or a URI.",
}

# ISO 639-1: every two-letter language code.
_ISO_639_1_CODES = """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he
    hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko
    kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd
    ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se
    sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty
    ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())

# Common ways a language tag is written in music files (ISO 639-2/B and /T codes, English
# names, endonyms), by ISO 639-1 code; the first word is the English name for messages.
_LANGUAGE_FORMS = {
    "am": "amharic amh አማርኛ",
    "ar": "arabic ara العربية",
    "bn": "bengali ben bangla বাংলা",
    "bs": "bosnian bos bosanski",
    "ca": "catalan cat català",
    "cs": "czech ces cze čeština cestina",
    "cy": "welsh cym wel cymraeg",
    "da": "danish dan dansk",
    "de": "german deu ger deutsch",
    "el": "greek ell gre ελληνικά",
    "en": "english eng",
    "es": "spanish spa español espanol castellano",
    "et": "estonian est eesti",
    "eu": "basque eus baq euskara",
    "fa": "persian fas per farsi فارسی",
    "fi": "finnish fin suomi",
    "fr": "french fra fre français francais",
    "ga": "irish gle gaeilge",
    "gd": "gaelic gla gàidhlig",
    "he": "hebrew heb עברית",
    "hi": "hindi hin हिन्दी",
    "hr": "croatian hrv hrvatski",
    "hu": "hungarian hun magyar",
    "id": "indonesian ind bahasa",
    "is": "icelandic isl ice íslenska",
    "it": "italian ita italiano",
    "ja": "japanese jpn 日本語",
    "ko": "korean kor 한국어",
    "la": "latin lat latina",
    "lt": "lithuanian lit lietuvių",
    "lv": "latvian lav latviešu",
    "mi": "maori mri mao māori",
    "ms": "malay msa may melayu",
    "nb": "bokmål nob bokmal",
    "nl": "dutch nld dut nederlands",
    "nn": "nynorsk nno",
    "no": "norwegian nor norsk",
    "pl": "polish pol polski",
    "pt": "portuguese por português portugues",
    "qu": "quechua que",
    "ro": "romanian ron rum română romana",
    "ru": "russian rus русский",
    "sa": "sanskrit san संस्कृतम्",
    "sk": "slovak slk slo slovenčina",
    "sl": "slovenian slv slovene slovenščina",
    "sq": "albanian sqi alb shqip",
    "sr": "serbian srp српски srpski",
    "sv": "swedish swe svenska",
    "sw": "swahili swa kiswahili",
    "ta": "tamil tam தமிழ்",
    "th": "thai tha ไทย",
    "tl": "tagalog tgl filipino fil",
    "tr": "turkish tur türkçe turkce",
    "uk": "ukrainian ukr українська",
    "ur": "urdu urd اردو",
    "vi": "vietnamese vie tiếng việt",
    "yo": "yoruba yor yorùbá",
    "zh": "chinese zho chi mandarin cantonese 中文",
    "zu": "zulu zul isizulu",
}
_LANGUAGE_ALIASES = {
    form: code for code, forms in _LANGUAGE_FORMS.items() for form in [code, *forms.split()]
}
_LANGUAGE_NAMES = {code: forms.split()[0].capitalize() for code, forms in _LANGUAGE_FORMS.items()}
#: ISO 639-2 codes that name no single language: no words, undetermined, several.
_NOT_A_LANGUAGE = frozenset({"zxx", "und", "mul", "mis", "none", "instrumental"})
_LANGUAGE_SPLIT = re.compile(r"\s*[;,/|]\s*|\s+and\s+")
_REGION = re.compile(r"[-_(\s]")

_ISRC = re.compile(r"[a-z]{2}[a-z0-9]{3}[0-9]{7}")
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-"})
_ARTIST_SPLIT = re.compile(r"\s*(?:;|/|,|&|\bfeat\.|\bfeat\b|\bft\.|\bfeaturing\b)\s*")
_GENRE_SPLIT = re.compile(r"\s*[/,]\s*")
_DB = re.compile(r"^\s*(?P<v>[-+]?\d+(?:\.\d+)?)\s*dB\s*$", re.IGNORECASE)


def normalise(text: str) -> str:
    """Case-folded text with whitespace collapsed and dashes unified, for matching."""
    return " ".join(text.translate(_DASHES).split()).casefold()


def language_codes(tag: str) -> tuple[str, ...]:
    """ISO 639-1 codes in a file's language tag: `eng`, `English`, `en-GB`, `en; de`.

    Unrecognised forms and "no words" codes (`zxx`, `und`) give nothing, so an unknown
    language is never mistaken for a known one.
    """
    out: list[str] = []
    for part in _LANGUAGE_SPLIT.split(normalise(tag)):
        if not part or part in _NOT_A_LANGUAGE:
            continue
        code = _LANGUAGE_ALIASES.get(part)
        if code is None:
            head = _REGION.split(part, maxsplit=1)[0]
            code = _LANGUAGE_ALIASES.get(head) or (head if head in ISO_639_1 else None)
        if code is not None and code not in out:
            out.append(code)
    return tuple(out)


def language_name(code: str) -> str:
    """`en` -> `English (en)`, for messages a therapist reads."""
    name = _LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else code


# -- matching ---------------------------------------------------------------------------


def _artist_keys(artist: str, album_artist: str) -> frozenset[str]:
    keys: set[str] = set()
    for name in (artist, album_artist):
        if name:
            keys.add(normalise(name))
            keys.update(normalise(p) for p in _ARTIST_SPLIT.split(name) if p.strip())
    return frozenset(keys)


def _genre_keys(genre: str) -> frozenset[str]:
    keys = {normalise(genre)}
    for part in genre.split(";"):
        keys.add(normalise(part))
        keys.update(normalise(p) for p in _GENRE_SPLIT.split(part))
    keys.discard("")
    return frozenset(keys)


def _cached_flags(
    tracks: Sequence[Track], key: Callable[[Track], Hashable], test: Callable[[Track], bool]
) -> BoolArray:
    """`test` per track, computed once per distinct `key` (artists and genres repeat)."""
    cache: dict[Hashable, bool] = {}

    def flag(t: Track) -> bool:
        k = key(t)
        hit = cache.get(k)
        if hit is None:
            hit = cache[k] = test(t)
        return hit

    return np.fromiter((flag(t) for t in tracks), dtype=np.bool_, count=len(tracks))


def _artist_of(t: Track) -> tuple[str, str]:
    return (t.artist, t.album_artist)


def _genre_of(t: Track) -> str:
    return t.genre


def _tags_of(t: Track) -> tuple[str, ...]:
    return t.tags


@dataclass(frozen=True, slots=True)
class Matcher:
    """A set of artists, genres, tags and tracks that a track may belong to.

    Entries are kept as written (for messages) and matched case-insensitively with
    whitespace collapsed. A track entry is "Artist - Title", a title alone (any artist),
    an ISRC or a URI; so one list serves what a client can name and what a file holds.
    """

    artists: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tracks: tuple[str, ...] = ()
    # Normalised entry -> entry as written; precomputed so `mask` does set lookups only.
    _artists: dict[str, str] = field(init=False, repr=False, compare=False)
    _genres: dict[str, str] = field(init=False, repr=False, compare=False)
    _tags: dict[str, str] = field(init=False, repr=False, compare=False)
    _tracks: dict[str, str] = field(init=False, repr=False, compare=False)
    # Every normalised title a track entry could end with (after any " - "), to skip
    # building "artist - title" keys for tracks whose title cannot match.
    _titles: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("artists", "genres", "tags", "tracks"):
            values = tuple(getattr(self, name))
            if any(not isinstance(v, str) or not v.strip() for v in values):
                raise ValueError(f"{name}: every entry must be non-empty text")
            object.__setattr__(self, name, values)
            table = {normalise(v): v for v in reversed(values)}
            object.__setattr__(self, "_" + name, table)
        tracks: dict[str, str] = self._tracks
        for key, written in list(tracks.items()):
            compact = key.replace("-", "").replace(" ", "")
            if _ISRC.fullmatch(compact):
                tracks.setdefault(compact, written)
        titles = set()
        for key in tracks:
            parts = key.split(" - ")
            titles.update(" - ".join(parts[i:]) for i in range(len(parts)))
        object.__setattr__(self, "_titles", frozenset(titles))

    @property
    def empty(self) -> bool:
        return not (self.artists or self.genres or self.tags or self.tracks)

    def reasons(self, track: Track) -> list[str]:
        """What in this matcher the track matches, as written: `artist 'Lumen Drift'`."""
        out = [
            f"artist {self._artists[k]!r}"
            for k in self._hits(self._artists, _artist_keys(track.artist, track.album_artist))
        ]
        out += [
            f"genre {self._genres[k]!r}" for k in self._hits(self._genres, _genre_keys(track.genre))
        ]
        out += [
            f"tag {self._tags[k]!r}"
            for k in self._hits(self._tags, {normalise(t) for t in track.tags})
        ]
        out += [
            f"track {self._tracks[k]!r}" for k in self._hits(self._tracks, self._track_keys(track))
        ]
        return out

    @staticmethod
    def _hits(table: dict[str, str], keys: Iterable[str]) -> list[str]:
        return sorted(k for k in set(keys) if k in table)

    def _track_keys(self, t: Track) -> set[str]:
        title = normalise(t.title)
        keys = {title, t.uri.strip().casefold()}
        if t.isrc:
            keys.add(t.isrc.replace("-", "").replace(" ", "").casefold())
        if title in self._titles:
            keys.update(f"{a} - {title}" for a in _artist_keys(t.artist, t.album_artist))
        return keys

    def _track_hit(self, t: Track) -> bool:
        """The cheap checks first: most tracks fail on their URI, ISRC and title alone."""
        entries = self._tracks
        if t.uri.strip().casefold() in entries:
            return True
        if t.isrc and t.isrc.replace("-", "").replace(" ", "").casefold() in entries:
            return True
        title = normalise(t.title)
        if title not in self._titles:
            return False
        return title in entries or any(
            f"{a} - {title}" in entries for a in _artist_keys(t.artist, t.album_artist)
        )

    def matches(self, track: Track) -> bool:
        """Whether the track is one of these artists, genres, tags or tracks."""
        return bool(self.mask([track])[0])

    def mask(self, tracks: Sequence[Track]) -> BoolArray:
        """`matches` for every track at once; distinct artists and genres are tested once."""
        out = np.zeros(len(tracks), dtype=np.bool_)
        if self.artists:
            artists = self._artists.keys()
            out |= _cached_flags(
                tracks,
                _artist_of,
                lambda t: not artists.isdisjoint(_artist_keys(t.artist, t.album_artist)),
            )
        if self.genres:
            genres = self._genres.keys()
            out |= _cached_flags(
                tracks, _genre_of, lambda t: not genres.isdisjoint(_genre_keys(t.genre))
            )
        if self.tags:
            tags = self._tags.keys()
            out |= _cached_flags(
                tracks, _tags_of, lambda t: any(normalise(tag) in tags for tag in t.tags)
            )
        if self.tracks:
            out |= np.fromiter(
                (self._track_hit(t) for t in tracks), dtype=np.bool_, count=len(tracks)
            )
        return out


# -- profiles ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """One listener's preferences, as agreed in preparation; see `PROFILE_KEYS`."""

    name: str
    likes: Matcher = field(default_factory=Matcher)
    vetoes: Matcher = field(default_factory=Matcher)
    familiar: Matcher = field(default_factory=Matcher)
    use_familiar: bool = False
    vocals: str = "lyrics"
    understands: tuple[str, ...] = ()
    max_volume_db: float | None = None
    notes: str = ""
    origin: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a profile needs a name")
        if self.vocals not in VOCALS_TOLERANCES:
            raise ValueError(f"vocals must be one of {', '.join(VOCALS_TOLERANCES)}")
        bad = [c for c in self.understands if c not in ISO_639_1]
        if bad:
            raise ValueError(f"not ISO 639-1 language codes: {', '.join(bad)}")
        if self.max_volume_db is not None and self.max_volume_db > 0:
            raise ValueError("a volume cap above 0 dB would boost past the normalised level")


class _Checker:
    """Walks a profile's nodes, collecting every located problem on the way."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, mark: Mark, path: str, message: str) -> None:
        self.problems.append(Problem(mark.origin, mark.line, mark.column, path, message))

    def mapping(self, node: Node, keys: dict[str, str], path: str) -> dict[str, Node] | None:
        if node.value is None and path:  # `likes:` left empty in a template
            return {}
        if not isinstance(node.value, dict):
            self.error(node.mark, path, f"expected a mapping with keys: {', '.join(keys)}")
            return None
        known: dict[str, Node] = {}
        for key, child in node.value.items():
            if key in keys:
                known[key] = child
                continue
            guess = _suggest(key, keys)
            tail = f"did you mean '{guess}'?" if guess else f"expected one of: {', '.join(keys)}"
            self.error(child.key_mark or child.mark, _join(path, key), f"unknown key ({tail})")
        return known

    def text(self, node: Node, path: str) -> str | None:
        if not isinstance(node.value, str) or not node.value.strip():
            self.error(node.mark, path, f"{_show(node.value)}: expected text")
            return None
        return node.value.strip()

    def text_list(self, node: Node, path: str) -> tuple[str, ...] | None:
        if node.value is None:
            return ()
        items = node.value if isinstance(node.value, list) else [node]
        if isinstance(node.value, dict):
            self.error(node.mark, path, "expected a list of names, e.g. ['Lumen Drift']")
            return None
        out: list[str] = []
        ok = True
        for i, item in enumerate(items):
            where = _join(path, i) if isinstance(node.value, list) else path
            value = item.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.error(item.mark, where, f"{value}: expected text (quote it: '{value}')")
                ok = False
            elif not isinstance(value, str) or not value.strip():
                self.error(item.mark, where, f"{_show(value)}: expected text")
                ok = False
            elif normalise(value) not in (normalise(o) for o in out):
                out.append(" ".join(value.split()))
        return tuple(out) if ok else None

    def matcher(self, node: Node, path: str) -> tuple[Matcher | None, dict[str, Node]]:
        fields = self.mapping(node, MATCHER_KEYS, path)
        if fields is None:
            return None, {}
        lists = {k: self.text_list(v, _join(path, k)) for k, v in fields.items()}
        if any(v is None for v in lists.values()):
            return None, fields
        return Matcher(**{k: v for k, v in lists.items() if v is not None}), fields

    def vocals(self, node: Node) -> str | None:
        if node.value is False:  # a bare `false` reads as "no vocals", as in arcs
            return "none"
        if isinstance(node.value, str) and node.value.strip().casefold() in VOCALS_TOLERANCES:
            return node.value.strip().casefold()
        guess = _suggest(str(node.value).casefold(), VOCALS_TOLERANCES)
        tail = f"; did you mean '{guess}'?" if guess else ""
        self.error(
            node.mark,
            "vocals",
            f"{_show(node.value)} is not a vocals tolerance "
            f"(expected none, wordless or lyrics{tail})",
        )
        return None

    def languages(self, node: Node) -> tuple[str, ...] | None:
        if self.text_list(node, "understands") is None:
            return None
        codes: list[str] = []
        ok = True
        for i, item in enumerate(_items(node)):
            where = _join("understands", i) if isinstance(node.value, list) else "understands"
            text = item.value.strip()
            code = text.casefold()
            if code in ISO_639_1:
                if code not in codes:
                    codes.append(code)
                continue
            # Names and other codes are refused, not guessed: one spelling per file keeps
            # profiles comparable, and the message says exactly what to write.
            known = language_codes(text)
            tail = f"; did you mean '{known[0]}'?" if len(known) == 1 else " (e.g. en, de, fr)"
            self.error(item.mark, where, f"{text!r} is not an ISO 639-1 language code{tail}")
            ok = False
        return tuple(codes) if ok else None

    def volume(self, node: Node) -> float | None:
        value = node.value
        if isinstance(value, str) and (m := _DB.match(value)):
            value = float(m.group("v"))
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(
                node.mark, "max_volume_db", f"{_show(node.value)}: expected dB, e.g. -6 or '-6dB'"
            )
            return None
        db = float(value)
        if db > 0:
            self.error(
                node.mark,
                "max_volume_db",
                f"{db:+g} dB would boost past the normalised level (expected 0 or below)",
            )
            return None
        if db < VOLUME_FLOOR_DB:
            self.error(
                node.mark, "max_volume_db", f"{db:g} dB is below {VOLUME_FLOOR_DB:g} dB (inaudible)"
            )
            return None
        return db

    def conflicts(self, likes: dict[str, Node], vetoes: dict[str, Node]) -> None:
        """An entry both liked and vetoed is a slip: the veto would silently win."""
        for key in MATCHER_KEYS:
            if key not in likes or key not in vetoes:
                continue
            liked = {normalise(n.value) for n in _items(likes[key]) if isinstance(n.value, str)}
            for i, n in enumerate(_items(vetoes[key])):
                if isinstance(n.value, str) and normalise(n.value) in liked:
                    where = (
                        _join("vetoes." + key, i)
                        if isinstance(vetoes[key].value, list)
                        else "vetoes." + key
                    )
                    self.error(
                        n.mark,
                        where,
                        f"{n.value!r} is also in likes.{key}; remove it from one of them",
                    )


def _items(node: Node) -> list[Node]:
    if isinstance(node.value, list):
        return node.value
    return [] if node.value is None else [node]


def parse_profile(root: Node, origin: str) -> Profile:
    """The profile a parsed YAML file describes, or `ProfileError` with every problem.

    `origin` is the file as shown to the user; its stem is the default `name`.
    """
    check = _Checker()
    fields = check.mapping(root, PROFILE_KEYS, "")
    if fields is None:
        raise ProfileError(check.problems, hint=_HINT)
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Node]] = {}
    for key in ("likes", "vetoes", "familiar"):
        if key in fields:
            values[key], sections[key] = check.matcher(fields[key], key)
    if "likes" in sections and "vetoes" in sections:
        check.conflicts(sections["likes"], sections["vetoes"])
    if "name" in fields:
        values["name"] = check.text(fields["name"], "name")
    if "notes" in fields:
        node = fields["notes"]
        values["notes"] = "" if node.value is None else check.text(node, "notes")
    if "use_familiar" in fields:
        node = fields["use_familiar"]
        if isinstance(node.value, bool):
            values["use_familiar"] = node.value
        else:
            check.error(node.mark, "use_familiar", f"{_show(node.value)}: expected true or false")
    if "vocals" in fields:
        values["vocals"] = check.vocals(fields["vocals"])
    if "understands" in fields:
        values["understands"] = check.languages(fields["understands"])
    if "max_volume_db" in fields:
        values["max_volume_db"] = check.volume(fields["max_volume_db"])
    if check.problems:
        problems = sorted(check.problems, key=lambda p: (p.line, p.column))
        raise ProfileError(problems, hint=_HINT)
    values.setdefault("name", PurePath(origin).stem or origin)
    return Profile(**values, origin=origin)


_HINT = "see profiles/README.md for the profile format"


def parse_profile_text(text: str, origin: str) -> Profile:
    """Parse and validate profile YAML text; `origin` names it in messages."""
    return parse_profile(parse_yaml(text, origin, ProfileError), origin)


# -- audiences --------------------------------------------------------------------------


def _names(profiles: Iterable[Profile]) -> str:
    names = [p.name for p in profiles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@dataclass(frozen=True, slots=True)
class Audience:
    """Everyone listening: one profile, two for couples work, or none.

    Vetoes combine as a union (a track is only safe if it is safe for everyone); likes
    stay one row per listener so neither partner's taste drowns the other's.
    """

    profiles: tuple[Profile, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "profiles", tuple(self.profiles))
        seen: dict[str, Profile] = {}
        for p in self.profiles:
            key = p.name.casefold()
            if key in seen:
                raise ProfileError(
                    f"{seen[key].origin or '?'} and {p.origin or '?'} are both named "
                    f"{p.name!r}; give one a different 'name' so messages can tell them apart"
                )
            seen[key] = p

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.profiles)

    @property
    def max_volume_db(self) -> float | None:
        """The lowest cap any listener set (None when nobody set one)."""
        caps = [p.max_volume_db for p in self.profiles if p.max_volume_db is not None]
        return min(caps) if caps else None

    @property
    def vocals(self) -> str:
        """The strictest vocals tolerance: the session must suit everyone."""
        if not self.profiles:
            return "lyrics"
        return min((p.vocals for p in self.profiles), key=VOCALS_TOLERANCES.index)

    @property
    def understands(self) -> tuple[str, ...]:
        """Every language some listener understands."""
        return tuple(dict.fromkeys(c for p in self.profiles for c in p.understands))

    def _strictest(self) -> list[Profile]:
        return [p for p in self.profiles if p.vocals == self.vocals]

    def too_much_voice(self, tracks: Sequence[Track]) -> BoolArray:
        """Tracks with more voice than the strictest listener accepts."""
        limit = VOCALS_TOLERANCES.index(self.vocals)
        if not self.profiles or limit == len(VOCALS_TOLERANCES) - 1:
            return np.zeros(len(tracks), dtype=np.bool_)
        ranks = np.fromiter((_VOICE_RANK[t.vocals] for t in tracks), np.int8, len(tracks))
        return ranks > limit

    def understood_lyrics(self, tracks: Sequence[Track]) -> BoolArray:
        """Tracks with lyrics in a language some listener understands.

        Kept apart from `vetoed` as well, so a planner could later let lyrics back in
        for the return phase only.
        """
        known = frozenset(self.understands)
        if not known:
            return np.zeros(len(tracks), dtype=np.bool_)
        cache: dict[str, bool] = {}

        def hit(t: Track) -> bool:
            if t.vocals != "lyrics" or not t.language:
                return False
            v = cache.get(t.language)
            if v is None:
                v = cache[t.language] = not known.isdisjoint(language_codes(t.language))
            return v

        return np.fromiter((hit(t) for t in tracks), np.bool_, len(tracks))

    def vetoed(self, tracks: Sequence[Track]) -> BoolArray:
        """Tracks ruled out for the whole session, for any listener's sake."""
        out = np.zeros(len(tracks), dtype=np.bool_)
        for p in self.profiles:
            if not p.vetoes.empty:
                out |= p.vetoes.mask(tracks)
            if not p.use_familiar and not p.familiar.empty:
                out |= p.familiar.mask(tracks)
        out |= self.too_much_voice(tracks)
        out |= self.understood_lyrics(tracks)
        return out

    def likes(self, tracks: Sequence[Track]) -> BoolArray:
        """One row per listener: which tracks each one likes (vetoes not applied)."""
        out = np.zeros((len(self.profiles), len(tracks)), dtype=np.bool_)
        for i, p in enumerate(self.profiles):
            if not p.likes.empty:
                out[i] = p.likes.mask(tracks)
        return out

    def veto_reasons(self, track: Track) -> list[str]:
        """Why `vetoed` rules this track out, in words; empty when it does not."""
        out: list[str] = []
        for p in self.profiles:
            out += [f"{p.name} vetoes {r}" for r in p.vetoes.reasons(track)]
            if not p.use_familiar:
                out += [
                    f"familiar to {p.name} ({r}; set use_familiar: true to allow it)"
                    for r in p.familiar.reasons(track)
                ]
        if self.too_much_voice([track])[0]:
            has = {
                "lyrics": "has lyrics",
                "wordless": "has wordless voice",
                "unknown": "its vocals are not known yet (analyse or annotate it)",
            }[track.vocals]
            accepts = "no voice" if self.vocals == "none" else "wordless voice at most"
            who = self._strictest()
            verb = "accepts" if len(who) == 1 else "accept"
            out.append(f"{has}; {_names(who)} {verb} {accepts}")
        if self.understood_lyrics([track])[0]:
            for code in language_codes(track.language):
                who = [p for p in self.profiles if code in p.understands]
                if who:
                    verb = "understands" if len(who) == 1 else "understand"
                    out.append(f"lyrics in {language_name(code)}, which {_names(who)} {verb}")
        return out

    def cautions(self, track: Track) -> list[str]:
        """Doubts `vetoed` cannot settle: lyrics whose language the library does not know."""
        if track.vocals != "lyrics" or not self.understands or language_codes(track.language):
            return []
        codes = ", ".join(self.understands)
        return [
            f"lyrics in an unrecorded language ({track.language or 'no language tag'}); "
            f"check by ear that it is none of {codes}, or tag the file's language"
        ]

    def underserved(self, liked_counts: Sequence[int], total: int) -> list[str]:
        """Messages for listeners whose likes fill under half what another's do.

        `liked_counts[i]` is how many planned tracks listener i likes; a listener with no
        likes in their profile asked for nothing, so is never reported. A comparison needs
        the other listener to have at least 2, so one lucky track is not a pattern.
        """
        if len(liked_counts) != len(self.profiles):
            raise ValueError(
                f"{len(liked_counts)} counts for {len(self.profiles)} profiles; give one each"
            )
        out: list[str] = []
        unit = "track" if total == 1 else "tracks"
        for i, p in enumerate(self.profiles):
            if p.likes.empty:
                continue
            others = [(c, j) for j, c in enumerate(liked_counts) if j != i]
            if not others:
                continue
            best, j = max(others, key=lambda cj: (cj[0], -cj[1]))
            if best >= 2 and liked_counts[i] < best / 2:
                out.append(
                    f"{p.name}'s likes fill {liked_counts[i]} of {total} {unit} against "
                    f"{self.profiles[j].name}'s {best}"
                )
        return out
