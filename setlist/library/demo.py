"""A synthesised, royalty-free demo music library, with its ground truth in the tags.

The demo and the tests need a library nobody owns the rights to, spread over the whole
intensity range (drones to driving beats), several formats and tag dialects, and known
answers (tempo, voice, intended intensity, loudness) to check the analysis against.

Speed comes from synthesising every layer as a short seamless loop (FFT-domain filtering
and circular reverb keep the seams exact), tiling it under slow control-rate envelopes,
streaming the mix to the encoder in chunks, estimating loudness from the loops instead
of filtering the whole track, and giving slow encoders (LAME, Vorbis) the shorter tracks.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import numpy as np
from mutagen import id3
from mutagen.flac import FLAC
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from scipy import fft as sfft

__all__ = [
    "CORRUPT_CORPUS_EXPECTED",
    "DEMO_TAG",
    "FORMATS",
    "DemoTrack",
    "generate_demo_library",
    "plan_demo_tracks",
    "read_demo_truth",
    "render_demo_track",
    "write_corrupt_corpus",
    "write_demo_track",
]

#: Custom tag (Vorbis comment, TXXX description, MP4 freeform name) holding the ground truth.
DEMO_TAG = "SETLIST_DEMO"
_MP4_FREEFORM = "----:com.apple.iTunes:"

_HOP = 512  # control-rate hop (samples): envelopes are linear between hops
_CHUNK_HOPS = 64  # hops per streamed chunk: keeps the mixing arrays cache-sized
_SOFT_KNEE = 0.708  # -3 dBFS: the soft clipper starts bending here...
_CEILING = 0.891  # ...and never passes -1 dBFS, leaving lossy encoders some headroom


# --- formats ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioFormat:
    """How one format is encoded; `cost` (CPU s per audio s) steers duration and scheduling."""

    name: str
    suffix: str
    container: str
    codec: str
    sample_format: str
    bit_rate: int | None
    options: tuple[tuple[str, str], ...]
    lossless: bool
    cost: float


# fmt: off
FORMATS: dict[str, AudioFormat] = {f.name: f for f in (
    AudioFormat("wav", ".wav", "wav", "pcm_s16le", "s16", None, (), True, 0.0003),
    AudioFormat("flac", ".flac", "flac", "flac", "s16", None, (), True, 0.0008),
    AudioFormat("alac", ".m4a", "ipod", "alac", "s16p", None, (), True, 0.0015),
    AudioFormat("opus", ".opus", "ogg", "libopus", "flt", 56000,
                (("compression_level", "0"), ("frame_duration", "60")), False, 0.0021),
    AudioFormat("aac", ".m4a", "ipod", "aac", "fltp", 96000, (("aac_coder", "fast"),), False,
                0.0043),
    AudioFormat("vorbis", ".ogg", "ogg", "vorbis", "fltp", None, (("strict", "experimental"),),
                False, 0.008),
    AudioFormat("mp3", ".mp3", "mp3", "libmp3lame", "fltp", 96000, (("compression_level", "7"),),
                False, 0.0085),
)}
# fmt: on

#: Tracks per format in every 60. FLAC and Opus carry most of the audio: they are the
#: fastest to encode (FLAC ~1,200x, Opus ~450x realtime on one core here) and Opus the
#: smallest; LAME, Vorbis and AAC (~100-250x) appear for variety, on short tracks.
_FORMAT_WEIGHTS = {"opus": 33, "flac": 13, "aac": 5, "mp3": 3, "wav": 2, "alac": 2, "vorbis": 2}


def _rotation() -> tuple[str, ...]:
    """One of each format first (so even 8 tracks are varied), then a smooth weighted mix."""
    firsts = ("flac", "opus", "mp3", "aac", "vorbis", "wav", "alac")
    left = {f: w - 1 for f, w in _FORMAT_WEIGHTS.items()}
    total, credit, order = sum(left.values()), dict.fromkeys(left, 0), list(firsts)
    for _ in range(total):
        for f in credit:
            credit[f] += left[f]
        pick = max(credit, key=lambda f: credit[f])
        credit[pick] -= total
        order.append(pick)
    return tuple(order)


_FORMAT_ROTATION = _rotation()
#: Shortest tracks first: slow encoders and big (lossless) files get the short ones, and
#: Opus, fast and small, the longest.
_DURATION_ORDER = ("wav", "alac", "mp3", "vorbis", "aac", "flac", "opus")


# --- the plan --------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoTrack:
    """Everything decided about one demo track before any audio exists (pure, picklable)."""

    seed: int
    index: int
    title: str
    artist: str
    album: str
    album_artist: str
    genre: str
    year: int
    track_number: int
    track_total: int
    disc_number: int
    disc_total: int
    isrc: str
    format: str
    sample_rate: int
    channels: int
    hops: int  # length in control hops: duration = hops * 512 / sample_rate
    texture: str
    layers: tuple[str, ...]
    tempo: int | None
    has_voice: bool
    arc: str
    intensity_low: float
    intensity_high: float
    key_root: int  # MIDI note of the tonic, A2 to G#3
    mode: str
    lufs: float
    lead_silence: float
    trail_silence: float
    fade_in: float
    fade_out: float
    replaygain: bool

    @property
    def duration(self) -> float:
        return self.hops * _HOP / self.sample_rate

    @property
    def intensity(self) -> float:
        """Mean intended intensity: every arc shape averages to the middle of its range."""
        return round((self.intensity_low + self.intensity_high) / 2, 3)

    @property
    def intensity_start(self) -> float:
        return round(float(_arc_curve(self, np.array([0.0]))[0]), 3)

    @property
    def intensity_end(self) -> float:
        return round(float(_arc_curve(self, np.array([1.0]))[0]), 3)

    @property
    def relpath(self) -> Path:
        disc = f"{self.disc_number}-" if self.disc_total > 1 else ""
        name = f"{disc}{self.track_number:02d} {self.title}{FORMATS[self.format].suffix}"
        return Path(_safe(self.album_artist), _safe(self.album), _safe(name))

    @property
    def comment(self) -> str:
        words = ", ".join(_LAYER_WORDS[layer] for layer in self.layers)
        pulse = f" at {self.tempo} BPM" if self.tempo else ", no steady pulse"
        voice = " Wordless vocals (sung vowels)." if self.has_voice else " Instrumental."
        return f"{_TEXTURE_WORDS[self.texture]}: {words}{pulse}; {self.arc} arc.{voice}"

    def ground_truth(self) -> dict[str, Any]:
        """What was synthesised, as stored in the SETLIST_DEMO tag."""
        return {
            "v": 1,
            "seed": self.seed,
            "index": self.index,
            "texture": self.texture,
            "layers": list(self.layers),
            "tempo": self.tempo,
            "has_voice": self.has_voice,
            "intensity": self.intensity,
            "intensity_start": self.intensity_start,
            "intensity_end": self.intensity_end,
            "arc": self.arc,
            "lufs": round(self.lufs, 1),
            "lead_silence": round(self.lead_silence, 2),
            "trail_silence": round(self.trail_silence, 2),
            "duration": round(self.duration, 3),
            "channels": self.channels,
            "sample_rate": self.sample_rate,
        }


def _safe(name: str) -> str:
    return re.sub(r"[^\w &',.()\-]", "_", name).strip(" .") or "_"


_LAYER_WORDS = {
    "drone": "drone",
    "pad": "evolving pad",
    "pluck": "sparse plucks",
    "piano": "piano-like plucks",
    "pulse": "synth pulse",
    "bass": "bass pulse",
    "kick": "kick",
    "snare": "snare",
    "hats": "hi-hats",
    "shaker": "shaker",
    "framedrum": "frame drums",
    "voice": "sung voice",
    "choir": "wordless choir",
}
_TEXTURE_WORDS = {
    "drone": "Slow drone",
    "pad": "Evolving pads",
    "choral": "Choral swells",
    "piano": "Gentle piano",
    "pulse": "Pulsing synths",
    "world": "Hand drums and drone",
    "downtempo": "Downtempo beat",
    "driving": "Driving beat",
}

#: texture -> (intensity range, tempo range or None, chance of voice)
_TEXTURES: dict[str, tuple[tuple[float, float], tuple[int, int] | None, float]] = {
    "drone": ((0.0, 0.3), None, 0.15),
    "pad": ((0.05, 0.45), None, 0.25),
    "choral": ((0.1, 0.5), None, 1.0),
    "piano": ((0.15, 0.55), (50, 80), 0.0),
    "pulse": ((0.35, 0.75), (60, 110), 0.2),
    "world": ((0.4, 0.8), (80, 120), 0.6),
    "downtempo": ((0.5, 0.85), (70, 105), 0.3),
    "driving": ((0.7, 1.0), (110, 150), 0.15),
}

#: Fictional artists: (name, genre, textures they make). Several tracks each.
_ARTISTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Lumen Drift", "ambient", ("pad", "drone")),
    ("Hollow Pines", "drone", ("drone", "pad")),
    ("Mara Ellory", "neoclassical", ("piano", "pad")),
    ("The Quiet Harbor Choir", "choral", ("choral",)),
    ("Kesi Orun", "world", ("world", "pulse")),
    ("Tidecaller", "downtempo", ("downtempo", "pulse")),
    ("Velvet Meridian", "electronic", ("downtempo", "driving")),
    ("Saltmarsh Assembly", "neoclassical", ("piano", "choral")),
    ("Northern Lantern", "electronic", ("pulse", "driving")),
    ("Ilse Varga", "ambient", ("choral", "drone")),
    ("Cinder & Moss", "world", ("world", "downtempo")),
    ("Ardent Circuit", "electronic", ("driving",)),
)

_ADJECTIVES = (
    "Slow", "Quiet", "Golden", "Hollow", "Distant", "Warm", "Still", "Open", "Silver",
    "Gentle", "Deep", "Pale", "Soft", "Wide", "Low", "Amber", "Blue", "Falling", "Rising",
    "Inner", "Far", "Sleeping", "Tender", "Luminous", "Drifting", "Ancient", "Hidden",
    "Velvet", "Evening", "Morning", "Salt", "Winter", "Northern", "Patient", "Weightless",
)  # fmt: skip
_NOUNS = (
    "Tide", "River", "Lantern", "Harbor", "Meadow", "Horizon", "Ember", "Current", "Valley",
    "Garden", "Orbit", "Shore", "Cloud", "Breath", "Field", "Mirror", "Threshold", "Canopy",
    "Pulse", "Circle", "Forest", "Lake", "Shelter", "Signal", "Window", "Passage", "Hearth",
    "Compass", "Bloom", "Moth", "Stone", "Delta", "Hymn", "Bridge", "Feather", "Tidepool",
)  # fmt: skip
_TITLE_PATTERNS = (
    "{a} {n}", "{a} {n}", "{n} of {m}", "The {a} {n}", "{n} and {m}", "Toward the {n}",
    "{a} {n}, {a2} {m}", "{n} ({a} Version)", "Under the {n}", "{a} {ns}",
)  # fmt: skip
_ALBUM_PATTERNS = ("{a} {ns}", "Songs for the {n}", "{n} Studies", "{a} Rooms", "The {n} Cycle")
_COMPILATION = ("Breathing Room, Vol. 1", "Various Artists")

_MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**64, *stream])


def plan_demo_tracks(
    tracks: int = 60, seed: int = 0, duration_range: tuple[float, float] = (120.0, 480.0)
) -> list[DemoTrack]:
    """Decide every track (tags, texture, arc, format) without synthesising any audio.

    Intensities are stratified so even a small library spans calm to driving.
    """
    if tracks < 1:
        raise ValueError("tracks must be at least 1")
    lo_d, hi_d = duration_range
    if not 1.0 <= lo_d <= hi_d:
        raise ValueError(f"duration_range must satisfy 1 <= low <= high, got {duration_range}")
    rng = _rng(seed, 0xDE40)
    # Stratified, then bent towards the calm end (power 1.6: median ~0.33) because session
    # music is mostly calm, as in a therapist's own library; the range stays 0-1.
    strata = (rng.permutation(tracks) + rng.uniform(0.05, 0.95, tracks)) / tracks
    intensities = np.maximum(strata**1.6, 0.01)
    durations = rng.uniform(lo_d, hi_d, tracks)
    formats = _assign_formats(rng, durations)

    artist_count = dict.fromkeys(range(len(_ARTISTS)), 0)
    albums: dict[int, list[tuple[str, int]]] = {}
    used_words: set[str] = set()
    for i in range(len(_ARTISTS)):
        names = []
        for _ in range(2):
            name = _unique(rng, _ALBUM_PATTERNS, used_words)
            names.append((name, int(rng.integers(1998, 2026))))
        albums[i] = names
    compilation_year = int(rng.integers(2015, 2026))

    titles: set[str] = set()
    drafts: list[dict[str, Any]] = []
    for i in range(tracks):
        level = float(intensities[i])
        fits = [t for t, (rg, _, _) in _TEXTURES.items() if rg[0] <= level <= rg[1]]
        texture = str(rng.choice(fits))
        makers = [a for a, (_, _, kinds) in enumerate(_ARTISTS) if texture in kinds]
        fewest = min(artist_count[a] for a in makers)
        # Prefer artists with fewer tracks so far, so every artist gets several.
        weights = np.array([3.0 if artist_count[a] == fewest else 1.0 for a in makers])
        artist_i = int(rng.choice(makers, p=weights / weights.sum()))
        artist_count[artist_i] += 1
        if rng.random() < 0.1:
            album, year, album_artist = _COMPILATION[0], compilation_year, _COMPILATION[1]
        else:
            album, year = albums[artist_i][int(rng.random() < 0.4)]
            album_artist = _ARTISTS[artist_i][0]
        drafts.append(
            {
                "level": level,
                "texture": texture,
                "artist": _ARTISTS[artist_i][0],
                "genre": _ARTISTS[artist_i][1],
                "album": album,
                "album_artist": album_artist,
                "year": year,
                "title": _unique(rng, _TITLE_PATTERNS, titles),
                "voice": bool(rng.random() < _TEXTURES[texture][2]),
            }
        )
    if not any(d["voice"] for d in drafts):
        # Guarantee at least one vocal track: voice the one nearest 0.3 that can carry one.
        best = min(
            (d for d in drafts if _TEXTURES[d["texture"]][2] > 0),
            key=lambda d: abs(d["level"] - 0.3),
            default=drafts[0],
        )
        best["voice"] = True

    numbering: dict[tuple[str, str], list[int]] = {}
    for i, d in enumerate(drafts):
        numbering.setdefault((d["album_artist"], d["album"]), []).append(i)

    planned: list[DemoTrack] = []
    for i, d in enumerate(drafts):
        members = numbering[(d["album_artist"], d["album"])]
        position = members.index(i)
        discs = 2 if len(members) >= 8 else 1
        per_disc = math.ceil(len(members) / discs)
        disc, number = divmod(position, per_disc)
        total = min(per_disc, len(members) - disc * per_disc)
        fmt = formats[i]
        planned.append(
            _plan_one(
                rng,
                seed=seed,
                index=i,
                draft=d,
                fmt=fmt,
                duration=float(durations[i]),
                numbers=(number + 1, total, disc + 1, discs),
            )
        )
    return planned


def _plural(noun: str) -> str:
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _unique(rng: np.random.Generator, patterns: tuple[str, ...], used: set[str]) -> str:
    for attempt in range(200):
        a, a2 = rng.choice(_ADJECTIVES, 2, replace=False)
        n, m = rng.choice(_NOUNS, 2, replace=False)
        text = str(rng.choice(patterns)).format(a=a, a2=a2, n=n, m=m, ns=_plural(str(n)))
        if attempt > 100:
            text = f"{text} {attempt - 99}"
        if text not in used:
            used.add(text)
            return text
    raise AssertionError("unreachable: numbered titles are always unique")


def _assign_formats(rng: np.random.Generator, durations: np.ndarray) -> list[str]:
    """Rotate formats across the library, handing slow or bulky formats the shorter tracks."""
    count = len(durations)
    pool = [_FORMAT_ROTATION[i % len(_FORMAT_ROTATION)] for i in range(count)]
    pool.sort(key=_DURATION_ORDER.index)
    # A tendency, not a rule: jitter the order so every format sees a range of lengths.
    order = np.argsort(durations * np.exp(rng.normal(0.0, 0.25, count)), kind="stable")
    formats = [""] * count
    for fmt, track in zip(pool, order, strict=True):
        formats[int(track)] = fmt
    return formats


def _plan_one(
    rng: np.random.Generator,
    *,
    seed: int,
    index: int,
    draft: dict[str, Any],
    fmt: str,
    duration: float,
    numbers: tuple[int, int, int, int],
) -> DemoTrack:
    texture: str = draft["texture"]
    level: float = draft["level"]
    (t_lo, t_hi), tempo_range, _ = _TEXTURES[texture]
    has_voice: bool = draft["voice"]
    layers = _choose_layers(rng, texture, has_voice)

    arc = str(rng.choice(["steady", "steady", "crescendo", "decrescendo", "arch"]))
    span = 0.0 if arc == "steady" else float(rng.uniform(0.25, 0.5))
    span = min(span, 2 * level, 2 * (1 - level))
    tempo = None
    if tempo_range is not None:
        where = (level - t_lo) / (t_hi - t_lo) + rng.normal(0, 0.15)
        tempo = round(tempo_range[0] + (tempo_range[1] - tempo_range[0]) * min(1, max(0, where)))

    # A few mono files, mostly lossy ones (half the work for the slow encoders).
    channels = 1 if rng.random() < {"mp3": 0.5, "aac": 0.4, "vorbis": 0.0}.get(fmt, 0.05) else 2
    sample_rate = {"opus": 24000, "flac": 44100 if rng.random() < 0.3 else 22050}.get(fmt, 22050)
    hops = max(8, round(duration * sample_rate / _HOP))
    seconds = hops * _HOP / sample_rate
    lead = float(rng.uniform(0.5, 3.0)) if rng.random() < 0.4 else 0.0
    trail = float(rng.uniform(0.5, 3.0)) if rng.random() < 0.4 else 0.0
    body = max(seconds - lead - trail, 0.5)
    fade_in = float(rng.uniform(0.5, 6.0)) if rng.random() < 0.7 else 0.02
    fade_out = float(rng.uniform(3.0, 15.0)) if rng.random() < 0.85 else 0.3
    fade_in, fade_out = min(fade_in, body * 0.2), min(fade_out, body * 0.3)
    # Calm music tends to be mastered quieter, but loudly enough varied that normalising matters.
    lufs = float(np.clip(-27.0 + 15.0 * level + rng.normal(0, 3.5), -30.0, -10.0))
    number, total, disc, discs = numbers
    designation = (seed % 100 * 1000 + index + 1) % 100_000
    return DemoTrack(
        seed=seed,
        index=index,
        title=draft["title"],
        artist=draft["artist"],
        album=draft["album"],
        album_artist=draft["album_artist"],
        genre=draft["genre"],
        year=draft["year"],
        track_number=number,
        track_total=total,
        disc_number=disc,
        disc_total=discs,
        isrc=f"XXDMO{draft['year'] % 100:02d}{designation:05d}",
        format=fmt,
        sample_rate=sample_rate,
        channels=channels,
        hops=hops,
        texture=texture,
        layers=layers,
        tempo=tempo,
        has_voice=has_voice,
        arc=arc,
        intensity_low=round(level - span / 2, 4),
        intensity_high=round(level + span / 2, 4),
        key_root=int(rng.integers(45, 57)),
        mode=str(rng.choice(list(_MODES))),
        lufs=round(lufs, 2),
        lead_silence=lead,
        trail_silence=trail,
        fade_in=fade_in,
        fade_out=fade_out,
        replaygain=fmt != "opus" and rng.random() < 0.25,
    )


def _choose_layers(rng: np.random.Generator, texture: str, voice: bool) -> tuple[str, ...]:
    """Layer names, the always-on base layer first."""

    def maybe(name: str, p: float) -> list[str]:
        return [name] if rng.random() < p else []

    sing = ["voice"] if voice else []
    match texture:
        case "drone":
            layers = ["drone", *maybe("pad", 0.4), *sing]
        case "pad":
            layers = ["pad", *maybe("drone", 0.5), *maybe("pluck", 0.3), *sing]
        case "choral":
            layers = ["choir", "pad", *maybe("drone", 0.4)]
        case "piano":
            layers = ["piano", *maybe("pad", 0.6), *maybe("drone", 0.2)]
        case "pulse":
            layers = ["pulse", "pad", "bass", *maybe("shaker", 0.6), *maybe("piano", 0.3), *sing]
        case "world":
            layers = ["drone", "framedrum", "shaker", *maybe("pluck", 0.4), *sing]
        case "downtempo":
            extra = maybe("piano", 0.5) or maybe("pulse", 0.5)
            layers = ["pad", "kick", "snare", "hats", "bass", *extra, *sing]
        case _:
            layers = ["pad", "kick", "snare", "hats", "bass", "pulse", *sing]
    return tuple(layers)


def _arc_curve(track: DemoTrack, progress: np.ndarray) -> np.ndarray:
    """Intended intensity over the musical body (progress 0..1); every shape averages mid."""
    lo, hi = track.intensity_low, track.intensity_high
    smooth = progress * progress * (3 - 2 * progress)
    match track.arc:
        case "crescendo":
            return lo + (hi - lo) * smooth
        case "decrescendo":
            return hi - (hi - lo) * smooth
        case "arch":
            return lo + (hi - lo) * np.sin(np.pi * progress) ** 2
        case _:
            return np.full_like(progress, (lo + hi) / 2)


# --- synthesis building blocks ---------------------------------------------------------


def _hz(midi: float | np.ndarray) -> Any:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


_TABLE_SIZE = 4096


@lru_cache(maxsize=32)
def _wavetable(slope: float, harmonics: int) -> np.ndarray:
    """One band-limited cycle with 1/h**slope partials (saw-like to sine-like)."""
    h = np.arange(1, harmonics + 1)
    k = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    table = (h[:, None] ** -slope * np.sin(2 * np.pi * h[:, None] * k[None, :])).sum(axis=0)
    return (table / np.abs(table).max()).astype(np.float32)


@lru_cache(maxsize=1)
def _sine() -> np.ndarray:
    return np.sin(2 * np.pi * np.arange(1 << 16) / (1 << 16)).astype(np.float32)


def _osc(table: np.ndarray, step: float, count: int, phase: float = 0.0) -> np.ndarray:
    """A steady oscillator: a wrapping 32-bit phase accumulator indexing a wavetable.

    `step` is cycles per sample (frequency / sample rate); three times faster than
    floating-point phase and exact to 2**-32 of a cycle.
    """
    bits = table.size.bit_length() - 1
    inc = np.uint32(round(step * 2**32) % 2**32)
    idx = np.arange(count, dtype=np.uint32) * inc + np.uint32(int(phase % 1.0 * 2**32))
    return table[idx >> np.uint32(32 - bits)]


def _lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    idx = (cycles * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)
    return table[idx]


def _fold(buf: np.ndarray, length: int) -> np.ndarray:
    """Wrap anything past `length` back onto the start: a seamless loop of `length` samples."""
    out = buf[..., :length].copy()
    for start in range(length, buf.shape[-1], length):
        piece = buf[..., start : start + length]
        out[..., : piece.shape[-1]] += piece
    return out


def _add_wrapped(buf: np.ndarray, start: int, data: np.ndarray) -> None:
    """Overlap-add `data` (channels, m) into the circular buffer `buf` at `start`."""
    length = buf.shape[-1]
    pos, offset = start % length, 0
    while offset < data.shape[-1]:
        take = min(length - pos, data.shape[-1] - offset)
        buf[:, pos : pos + take] += data[:, offset : offset + take]
        offset += take
        pos = 0


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan, position -1 (left) to 1 (right)."""
    angle = (position + 1) * np.pi / 4
    return np.stack([mono * math.cos(angle), mono * math.sin(angle)])


def _spectral_filter(
    loop: np.ndarray, sr: int, shapes: list[Callable[[np.ndarray], Any]]
) -> list[np.ndarray]:
    """Filter a loop circularly by zero-phase magnitude shapes (seamless when tiled).

    Loop lengths are arbitrary (a whole number of bars), and an FFT of an awkward length
    is slow, so long loops convolve with a short windowed FIR on a fast length and fold.
    """
    length = loop.shape[-1]
    if length <= 16384 or sfft.next_fast_len(length, real=True) == length:
        spectrum = sfft.rfft(loop, axis=-1)
        freqs = np.fft.rfftfreq(length, 1 / sr)
        return [
            sfft.irfft(spectrum * shape(freqs).astype(np.float32), n=length, axis=-1).astype(
                np.float32
            )
            for shape in shapes
        ]
    taps = 4096 if sr < 30000 else 8192
    freqs = np.fft.rfftfreq(taps, 1 / sr)
    n = sfft.next_fast_len(length + taps - 1, real=True)
    spectrum = sfft.rfft(loop.astype(np.float32), n=n, axis=-1)
    out = []
    for shape in shapes:
        fir = np.roll(sfft.irfft(shape(freqs), n=taps), taps // 2) * np.hanning(taps)
        fir = fir.astype(np.float32)
        full = sfft.irfft(spectrum * sfft.rfft(fir, n=n), n=n, axis=-1)[..., : length + taps - 1]
        out.append(np.roll(_fold(full, length), -(taps // 2), axis=-1).astype(np.float32))
    return out


def _lowpass(fc: float, order: int = 2) -> Callable[[np.ndarray], Any]:
    return lambda f: 1.0 / np.sqrt(1.0 + (f / fc) ** (2 * order))


def _band(lo: float, hi: float) -> Callable[[np.ndarray], Any]:
    return lambda f: (
        (1.0 / np.sqrt(1.0 + (lo / np.maximum(f, 1.0)) ** 4)) / np.sqrt(1.0 + (f / hi) ** 4)
    )


def _reverb(
    loop: np.ndarray, sr: int, rng: np.random.Generator, t60: float, wet: float
) -> np.ndarray:
    """Circular convolution with a decaying-noise impulse per channel: width and space."""
    length = loop.shape[-1]
    ir_len = sfft.next_fast_len(min(int(t60 * sr), 4 * sr), real=True)
    t = np.arange(ir_len, dtype=np.float32) / sr
    decay = np.exp(-6.91 * t / t60) * np.minimum(1.0, t / 0.02)
    irs = rng.standard_normal((2, ir_len), dtype=np.float32) * decay
    irs = _spectral_filter(irs, sr, [_lowpass(4500.0, 1)])[0]
    irs /= np.sqrt((irs**2).sum(axis=1, keepdims=True))
    n = sfft.next_fast_len(length + ir_len - 1, real=True)
    mid = (loop.mean(axis=0) if loop.ndim == 2 else loop).astype(np.float32)
    wet_sig = sfft.irfft(sfft.rfft(irs, n=n, axis=-1) * sfft.rfft(mid, n=n), n=n, axis=-1)
    wet_sig = _fold(wet_sig[:, : length + ir_len - 1], length)
    dry = loop if loop.ndim == 2 else np.stack([loop, loop])
    return (dry * (1 - wet) + wet_sig * (wet * 1.4)).astype(np.float32)


def _unit(loop: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(loop, dtype=np.float32).reshape(-1)
    rms = math.sqrt(float(np.dot(flat, flat)) / flat.size)
    return (loop * np.float32(1 / rms)).astype(np.float32) if rms > 0 else loop.astype(np.float32)


@dataclass(frozen=True)
class _Music:
    """Musical context shared by a track's layers."""

    sr: int
    rng: np.random.Generator
    scale: tuple[int, ...]
    root: int
    chords: tuple[tuple[int, ...], ...]  # MIDI notes, one tuple per chord
    chord_len: int  # samples per chord
    bar: int | None  # samples per bar (4/4) when the track has a pulse

    @property
    def section(self) -> int:
        return self.chord_len * len(self.chords)

    def degree(self, d: int, octave: int = 0) -> int:
        q, r = divmod(d, len(self.scale))
        return self.root + 12 * (octave + q) + self.scale[r]


def _music(track: DemoTrack, rng: np.random.Generator) -> _Music:
    sr = track.sample_rate
    scale = _MODES[track.mode]
    progressions = ((0, 5, 3, 4), (0, 3, 5, 4), (0, 4, 5, 3), (0, 5), (0, 3), (5, 3, 0, 4))
    prog = progressions[int(rng.integers(len(progressions)))]
    bar = None
    if track.tempo:
        bar = round(4 * 60 / track.tempo * sr)
        # One, two or four bars per chord, whichever keeps chords near 4-9 s.
        fits = [k for k in (1, 2, 4) if k * bar <= 9 * sr] or [1]
        chord_len = bar * int(rng.choice(fits[-2:]))
    else:
        chord_len = int(rng.uniform(5.0, 9.0) * sr)
    ctx = _Music(sr, rng, scale, track.key_root, (), chord_len, bar)
    chords = []
    for d in prog:
        tones = [ctx.degree(d + step) for step in (0, 2, 4, 6 if rng.random() < 0.4 else 7)]
        chords.append((tones[0] - 12, *tones))
    return _Music(sr, rng, scale, track.key_root, tuple(chords), chord_len, bar)


def _pad(m: _Music, brightness: list[float]) -> list[np.ndarray]:
    """Slow chords with swelling attacks and long releases; one loop per brightness."""
    sr, rng, length = m.sr, m.rng, m.section
    attack = int(rng.uniform(0.25, 0.5) * m.chord_len)
    release = int(rng.uniform(0.3, 0.6) * m.chord_len)
    seg = m.chord_len + release
    env = np.ones(seg, np.float32)
    env[:attack] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, attack))
    env[m.chord_len :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, release))
    table = _wavetable(1.7, 10)
    buf = np.zeros((2, length + seg), np.float32)
    for i, chord in enumerate(m.chords):
        start = i * m.chord_len
        for note in chord:
            step = float(_hz(note)) / sr
            shaped = env * np.float32(1.0 if note < m.root + 12 else 0.7)
            detune = 2 ** (rng.uniform(4, 9) / 1200)
            a = _osc(table, step * detune, seg, rng.random()) * shaped
            b = _osc(table, step / detune, seg, rng.random()) * shaped
            buf[0, start : start + seg] += a + 0.3 * b
            buf[1, start : start + seg] += b + 0.3 * a
    # Reverb and filter are both linear and circular, so one reverb serves every brightness.
    loop = _reverb(_fold(buf, length), sr, rng, rng.uniform(2.5, 4.5), 0.35)
    return _spectral_filter(loop, sr, [_lowpass(fc) for fc in brightness])


def _drone(m: _Music) -> np.ndarray:
    """Sustained root, fifth and octaves beating slowly; an exact loop (integer cycles)."""
    sr, rng = m.sr, m.rng
    length = sfft.next_fast_len(int(rng.uniform(9.0, 16.0) * sr), real=True)
    root = float(_hz(m.root - 12 if m.root >= 50 else m.root))
    partials = ((1, 1.0), (1.5, 0.45), (2, 0.55), (3, 0.22), (4, 0.16), (6, 0.07))
    out = np.zeros((2, length), np.float32)
    sine = _sine()
    for ratio, amp in partials:
        # Whole cycles per loop, so the tiled loop has no seam.
        k = max(1, round(root * ratio * length / sr))
        swell = 1 + 0.5 * _osc(sine, int(rng.integers(1, 4)) / length, length, rng.random())
        for ch, beat in ((0, 1), (1, -1)):
            k2 = k + beat * int(rng.integers(1, 3))
            a = _osc(sine, k / length, length, rng.random())
            a += _osc(sine, k2 / length, length, rng.random())
            out[ch] += np.float32(amp) * swell * a
    air = rng.standard_normal((2, length)).astype(np.float32)
    air = _spectral_filter(air, sr, [_band(250.0, 1800.0)])[0]
    return out + 0.15 * _unit(air) * float(np.sqrt(np.mean(out**2)))


def _note_times(m: _Music, density: float, length: int, per_bar: int = 16) -> list[int]:
    """Onsets on the tempo grid (or free, for untimed tracks) with the given density."""
    rng = m.rng
    if m.bar is None:
        times, t = [], int(rng.uniform(0, 1.5) * m.sr)
        while t < length:
            times.append(t)
            t += int(rng.uniform(0.6, 3.0) / (0.3 + density) * m.sr)
        return times
    steps = round(length / m.bar * per_bar)
    strong = [s for s in range(steps) if s % (per_bar // 4) == 0]
    weak = [s for s in range(steps) if s % (per_bar // 4) != 0 and s % 2 == 0]
    chosen = [s for s in strong if rng.random() < 0.5 + density] + [
        s for s in weak if rng.random() < density * 0.8
    ]
    return sorted(round(s * m.bar / per_bar) for s in chosen)


def _chord_at(m: _Music, sample: int) -> tuple[int, ...]:
    return m.chords[(sample // m.chord_len) % len(m.chords)]


def _plucks(m: _Music, density: float, piano: bool) -> np.ndarray:
    """Piano-like notes: inharmonic partials decaying faster the higher they are."""
    sr, rng, length = m.sr, m.rng, m.section
    note_len = int((2.5 if piano else 2.0) * sr)
    t = np.arange(note_len, dtype=np.float32) / np.float32(sr)
    sine = _sine()
    decay = rng.uniform(1.2, 2.5)
    base = np.exp(-decay * t).astype(np.float32)
    faster = np.exp(-0.8 * decay * t).astype(np.float32)
    attack = np.minimum(1.0, t / 0.003).astype(np.float32)
    cache: dict[int, np.ndarray] = {}

    def note(midi: int) -> np.ndarray:
        if midi not in cache:
            f0, out, env = float(_hz(midi)), np.zeros(note_len, np.float32), base.copy()
            for h in range(1, 6):
                fh = h * f0 * math.sqrt(1 + 2e-4 * h * h)
                if fh > 0.45 * sr:
                    break
                wave = _osc(sine, fh / sr, note_len, rng.random())
                out += np.float32(0.8 ** (h - 1) / h) * env * wave
                env *= faster
            cache[midi] = out * attack
        return cache[midi]

    buf = np.zeros((2, length), np.float32)
    for onset in _note_times(m, density, length, per_bar=8):
        chord = _chord_at(m, onset)
        pitch = int(rng.choice(chord[1:])) + 12 * int(rng.choice([0, 1, 1, 2]) if piano else 1)
        velocity = rng.uniform(0.5, 1.0)
        _add_wrapped(buf, onset, _pan(note(pitch) * velocity, rng.uniform(-0.5, 0.5)))
    return _reverb(buf, sr, rng, rng.uniform(1.5, 3.0), 0.3)


def _pulse(m: _Music, density: float, brightness: float, bass: bool) -> np.ndarray:
    """Short repeated notes on the beat grid: a bass line or a synth arpeggio."""
    sr, rng, length = m.sr, m.rng, m.section
    assert m.bar is not None
    per_bar = 16 if density > 0.75 and not bass else 8 if density > 0.35 or bass else 4
    step = m.bar / per_bar
    note_len = int(min(step * (1.6 if bass else 1.2), 0.45 * sr))
    t = np.arange(note_len) / sr
    env = np.exp(-t / (0.16 if bass else 0.08 + 0.1 * brightness)) * np.minimum(1, t / 0.004)
    harmonics = 6 if bass else int(4 + 10 * brightness)
    buf = np.zeros((2, length), np.float32)
    cache: dict[int, np.ndarray] = {}
    for s in range(round(length / step)):
        onset = round(s * step)
        if not bass and s % 2 and rng.random() > density:
            continue
        chord = _chord_at(m, onset)
        pitch = chord[0] - 12 if bass else chord[1 + s % (len(chord) - 1)] + 12
        if pitch not in cache:
            f = float(_hz(pitch))
            table = _wavetable(1.0 if bass else 1.2, max(1, min(harmonics, int(0.45 * sr / f))))
            cache[pitch] = (env * _osc(table, f / sr, note_len)).astype(np.float32)
        accent = 1.0 if s % (per_bar // 4) == 0 else 0.7
        pan = 0.0 if bass else 0.4 * math.sin(s * 0.7)
        _add_wrapped(buf, onset, _pan(cache[pitch] * accent, pan))
    return buf if bass else _reverb(buf, sr, rng, 1.2, 0.2)


def _drum(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One synthesised hit."""
    dur = {"kick": 0.45, "snare": 0.25, "hats": 0.08, "open": 0.3, "shaker": 0.12}.get(kind, 0.5)
    t = np.arange(int(dur * sr)) / sr
    noise = rng.standard_normal(t.size).astype(np.float32)
    match kind:
        case "kick":
            phase = 50 * t + (150 - 50) * 0.035 * (1 - np.exp(-t / 0.035))
            hit = np.sin(2 * np.pi * phase) * np.exp(-t / 0.22)
            hit += 0.15 * noise * np.exp(-t / 0.004)
        case "snare":
            body = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.06)
            rattle = _spectral_filter(noise, sr, [_band(1200.0, 7000.0)])[0]
            hit = 0.6 * body + 1.4 * rattle * np.exp(-t / 0.09)
        case "hats" | "open":
            hiss = _spectral_filter(noise, sr, [_band(6000.0, 20000.0)])[0]
            hit = hiss * np.exp(-t / (0.02 if kind == "hats" else 0.12))
        case "shaker":
            grain = _spectral_filter(noise, sr, [_band(3000.0, 9000.0)])[0]
            hit = grain * np.minimum(1, t / 0.02) * np.exp(-t / 0.04)
        case _:  # frame drum: low thump with a skin slap
            hit = np.sin(2 * np.pi * (95 * t + 40 * 0.05 * (1 - np.exp(-t / 0.05)))) * np.exp(
                -t / 0.3
            )
            hit += 0.3 * _spectral_filter(noise, sr, [_band(400.0, 3000.0)])[0] * np.exp(-t / 0.03)
    return (hit / np.abs(hit).max()).astype(np.float32)


_EIGHTHS = tuple(range(0, 16, 2))
_SIXTEENTHS = tuple(range(16))
#: Steps (of a 16-step bar) per instrument, from sparse to dense.
_PATTERNS = {
    "kick": ((0,), (0, 10), (0, 8), (0, 6, 8), (0, 4, 8, 12)),
    "snare": ((12,), (4, 12), (4, 12), (4, 12, 14), (4, 12)),
    "hats": ((2, 6, 10, 14), (2, 6, 10, 14), _EIGHTHS, _SIXTEENTHS, _SIXTEENTHS),
    "shaker": ((0, 4, 8, 12), _EIGHTHS, _EIGHTHS, _SIXTEENTHS, _SIXTEENTHS),
    "framedrum": (
        (0, 10), (0, 6, 10), (0, 3, 6, 10, 12), (0, 3, 6, 8, 10, 12, 14),
        (0, 2, 3, 6, 8, 10, 11, 12, 14),
    ),
}  # fmt: skip


def _percussion(m: _Music, kind: str, density: float) -> np.ndarray:
    """A two-bar drum loop; the density picks the pattern, velocities vary a little."""
    sr, rng = m.sr, m.rng
    assert m.bar is not None
    patterns = _PATTERNS[kind]
    level = min(len(patterns) - 1, int(density * len(patterns)))
    length = 2 * m.bar
    buf = np.zeros((2, length), np.float32)
    name = "frame" if kind == "framedrum" else kind
    hits = {k: _drum(k, sr, rng) for k in ({name, "open"} if kind == "hats" else {name})}
    pan = {"hats": 0.3, "shaker": -0.35, "framedrum": -0.15}.get(kind, 0.0)
    for bar in range(2):
        for s in patterns[level]:
            velocity = rng.uniform(0.75, 1.0) * (1.0 if s % 4 == 0 else 0.7)
            hit = hits[name]
            if kind == "hats" and s % 8 == 6 and bar == 1 and density > 0.5:
                hit = hits["open"]
            if kind == "framedrum" and s % 4:
                hit = hit * 0.6
            _add_wrapped(buf, bar * m.bar + round(s * m.bar / 16), _pan(hit * velocity, pan))
    # Gentle saturation: drum loops with a moderate crest survive loud mastering.
    peak = np.abs(buf).max()
    return np.tanh(1.5 * buf / peak).astype(np.float32) if peak > 0 else buf


_VOWELS = {  # formant centre frequencies (Hz) and relative gains, adult voice
    "a": ((800, 1150, 2900), (1.0, 0.5, 0.25)),
    "e": ((400, 1700, 2600), (1.0, 0.35, 0.2)),
    "i": ((300, 2200, 3000), (1.0, 0.25, 0.2)),
    "o": ((450, 800, 2830), (1.0, 0.6, 0.15)),
    "u": ((325, 700, 2530), (1.0, 0.3, 0.1)),
}


def _vowel(name: str, formant: float) -> Callable[[np.ndarray], Any]:
    """Magnitude response of a vowel: resonances at its formants, ~60 Hz + 6 % wide."""
    centres, gains = _VOWELS[name]

    def shape(f: np.ndarray) -> np.ndarray:
        f = np.maximum(f, 1.0)
        total = np.zeros_like(f)
        for fc, g in zip(centres, gains, strict=True):
            fc *= formant
            bw = 60 + 0.06 * fc
            total += g / np.sqrt(1 + ((f * f - fc * fc) / (f * bw)) ** 2)
        return total

    return shape


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average via a cumulative sum (a long kernel costs nothing extra)."""
    width = max(1, width)
    cum = np.concatenate([np.zeros(width), np.cumsum(np.pad(x, (width // 2, width - width // 2)))])
    return ((cum[2 * width :] - cum[width:-width]) / width)[: x.size]


def _voice_line(
    m: _Music, melody: list[tuple[int, int, int]], length: int, formant: float, syll: float
) -> np.ndarray:
    """A sung line: glottal pulses through vowel formants, syllable-rate amplitude motion."""
    sr, rng = m.sr, m.rng
    f0 = np.zeros(length, np.float64)
    gate = np.zeros(length, np.float32)
    for start, stop, pitch in melody:
        f0[start:stop] = _hz(pitch)
        ramp = min(int(0.08 * sr), (stop - start) // 3)
        g = np.ones(stop - start, np.float32)
        g[:ramp] = np.linspace(0, 1, ramp)
        g[-ramp:] = np.linspace(1, 0, ramp)
        gate[start:stop] = g
    voiced = np.flatnonzero(f0)
    if voiced.size == 0:
        return np.zeros(length, np.float32)
    # Glide between notes (portamento), hold the pitch through rests, then vibrato.
    f0 = np.interp(np.arange(length), voiced, f0[voiced])
    f0 = _smooth(f0, int(0.06 * sr))
    # Vibrato (+-0.3 semitone) deepens as each note settles: gate squared lags the onset.
    vibrato = _osc(_sine(), rng.uniform(4.8, 6.0) / sr, length)
    f0 *= np.exp2(np.float32(0.3 / 12) * vibrato * gate * gate)
    cycles = np.cumsum(f0 / sr)
    harmonics = max(4, int(0.45 * sr / float(f0.max())))
    source = _lookup(_wavetable(1.5, min(harmonics, 60)), cycles)
    source += np.float32(0.04) * rng.standard_normal(length, dtype=np.float32)
    # Syllables: a vowel each, at 3-6 per second, with dips between them.
    syllable = (np.arange(length) * (syll / sr)).astype(np.int64)
    names = [str(v) for v in rng.choice(list(_VOWELS), 3, replace=False)]
    per_syllable = rng.integers(0, len(names), syllable[-1] + 1)
    # The line starts and ends in silence, so filtering it as a loop leaves no seam.
    bands = _spectral_filter(source[None, :], sr, [_vowel(v, formant) for v in names])
    out = np.zeros(length, np.float32)
    for v, band in enumerate(bands):
        weight = (per_syllable[syllable] == v).astype(np.float32)
        if weight.any():
            out += _smooth(weight, int(0.04 * sr)).astype(np.float32) * band[0]
    # Loudest mid-syllable, dipping where one vowel gives way to the next.
    am = (0.5 + 0.5 * _osc(_sine(), syll / sr, length, 0.75)) ** np.float32(0.7)
    return out * gate * (0.25 + 0.75 * am)


def _melody(m: _Music, length: int, register: int) -> list[tuple[int, int, int]]:
    """Phrases of held notes separated by breaths; ends in a rest so the loop is seamless."""
    sr, rng = m.sr, m.rng
    beat = m.bar / 4 if m.bar else sr * rng.uniform(0.6, 0.9)
    notes, t, degree = [], int(rng.uniform(0.3, 1.0) * sr), int(rng.integers(0, 5))
    while True:
        phrase = int(rng.integers(3, 7))
        for _ in range(phrase):
            dur = int(beat * rng.choice([1, 2, 2, 3, 4]))
            if t + dur > length - int(0.4 * sr):
                return notes
            notes.append((t, t + dur, m.degree(degree, register)))
            t += dur
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), -3, 9))
        t += int(beat * rng.choice([2, 3, 4]))


def _voices(m: _Music, choir: bool) -> np.ndarray:
    sr, rng = m.sr, m.rng
    length = m.section if m.bar else int(rng.uniform(14.0, 24.0) * sr)
    length = max(length, int(8 * sr))
    register = int(rng.choice([0, 1]))
    melody = _melody(m, length, register)
    syll = float(rng.uniform(3.0, 6.0))
    formant = 1.0 if register == 0 else 1.15
    lead = _voice_line(m, melody, length, formant, syll)
    if not choir:
        return _reverb(_pan(lead, rng.uniform(-0.2, 0.2)), sr, rng, rng.uniform(2.0, 3.5), 0.3)
    parts = _pan(lead, -0.4)
    for shift, pan, fmt in ((-2, 0.45, 0.9), (-4, 0.0, 0.85)):
        harmony = [(a, b, _shift_degree(m, p, shift)) for a, b, p in melody]
        line = _voice_line(m, harmony, length, formant * fmt, syll * rng.uniform(0.9, 1.1))
        parts += 0.7 * _pan(line, pan)
    return _reverb(parts, sr, rng, rng.uniform(3.0, 5.0), 0.45)


def _shift_degree(m: _Music, midi: int, steps: int) -> int:
    """Move a scale note by `steps` scale degrees (a third below is -2)."""
    octave, pc = divmod(midi - m.root, 12)
    pos = min(range(len(m.scale)), key=lambda i: abs(m.scale[i] - pc))
    return m.degree(pos + steps, octave)


# --- a track ---------------------------------------------------------------------------

#: Absolute intensity at which a layer enters (layers below the track's range play throughout).
_ENTRY = {
    "pluck": 0.2, "piano": 0.25, "shaker": 0.35, "pulse": 0.4, "hats": 0.45,
    "framedrum": 0.45, "bass": 0.5, "kick": 0.55, "snare": 0.62,
}  # fmt: skip
#: Mix levels (dB) before the loudness normalisation.
_LEVEL = {
    "drone": 0.0, "pad": -2.0, "pluck": -5.0, "piano": -3.0, "pulse": -6.0, "bass": -4.0,
    "kick": -2.0, "snare": -7.0, "hats": -15.0, "shaker": -15.0, "framedrum": -3.0,
    "voice": 1.0, "choir": 0.0,
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class _Layer:
    name: str
    loop: np.ndarray  # (channels, length) float32, a seamless loop
    env: np.ndarray  # (hops + 1,) float32 gain at every control hop


def _layers(track: DemoTrack) -> tuple[list[_Layer], np.ndarray]:
    """Every layer's loop and envelope, plus the master envelope (silences, fades, arc)."""
    rng = _rng(track.seed, track.index, 7)
    m = _music(track, rng)
    sr, hops = track.sample_rate, track.hops
    hop_s = _HOP / sr
    times = np.arange(hops + 1) * hop_s
    lead, trail = track.lead_silence, track.trail_silence
    body = max(track.duration - lead - trail, 1e-3)
    progress = np.clip((times - lead) / body, 0.0, 1.0)
    curve = _arc_curve(track, progress)
    level = track.intensity
    bright = np.clip(0.15 + 0.85 * curve, 0.0, 1.0)

    layers: list[_Layer] = []

    def add(name: str, loop: np.ndarray, env: np.ndarray | float = 1.0) -> None:
        gain = 10 ** ((_LEVEL[name] + rng.uniform(-2, 2)) / 20)
        entry = _ENTRY.get(name, -1.0)
        # The base layer always plays; others enter as the arc passes their threshold.
        entry = -1.0 if name == track.layers[0] else min(entry, track.intensity_high - 0.08)
        gate = np.clip((curve - entry) / 0.08, 0.0, 1.0)
        full = np.asarray(gain * gate * env, np.float32)
        layers.append(_Layer(name, _unit(loop), np.broadcast_to(full, (hops + 1,)).copy()))

    density = float(np.clip(track.intensity_high, 0.05, 1.0))
    drums_db = rng.uniform(-6.0, 3.0)  # some tracks' drums sit back, some push forward
    for name in track.layers:
        if name == "pad":
            if track.arc == "steady":
                add(name, _pad(m, [300 + 4000 * level**1.5])[0])
            else:
                dark, light = _pad(m, [350.0, 3500.0])
                add(name, dark, 1 - bright)
                add(name, light, bright)
        elif name == "drone":
            add(name, _drone(m))
        elif name in ("pluck", "piano"):
            sections = (
                1.0
                if name == track.layers[0]
                else _sections(rng, times, (20, 45), (8, 25), bool(rng.random() < 0.5))
            )
            sparse = 0.6 if name == "pluck" else 1.0
            add(name, _plucks(m, density * sparse, name == "piano"), sections)
        elif name in ("pulse", "bass"):
            if m.bar is None:
                continue
            add(name, _pulse(m, density, float(bright.mean()), name == "bass"))
        elif name in ("kick", "snare", "hats", "shaker", "framedrum"):
            if m.bar is None:
                continue
            add(name, _percussion(m, name, density), (0.6 + 0.4 * curve) * 10 ** (drums_db / 20))
        elif name in ("voice", "choir"):
            # A solo voice sings from the start (so even a short track has it), then rests.
            sections = 1.0 if name == "choir" else _sections(rng, times, (25, 60), (10, 25), True)
            add(name, _voices(m, name == "choir"), sections)

    if track.channels == 1:
        layers = [_Layer(x.name, _unit(x.loop.mean(axis=0, keepdims=True)), x.env) for x in layers]

    master = np.ones(hops + 1, np.float64)
    master[times < lead] = 0.0
    master[times > track.duration - trail] = 0.0
    fade_in = np.clip((times - lead) / max(track.fade_in, 1e-3), 0.0, 1.0)
    fade_out = np.clip((track.duration - trail - times) / max(track.fade_out, 1e-3), 0.0, 1.0)
    master *= (0.5 - 0.5 * np.cos(np.pi * fade_in)) * (0.5 - 0.5 * np.cos(np.pi * fade_out))
    master *= 10 ** (8.0 * (curve - level) / 20)  # the arc is heard as loudness too
    return layers, master.astype(np.float32)


def _sections(
    rng: np.random.Generator, times: np.ndarray, on: tuple[float, float],
    off: tuple[float, float], start_on: bool, ramp: float = 2.0,
) -> np.ndarray:  # fmt: skip
    """A layer that comes and goes: alternating on/off spans (seconds) with smooth ramps."""
    points_t, points_v, t, playing = [0.0], [0.0], 0.0, start_on
    while t < times[-1]:
        span = rng.uniform(*on) if playing else rng.uniform(*off)
        points_t += [t + ramp, t + span]
        points_v += [1.0 if playing else 0.0] * 2
        t += span
        playing = not playing
    return np.interp(times, points_t, points_v).astype(np.float32)


# --- loudness --------------------------------------------------------------------------


def _k_weighting(sr: int) -> np.ndarray:
    """ITU-R BS.1770 K-weighting as second-order sections, for any sample rate."""
    g, q, fc = 4.0, 1 / math.sqrt(2), 1500.0
    a_ = 10 ** (g / 40)
    w0 = 2 * math.pi * fc / sr
    alpha, cw = math.sin(w0) / (2 * q), math.cos(w0)
    shelf = [
        a_ * ((a_ + 1) + (a_ - 1) * cw + 2 * math.sqrt(a_) * alpha),
        -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
        a_ * ((a_ + 1) + (a_ - 1) * cw - 2 * math.sqrt(a_) * alpha),
        (a_ + 1) - (a_ - 1) * cw + 2 * math.sqrt(a_) * alpha,
        2 * ((a_ - 1) - (a_ + 1) * cw),
        (a_ + 1) - (a_ - 1) * cw - 2 * math.sqrt(a_) * alpha,
    ]
    w0 = 2 * math.pi * 38.0 / sr
    alpha, cw = math.sin(w0) / (2 * 0.5), math.cos(w0)
    highpass = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2, 1 + alpha, -2 * cw, 1 - alpha]
    sos = np.array([shelf, highpass], dtype=np.float64)
    sos[:, :3] /= sos[:, 3:4]
    sos[:, 3:] /= sos[:, 3:4]
    return sos


def _integrated(power: np.ndarray) -> float:
    """Gated integrated loudness (LUFS) from channel-summed K-weighted power per 100 ms."""
    if power.size < 4:
        return -70.0
    blocks = np.convolve(power, np.ones(4) / 4, mode="valid")
    loud = blocks[blocks > 10 ** ((-70 + 0.691) / 10)]
    if loud.size == 0:
        return -70.0
    relative = 10 * math.log10(loud.mean()) - 10
    gated = loud[loud > 10 ** (relative / 10)]
    return -0.691 + 10 * math.log10(gated.mean())


@lru_cache(maxsize=16)
def _k_magnitude(sr: int, n: int) -> np.ndarray:
    z = np.exp(-2j * np.pi * np.fft.rfftfreq(n))  # e^-jw at each bin
    response = np.ones_like(z)
    for b0, b1, b2, a0, a1, a2 in _k_weighting(sr):
        response *= (b0 + b1 * z + b2 * z * z) / (a0 + a1 * z + a2 * z * z)
    return np.abs(response)


def _k_power_ratio(loop: np.ndarray, sr: int) -> float:
    """K-weighted over plain power of a loop, from a fast-length excerpt (Parseval)."""
    n = min(1 << 16, 1 << (loop.shape[-1].bit_length() - 1))
    power = np.square(np.abs(sfft.rfft(loop[:, :n], axis=-1))).sum(axis=0)
    total = float(power.sum())
    return float((power * _k_magnitude(sr, n) ** 2).sum()) / total if total > 0 else 1.0


def _estimate_loudness(layers: list[_Layer], master: np.ndarray, sr: int, hops: int) -> float:
    """Loudness of the mix without rendering it, from each loop's power and the envelopes.

    Layers are nearly uncorrelated, so their powers add; envelopes are slow next to 100 ms;
    a loop's K-weighting is taken as one factor (its spectrum hardly changes within it).
    """
    seg = sr // 10
    count = hops * _HOP // seg
    edges = np.arange(count + 1, dtype=np.int64) * seg
    centres = (edges[:-1] + seg / 2) / _HOP
    grid = np.arange(hops + 1)
    # Same-named layers (a pad's dark and bright versions) are coherent: add amplitudes.
    amplitude: dict[str, np.ndarray] = {}
    for layer in layers:
        length = layer.loop.shape[-1]
        power = np.square(layer.loop, dtype=np.float64).sum(axis=0)
        cum = np.concatenate([[0.0], np.cumsum(power * _k_power_ratio(layer.loop, sr))])

        def upto(x: np.ndarray, cum: np.ndarray = cum, length: int = length) -> np.ndarray:
            return (x // length) * cum[-1] + cum[x % length]

        seg_power = (upto(edges[1:]) - upto(edges[:-1])) / seg
        env = np.interp(centres, grid, layer.env.astype(np.float64))
        amplitude[layer.name] = amplitude.get(layer.name, 0.0) + env * np.sqrt(
            np.maximum(seg_power, 0.0)
        )
    total = sum(a**2 for a in amplitude.values()) * np.interp(centres, grid, master) ** 2
    return _integrated(total)


# --- rendering and encoding ------------------------------------------------------------


def _expand(env: np.ndarray, h0: int, h1: int, ramp: np.ndarray) -> np.ndarray:
    e = env[h0 : h1 + 1]
    return (e[:-1, None] + (e[1:] - e[:-1])[:, None] * ramp[None, :]).reshape(-1)


def _loop_slice(loop: np.ndarray, start: int, count: int) -> np.ndarray:
    length = loop.shape[-1]
    pos = start % length
    if pos + count <= length:
        return loop[:, pos : pos + count]
    pieces, need = [], count
    while need > 0:
        piece = loop[:, pos : pos + need]
        pieces.append(piece)
        need -= piece.shape[-1]
        pos = 0
    return np.concatenate(pieces, axis=-1)


def _soft_clip(x: np.ndarray) -> None:
    """In place: untouched below -3 dBFS, bent smoothly towards a -1 dBFS ceiling above."""
    mag = np.abs(x)
    over = mag > _SOFT_KNEE
    if over.any():
        room = _CEILING - _SOFT_KNEE
        bent = _SOFT_KNEE + room * np.tanh((mag[over] - _SOFT_KNEE) / room)
        x[over] = np.sign(x[over]) * bent


def render_demo_track(track: DemoTrack) -> Iterator[np.ndarray]:
    """The track's audio as float32 (channels, samples) chunks, loudness-normalised.

    Streaming keeps memory flat for long tracks and the working arrays cache-sized.
    """
    layers, master = _layers(track)
    sr, hops = track.sample_rate, track.hops
    measured = _estimate_loudness(layers, master, sr, hops)
    gain = 10 ** ((track.lufs - measured) / 20) if measured > -70 else 1.0
    ramp = np.arange(_HOP, dtype=np.float32) / _HOP
    for h0 in range(0, hops, _CHUNK_HOPS):
        h1 = min(hops, h0 + _CHUNK_HOPS)
        start, count = h0 * _HOP, (h1 - h0) * _HOP
        out = np.zeros((track.channels, count), np.float32)
        if master[h0 : h1 + 1].any():
            scratch = np.empty_like(out)
            for layer in layers:
                e = layer.env[h0 : h1 + 1]
                if e[0] == e[-1] and (e == e[0]).all():
                    if e[0]:
                        np.multiply(_loop_slice(layer.loop, start, count), e[0], out=scratch)
                        out += scratch
                elif e.any():
                    ramped = _expand(layer.env, h0, h1, ramp)
                    np.multiply(_loop_slice(layer.loop, start, count), ramped, out=scratch)
                    out += scratch
            out *= _expand(master, h0, h1, ramp) * np.float32(gain)
            _soft_clip(out)
        yield out


def _frame(chunk: np.ndarray, sample_format: str, sr: int, pts: int) -> av.AudioFrame:
    layout = "mono" if chunk.shape[0] == 1 else "stereo"
    if sample_format.startswith("s16"):
        data = np.clip(np.rint(chunk * 32767.0), -32768, 32767).astype(np.int16)
    else:
        data = chunk.astype(np.float32)
    if not sample_format.endswith("p"):
        data = data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(data), format=sample_format, layout=layout
    )
    frame.sample_rate = sr
    frame.pts = pts
    frame.time_base = Fraction(1, sr)
    return frame


def _encode(track: DemoTrack, target: Path) -> float:
    """Encode the track into `target`; returns the sample peak (for ReplayGain)."""
    fmt = FORMATS[track.format]
    peak, pts = 0.0, 0
    with av.open(str(target), "w", format=fmt.container) as container:
        stream = container.add_stream(
            fmt.codec,
            rate=track.sample_rate,
            layout="mono" if track.channels == 1 else "stereo",
            options=dict(fmt.options),
        )
        if fmt.bit_rate:
            stream.bit_rate = fmt.bit_rate if track.channels == 2 else fmt.bit_rate * 2 // 3
        for chunk in render_demo_track(track):
            peak = max(peak, float(np.abs(chunk).max()))
            for packet in stream.encode(_frame(chunk, fmt.sample_format, track.sample_rate, pts)):
                container.mux(packet)
            pts += chunk.shape[-1]
        for packet in stream.encode(None):
            container.mux(packet)
    return peak


def _tag(track: DemoTrack, target: Path, peak: float) -> None:
    """Write real tags in the format's own dialect (Vorbis comments, ID3, MP4 atoms)."""
    truth = json.dumps(track.ground_truth(), separators=(",", ":"), sort_keys=True)
    rg_gain = f"{-18.0 - track.lufs:+.2f} dB"
    rg_peak = f"{peak:.6f}"
    fmt = track.format
    if fmt in ("flac", "vorbis", "opus"):
        audio = {"flac": FLAC, "vorbis": OggVorbis, "opus": OggOpus}[fmt](target)
        if audio.tags is None:
            audio.add_tags()
        audio.tags.clear()
        fields = {
            "TITLE": track.title,
            "ARTIST": track.artist,
            "ALBUM": track.album,
            "ALBUMARTIST": track.album_artist,
            "GENRE": track.genre,
            "TRACKNUMBER": str(track.track_number),
            "TRACKTOTAL": str(track.track_total),
            "DISCNUMBER": str(track.disc_number),
            "DISCTOTAL": str(track.disc_total),
            "DATE": str(track.year),
            "ISRC": track.isrc,
            "COMMENT": track.comment,
            DEMO_TAG: truth,
        }
        if track.tempo:
            fields["BPM"] = str(track.tempo)
        if track.has_voice:
            fields["LANGUAGE"] = "zxx"
        if track.replaygain:
            fields |= {"REPLAYGAIN_TRACK_GAIN": rg_gain, "REPLAYGAIN_TRACK_PEAK": rg_peak}
        if fmt == "opus":
            # RFC 7845: Q7.8 gain towards -23 LUFS, on top of the header's output gain (0).
            fields["R128_TRACK_GAIN"] = str(round((-23.0 - track.lufs) * 256))
        for key, value in fields.items():
            audio.tags[key] = [value]
        audio.save()
    elif fmt in ("mp3", "wav"):
        frames = [
            id3.TIT2(encoding=3, text=track.title),
            id3.TPE1(encoding=3, text=track.artist),
            id3.TALB(encoding=3, text=track.album),
            id3.TPE2(encoding=3, text=track.album_artist),
            id3.TCON(encoding=3, text=track.genre),
            id3.TRCK(encoding=3, text=f"{track.track_number}/{track.track_total}"),
            id3.TPOS(encoding=3, text=f"{track.disc_number}/{track.disc_total}"),
            id3.TDRC(encoding=3, text=str(track.year)),
            id3.TSRC(encoding=3, text=track.isrc),
            id3.COMM(encoding=3, lang="eng", desc="", text=track.comment),
            id3.TXXX(encoding=3, desc=DEMO_TAG, text=truth),
        ]
        if track.tempo:
            frames.append(id3.TBPM(encoding=3, text=str(track.tempo)))
        if track.has_voice:
            frames.append(id3.TLAN(encoding=3, text="zxx"))
        if track.replaygain:
            frames.append(id3.TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text=rg_gain))
            frames.append(id3.TXXX(encoding=3, desc="REPLAYGAIN_TRACK_PEAK", text=rg_peak))
        if fmt == "mp3":
            tags = id3.ID3()
            for frame in frames:
                tags.add(frame)
            tags.save(target, v2_version=4)
        else:
            wave = WAVE(target)
            if wave.tags is None:
                wave.add_tags()
            for frame in frames:
                wave.tags.add(frame)
            wave.save(v2_version=4)
    else:  # aac, alac in MP4
        mp4 = MP4(target)
        if mp4.tags is None:
            mp4.add_tags()
        mp4.tags.clear()
        mp4.tags.update(
            {
                "\xa9nam": [track.title],
                "\xa9ART": [track.artist],
                "\xa9alb": [track.album],
                "aART": [track.album_artist],
                "\xa9gen": [track.genre],
                "\xa9day": [str(track.year)],
                "\xa9cmt": [track.comment],
                "trkn": [(track.track_number, track.track_total)],
                "disk": [(track.disc_number, track.disc_total)],
            }
        )
        if track.tempo:
            mp4.tags["tmpo"] = [track.tempo]
        freeform = {"ISRC": track.isrc, DEMO_TAG: truth}
        if track.has_voice:
            freeform["LANGUAGE"] = "zxx"
        if track.replaygain:
            freeform |= {"replaygain_track_gain": rg_gain, "replaygain_track_peak": rg_peak}
        for key, value in freeform.items():
            mp4.tags[_MP4_FREEFORM + key] = [
                MP4FreeForm(value.encode("utf-8"), dataformat=AtomDataType.UTF8)
            ]
        mp4.save()


def write_demo_track(track: DemoTrack, directory: Path) -> Path:
    """Synthesise, encode and tag one track under `directory`, atomically (temp + rename)."""
    path = Path(directory) / track.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        peak = _encode(track, tmp)
        _tag(track, tmp, peak)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _cost(track: DemoTrack) -> float:
    """Rough CPU seconds, to start the longest jobs first and keep both cores busy."""
    per_second = FORMATS[track.format].cost * (0.6 if track.channels == 1 else 1.0)
    return track.duration * (per_second * track.sample_rate / 22050 + 0.0008)


def generate_demo_library(
    directory: Path,
    *,
    tracks: int = 60,
    seed: int = 0,
    duration_range: tuple[float, float] = (120.0, 480.0),
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
) -> list[Path]:
    """Write a synthesised library of `tracks` files; the same seed gives the same library.

    Files go to `directory/<album artist>/<album>/NN Title.ext`. A file already there whose
    ground-truth tag matches the plan is kept untouched (so re-running is quick and a
    rescan sees it unchanged) unless `force`; any other file at that path is rewritten.
    Returns the paths in plan order. With jobs > 1 the work runs in spawned processes, so a
    script calling this needs the usual `if __name__ == "__main__":` guard.
    """
    directory = Path(directory)
    planned = plan_demo_tracks(tracks, seed, duration_range)
    directory.mkdir(parents=True, exist_ok=True)
    jobs = max(1, jobs if jobs is not None else os.cpu_count() or 1)
    paths: list[Path | None] = [None] * len(planned)
    done = 0
    todo = list(range(len(planned)))
    if not force:
        todo = []
        for i, track in enumerate(planned):
            if _is_current(directory / track.relpath, track):
                paths[i] = directory / track.relpath
                done += 1
                if progress:
                    progress(done, len(planned))
            else:
                todo.append(i)
    if jobs == 1 or len(todo) <= 1:
        for i in todo:
            paths[i] = write_demo_track(planned[i], directory)
            done += 1
            if progress:
                progress(done, len(planned))
    else:
        # Spawned workers: no fork of a threaded parent, same behaviour on every platform.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
            order = sorted(todo, key=lambda i: -_cost(planned[i]))
            futures = {pool.submit(write_demo_track, planned[i], directory): i for i in order}
            try:
                for future in as_completed(futures):
                    paths[futures[future]] = future.result()
                    done += 1
                    if progress:
                        progress(done, len(planned))
            except BaseException:
                # A failure or Ctrl-C: don't start the queued tracks, just finish the running.
                for future in futures:
                    future.cancel()
                raise
    return [p for p in paths if p is not None]


def _is_current(path: Path, track: DemoTrack) -> bool:
    """Whether `path` already holds this planned track (its ground-truth tag matches)."""
    if not path.is_file():
        return False
    try:
        found = read_demo_truth(path)
    except Exception:  # noqa: BLE001 - any unreadable file is simply rewritten
        return False
    return found == json.loads(json.dumps(track.ground_truth()))


def read_demo_truth(path: Path) -> dict[str, Any] | None:
    """The SETLIST_DEMO ground truth from any demo file's tags, or None if absent."""
    import mutagen

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        return None
    tags = audio.tags
    candidates = [f"TXXX:{DEMO_TAG}", _MP4_FREEFORM + DEMO_TAG, DEMO_TAG, DEMO_TAG.lower()]
    for key in candidates:
        try:
            value = tags[key]
        except (KeyError, ValueError):
            continue
        if hasattr(value, "text"):
            value = value.text
        first = value[0] if isinstance(value, list) else value
        if isinstance(first, bytes):
            first = first.decode("utf-8")
        return json.loads(str(first))
    return None


# --- a corrupt corpus for scanner tests ------------------------------------------------

#: What a scanner should make of each corrupt-corpus entry: "failed" (reported as an error,
#: never a crash), "ignored" (not audio, or a directory not to follow) or "ok" (valid audio
#: with an awkward name: index it, or report it as failed if the name cannot be stored).
CORRUPT_CORPUS_EXPECTED: dict[str, str] = {
    "random_bytes": "failed",  # random.mp3: 8 KiB of noise bytes
    "truncated_flac": "failed",  # truncated.flac: valid header, cut mid-stream
    "empty_ogg": "failed",  # empty.ogg: zero bytes
    "short_wav": "failed",  # short.wav: header claims 10 s, holds 0.5 s
    "text_m4a": "failed",  # text.m4a: a text file
    "dangling_symlink": "failed",  # gone.flac: symlink to a missing file
    "latin1_name": "ok",  # b'caf\xe9 cr\xe8me.flac': valid FLAC, non-UTF-8 name
    "unsupported_midi": "ignored",  # sketch.mid: a valid MIDI file, not a supported format
    "unsupported_text": "ignored",  # notes.txt
    "symlink_loop": "ignored",  # loop/: a symlink to its own folder
}


def _tone_file(path: Path, codec: str, container: str, seconds: float, sr: int = 22050) -> None:
    t = np.arange(int(seconds * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)[None, :]
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        frame = _frame(tone, stream.codec_context.format.name, sr, 0)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def write_corrupt_corpus(directory: Path) -> dict[str, Path]:
    """Write files a scanner must survive; see CORRUPT_CORPUS_EXPECTED for their verdicts.

    Idempotent. The non-UTF-8 name is skipped where the filesystem refuses it (macOS).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0xBAD)
    out: dict[str, Path] = {}

    def put(key: str, name: str | bytes, data: bytes) -> None:
        path = Path(os.fsdecode(os.path.join(os.fsencode(directory), os.fsencode(name))))  # noqa: PTH118
        path.write_bytes(data)
        out[key] = path

    put("random_bytes", "random.mp3", rng.bytes(8192))
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        flac = Path(scratch) / "tone.flac"
        _tone_file(flac, "flac", "flac", 6.0)
        whole = flac.read_bytes()
    put("truncated_flac", "truncated.flac", whole[: len(whole) // 2])
    put("empty_ogg", "empty.ogg", b"")
    sr = 22050
    pcm = (np.sin(np.arange(sr // 2) * 0.1) * 8000).astype("<i2").tobytes()
    claimed = 10 * sr * 2
    header = (
        b"RIFF"
        + (36 + claimed).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + sr.to_bytes(4, "little")
        + (sr * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + claimed.to_bytes(4, "little")
    )
    put("short_wav", "short.wav", header + pcm)
    put("text_m4a", "text.m4a", b"This is a text file with an audio suffix.\n" * 40)
    with contextlib.suppress(OSError):  # filesystems that insist on UTF-8 names refuse it
        put("latin1_name", b"caf\xe9 cr\xe8me.flac", whole)
    # A minimal valid MIDI file: header chunk, one track with a single note and end-of-track.
    track = bytes.fromhex("00903c408360803c4000ff2f00")
    midi = b"MThd" + bytes.fromhex("00000006000000010060") + b"MTrk"
    midi += len(track).to_bytes(4, "big") + track
    put("unsupported_midi", "sketch.mid", midi)
    put("unsupported_text", "notes.txt", b"liner notes, not audio\n")
    for key, name, target in (("dangling_symlink", "gone.flac", "missing/nowhere.flac"),
                              ("symlink_loop", "loop", ".")):  # fmt: skip
        link = directory / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=name == "loop")
        out[key] = link
    return out
