"""Therapists' annotations as a YAML file they can keep, share and re-import.

An exported entry names its track several ways (path, fingerprint, ISRC, artist and
title), so an import finds it again after the library moved or on a colleague's
machine. Import is all-or-nothing: every entry is checked (with file:line positions)
before any is written, and entries that match no track are reported, never dropped
silently.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from setlist.errors import AnnotationsFileError, Problem
from setlist.fsutil import atomic_write_text, display_path, read_data_file
from setlist.library.index import Index, path_to_uri
from setlist.models import TRACK_VOCALS, Annotation
from setlist.yamlsrc import Mark, Node, parse_yaml

FORMAT_VERSION = 1
_MATCH_KEYS = ("path", "fingerprint", "isrc", "artist", "title")
_ENTRY_KEYS = (
    "match",
    "intensity",
    "vocals",
    "tempo",
    "never",
    "tags",
    "note",
    "cue_in",
    "cue_out",
)


def export_annotations(index: Index, path: Path) -> int:
    """Write every annotation to `path` atomically; returns how many."""
    entries = []
    for entry, a in index.annotated():
        t = entry.track
        match = {
            "path": entry.display_path,
            "fingerprint": index.fingerprint_of(t.id),
            "isrc": t.isrc,
            "artist": t.artist,
            "title": t.title,
        }
        item: dict[str, Any] = {"match": {k: v for k, v in match.items() if v}}
        if a.intensity is not None:
            item["intensity"] = a.intensity
        if a.vocals is not None:
            item["vocals"] = a.vocals
        if a.tempo_bpm is not None:
            item["tempo"] = a.tempo_bpm
        if a.never:
            item["never"] = True
        if a.tags:
            item["tags"] = list(a.tags)
        if a.note:
            item["note"] = a.note
        if a.cue_in is not None:
            item["cue_in"] = a.cue_in
        if a.cue_out is not None:
            item["cue_out"] = a.cue_out
        entries.append(item)
    header = (
        "# setlist annotations: therapists' corrections to the library's analysis.\n"
        f"# Exported {dt.datetime.now().astimezone().isoformat(timespec='seconds')}; "
        "re-import with 'setlist library annotations import FILE'.\n"
    )
    body = yaml.safe_dump(
        {"version": FORMAT_VERSION, "tracks": entries},
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    atomic_write_text(path, header + body)
    return len(entries)


@dataclass(frozen=True, slots=True)
class ImportResult:
    applied: int
    unmatched: tuple[str, ...]


def import_annotations(index: Index, path: Path) -> ImportResult:
    """Apply an annotations file; `AnnotationsFileError` lists every bad entry."""
    shown = display_path(path)
    text = read_data_file(path, AnnotationsFileError, kind="annotations file")
    root = parse_yaml(text, shown, AnnotationsFileError)
    problems: list[Problem] = []
    items: list[tuple[int, Annotation]] = []
    unmatched: list[str] = []

    def bad(node: Node, where: str, message: str) -> None:
        problems.append(Problem(node.mark.origin, node.mark.line, node.mark.column, where, message))

    if not isinstance(root.value, dict) or "tracks" not in root.value:
        bad(root, "", "expected a mapping with 'version' and 'tracks'")
        raise AnnotationsFileError(problems)
    version = root.value.get("version")
    if version is not None and version.value != FORMAT_VERSION:
        bad(version, "version", f"unsupported version {version.value!r} (expected 1)")
    tracks = root.value["tracks"]
    if not isinstance(tracks.value, list):
        bad(tracks, "tracks", "expected a list of entries")
        raise AnnotationsFileError(problems)
    for i, node in enumerate(tracks.value):
        where = f"tracks[{i}]"
        if not isinstance(node.value, dict):
            bad(node, where, "expected a mapping with 'match' and the annotation")
            continue
        for key, child in node.value.items():
            if key not in _ENTRY_KEYS:
                guess = difflib.get_close_matches(key, _ENTRY_KEYS, n=1)
                tail = f"; did you mean '{guess[0]}'?" if guess else ""
                problems.append(
                    Problem(
                        *_where(child.key_mark or child.mark),
                        f"{where}.{key}",
                        f"unknown key{tail} (expected one of: {', '.join(_ENTRY_KEYS)})",
                    )
                )
        match = node.value.get("match")
        if match is None or not isinstance(match.value, dict):
            bad(
                node, f"{where}.match", "needs 'match' with path, fingerprint, isrc or artist+title"
            )
            continue
        keys = {k: str(v.value) for k, v in match.value.items() if k in _MATCH_KEYS and v.value}
        try:
            annotation = _annotation(node.value)
        except ValueError as exc:
            bad(node, where, str(exc))
            continue
        track_id = index.find_for_annotation(
            uri=_uri(keys.get("path", "")),
            fingerprint=keys.get("fingerprint", ""),
            isrc=keys.get("isrc", ""),
            artist=keys.get("artist", ""),
            title=keys.get("title", ""),
        )
        if track_id is None:
            label = keys.get("path") or f"{keys.get('artist', '?')} - {keys.get('title', '?')}"
            unmatched.append(label)
            continue
        items.append((track_id, annotation))
    if problems:
        raise AnnotationsFileError(problems, hint="nothing was imported; fix the lines above")
    index.replace_annotations(items)
    return ImportResult(len(items), tuple(unmatched))


def _uri(shown_path: str) -> str:
    return path_to_uri(shown_path) if shown_path else ""


def _annotation(fields: dict[str, Node]) -> Annotation:
    def get(key: str) -> Any:
        node = fields.get(key)
        return None if node is None else node.value

    intensity = get("intensity")
    vocals = get("vocals")
    tempo = get("tempo")
    tags = get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if vocals is not None and vocals not in TRACK_VOCALS[:3]:
        raise ValueError(f"vocals {vocals!r}: expected none, wordless or lyrics")
    if intensity is not None and (
        isinstance(intensity, bool) or not isinstance(intensity, int | float)
    ):
        raise ValueError(f"intensity {intensity!r}: expected a number 0-1")
    if tempo is not None and (isinstance(tempo, bool) or not isinstance(tempo, int | float)):
        raise ValueError(f"tempo {tempo!r}: expected BPM")
    cues = {}
    for key in ("cue_in", "cue_out"):
        value = get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{key} {value!r}: expected seconds into the file")
        cues[key] = None if value is None else float(value)
    return Annotation(
        intensity=None if intensity is None else float(intensity),
        vocals=vocals,
        tempo_bpm=None if tempo is None else float(tempo),
        never=bool(get("never")),
        tags=tuple(str(t.value if isinstance(t, Node) else t).strip().casefold() for t in tags),
        note=str(get("note") or ""),
        **cues,
    )


def _where(mark: Mark) -> tuple[str, int, int]:
    return mark.origin, mark.line, mark.column
