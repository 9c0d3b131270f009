"""Application services: the steps behind `setlist build`, kept out of the CLI.

`build_session` wires the adapters (arc files, the library index, profile files, the
exporters) around the pure planner, and is the one place that stamps a plan with the
wall-clock time and a fingerprint of the music it was made from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from setlist.arcfiles import Catalogue
from setlist.errors import PlanningError
from setlist.library.index import CandidateFilter, Index
from setlist.models import Arc, Candidates, Setlist
from setlist.planner import Listeners, PlanOptions, plan


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What a therapist asked `setlist build` for."""

    arc: str
    db: Path | None = None
    seed: int | None = None
    profiles: tuple[Path, ...] = ()
    minutes: float | None = None
    out_dir: Path = Path("playlists")
    name: str | None = None
    formats: tuple[str, ...] = ()
    source: str | None = None
    write: bool = True
    artist_gap: int = PlanOptions().artist_gap


@dataclass(frozen=True, slots=True)
class BuildResult:
    setlist: Setlist
    files: tuple[Path, ...]
    candidates: int


def new_seed() -> int:
    """A fresh seed for a build that did not ask for one (recorded, so reproducible)."""
    return secrets.randbelow(1_000_000)


def load_arc(ref: str, minutes: float | None = None) -> Arc:
    arc = Catalogue.default().load(ref)
    if minutes is not None:
        if minutes <= 0:
            raise PlanningError("--minutes must be positive")
        arc = arc.with_length(minutes * 60.0)
    return arc


def library_fingerprint(c: Candidates) -> str:
    """Identifies the music a plan was made from: the same tracks, lengths and intensities
    (annotations included) give the same fingerprint."""
    h = hashlib.blake2b(digest_size=8)
    for array in (c.ids, c.duration, c.intensity):
        h.update(array.tobytes())
    return h.hexdigest()


def listeners_for(profile_paths: tuple[Path, ...], c: Candidates) -> Listeners:
    if not profile_paths:
        return Listeners()
    from setlist.profilefiles import load_profile
    from setlist.profiles import Audience

    audience = Audience(tuple(load_profile(p) for p in profile_paths))
    tracks = list(c.tracks)
    return Listeners(
        vetoed=audience.vetoed(tracks),
        liked=audience.likes(tracks),
        names=audience.names,
        max_volume_db=audience.max_volume_db,
    )


def output_name(arc: Arc, out_dir: Path, today: dt.date) -> str:
    """`ARC-YYYY-MM-DD`, numbered so an earlier session's files are never overwritten."""
    base = f"{arc.name}-{today.isoformat()}"
    name, n = base, 1
    while any(out_dir.glob(f"{name}.*")):
        n += 1
        name = f"{base}-{n}"
    return name


def build_session(request: BuildRequest) -> BuildResult:
    arc = load_arc(request.arc, request.minutes)
    seed = request.seed if request.seed is not None else new_seed()
    with Index.open(request.db) as index:
        candidates = index.candidates(CandidateFilter(source=request.source))
    listeners = listeners_for(request.profiles, candidates)
    setlist = plan(
        arc, candidates, PlanOptions(seed=seed, artist_gap=request.artist_gap), listeners
    )
    now = dt.datetime.now(dt.UTC).astimezone()
    setlist = replace(
        setlist,
        created=now.isoformat(timespec="seconds"),
        library=library_fingerprint(candidates),
        notes=setlist.notes + _estimated_note(request.db, setlist),
    )
    files: tuple[Path, ...] = ()
    if request.write:
        from setlist.exports import FORMATS, write_outputs

        name = request.name or output_name(arc, request.out_dir, now.date())
        files = tuple(write_outputs(setlist, request.out_dir, name, request.formats or FORMATS))
    return BuildResult(setlist, files, len(candidates))


def _estimated_note(db: Path | None, setlist: Setlist) -> tuple[str, ...]:
    """Say how many planned Spotify tracks have an estimated (not measured) intensity."""
    ids = [e.track.id for e in setlist.entries if e.track.source == "spotify"]
    if not ids:
        return ()
    with Index.open(db) as index:
        sources = index.intensity_sources(ids)
    guessed = Counter(s for s in sources.values() if s in ("spotify", "local-copy", "heuristic"))
    if not guessed:
        return ()
    parts = ", ".join(f"{n} {k}" for k, n in sorted(guessed.items()))
    return (
        f"{sum(guessed.values())} of {len(setlist.entries)} tracks have an estimated "
        f"intensity ({parts}); listen through them or annotate them",
    )
