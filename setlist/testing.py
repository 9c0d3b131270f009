"""Factories shipped with the package for tests, benchmarks and anyone extending setlist.

Synthetic tracks carry realistic features (an intensity envelope that drifts, a tempo
that rises with intensity, silences, loudness spread) so planner tests and benchmarks
exercise the same code paths as an analysed library, at any size, without audio.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from setlist.models import Candidates, Features, Track, candidates_from_tracks

GENRES = ("ambient", "drone", "neoclassical", "piano", "choral", "downtempo", "world", "pulse")
ENVELOPE_STEP = 3.0


def make_track(
    track_id: int,
    *,
    intensity: float = 0.5,
    duration: float = 300.0,
    artist: str = "",
    title: str = "",
    tempo: float | None = 80.0,
    vocals: str = "none",
    tags: tuple[str, ...] = (),
    loudness: float = -20.0,
    peak: float = -3.0,
    slope: float = 0.0,
) -> Track:
    """One analysed track whose envelope runs from `intensity - slope/2` to `+ slope/2`."""
    steps = max(1, int(np.ceil(duration / ENVELOPE_STEP)))
    env = np.clip(intensity + slope * (np.linspace(0, 1, steps) - 0.5), 0.0, 1.0)
    features = Features(
        duration=duration,
        loudness_lufs=loudness,
        loudness_range_lu=6.0,
        peak_dbfs=peak,
        intensity=float(np.clip(intensity, 0.0, 1.0)),
        envelope=tuple(float(v) for v in env),
        envelope_step=ENVELOPE_STEP,
        tempo_bpm=tempo,
        tempo_confidence=0.8 if tempo else 0.0,
        lead_silence=0.0,
        trail_silence=0.0,
        brightness_hz=1500.0,
        onset_rate=1.0,
        voice=0.8 if vocals == "lyrics" else 0.0,
        version=1,
    )
    return Track(
        id=track_id,
        uri=f"file:///music/{track_id}.flac",
        title=title or f"Track {track_id}",
        duration=duration,
        artist=artist or f"Artist {track_id % 97}",
        tags=tags,
        vocals=vocals,
        features=features,
    )


def make_library(
    n: int, seed: int = 0, *, lyrics: float = 0.15, artists: int | None = None
) -> list[Track]:
    """`n` varied synthetic tracks spanning the intensity range, deterministic per seed."""
    rng = np.random.default_rng(seed)
    artists = artists or max(4, n // 8)
    intensity = rng.beta(1.3, 1.3, n)
    duration = np.clip(rng.lognormal(np.log(300), 0.35, n), 100, 900)
    slope = rng.normal(0, 0.15, n)
    loudness = -30 + 20 * intensity + rng.normal(0, 3, n)
    tracks = []
    for i in range(n):
        x = float(intensity[i])
        tempo = None if x < 0.2 and rng.random() < 0.7 else float(55 + 80 * x + rng.normal(0, 8))
        genre = GENRES[min(len(GENRES) - 1, int(x * len(GENRES)))]
        base = make_track(
            i + 1,
            intensity=x,
            duration=float(round(duration[i], 1)),
            artist=f"Artist {int(rng.integers(artists)):04d}",
            title=f"Piece {i + 1}",
            tempo=tempo,
            vocals="lyrics" if rng.random() < lyrics else "none",
            tags=(genre,),
            loudness=float(loudness[i]),
            peak=float(min(-0.3, loudness[i] + 14 + rng.normal(0, 2))),
            slope=float(slope[i]),
        )
        assert base.features is not None
        env = np.asarray(base.features.envelope)
        wobble = np.cumsum(rng.normal(0, 0.01, env.size))
        env = np.clip(env + wobble - wobble.mean(), 0, 1)
        features = replace(
            base.features,
            envelope=tuple(float(v) for v in env),
            intensity=float(np.clip(env.mean(), 0, 1)),
        )
        tracks.append(replace(base, features=features))
    return tracks


def make_candidates(n: int, seed: int = 0, **kwargs: float) -> Candidates:
    """`make_library` as planner input arrays."""
    return candidates_from_tracks(make_library(n, seed, **kwargs))  # type: ignore[arg-type]
