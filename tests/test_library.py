"""The library: scanning real audio files into a real SQLite index, incrementally and safely."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from setlist.cli import cli
from setlist.errors import AnnotationsFileError, LibraryError
from setlist.library import scan as scan_module
from setlist.library.annotations import export_annotations, import_annotations
from setlist.library.index import SCHEMA_VERSION, Index, path_to_uri, uri_to_path
from setlist.library.query import Term, parse_query
from setlist.library.scan import scan

from .audiofiles import tone, write_audio

TAGS = {"artist": "Lumen Drift", "album": "Tides", "genre": "Ambient; Drone", "date": "2021"}


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    for i, suffix in enumerate([".flac", ".mp3", ".wav", ".m4a", ".opus"]):
        folder = root / ("a" if i % 2 else "b")
        write_audio(
            folder / f"{i + 1:02d} track{i}{suffix}",
            tone(2.0 + i * 0.5, freq=220 + 40 * i),
            tags={
                **TAGS,
                "title": f"Wave {i}",
                "tracknumber": str(i + 1),
                "isrc": f"XXDMO26{i:05d}",
            },
        )
    return root


@pytest.fixture
def index(tmp_path: Path) -> Index:
    idx = Index.open(tmp_path / "db" / "library.sqlite")
    yield idx
    idx.close()


def titles(index: Index, status: str = "ok") -> set[str]:
    return {e.track.title for e in index.search([Term("status", status)])}


def test_scan_reads_every_format(music: Path, index: Index) -> None:
    report = scan([music], index, analyze=False)
    assert report.seen == 5 and report.new == 5 and not report.failed
    entries = index.search([])
    assert {e.format for e in entries} == {"flac", "mp3", "wav", "m4a", "opus"}
    for e in entries:
        t = e.track
        assert t.artist == "Lumen Drift" and t.album == "Tides" and t.year == 2021
        assert t.tags == ("ambient", "drone")
        assert t.title.startswith("Wave ")
        assert t.isrc.startswith("XXDMO26")
        assert 1.9 < t.duration < 4.2
        assert uri_to_path(t.uri).is_file()
    stats = index.stats()
    assert stats["ok"] == 5 and stats["formats"] == dict.fromkeys(
        ("flac", "mp3", "wav", "m4a", "opus"), 1
    )


def test_rescan_is_incremental(music: Path, index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    scan([music], index, analyze=False)
    calls: list[Path] = []
    real = scan_module.read_tags
    monkeypatch.setattr(scan_module, "read_tags", lambda p, *fh: calls.append(p) or real(p, *fh))
    again = scan([music], index, analyze=False)
    assert again.unchanged == 5 and again.new == again.updated == 0
    assert calls == []  # unchanged files cost no tag read
    victim = next(music.rglob("*.mp3"))
    os.utime(victim, ns=(1, 1))
    third = scan([music], index, analyze=False)
    assert third.updated == 1 and calls == [victim]


def test_removed_file_is_missing_not_forgotten(music: Path, index: Index) -> None:
    scan([music], index, analyze=False)
    flac = next(music.rglob("*.flac"))
    track = index.search([Term("format", "flac")])[0].track
    index.annotate([track.id], {"intensity": 0.2, "tags": ("grounding",)})
    flac.unlink()
    report = scan([music], index, analyze=False)
    assert report.missing == 1
    gone = index.search([Term("id", str(track.id))])[0]
    assert gone.status == "missing"
    assert gone.annotation is not None and gone.annotation.intensity == 0.2
    assert track.title not in titles(index)


def test_moved_file_keeps_its_annotation(music: Path, index: Index) -> None:
    scan([music], index, analyze=False)
    wav = next(music.rglob("*.wav"))
    track = index.search([Term("format", "wav")])[0].track
    index.annotate([track.id], {"vocals": "none", "note": "grounding piece"})
    target = music / "moved" / "renamed.wav"
    target.parent.mkdir()
    wav.rename(target)
    report = scan([music], index, analyze=False)
    assert report.moved == 1 and report.new == 0 and report.missing == 0
    entry = index.search([Term("id", str(track.id))])[0]
    assert entry.status == "ok"
    assert uri_to_path(entry.track.uri) == target
    assert entry.annotation is not None and entry.annotation.note == "grounding piece"


def test_scanning_one_folder_does_not_touch_another(music: Path, index: Index) -> None:
    scan([music], index, analyze=False)
    report = scan([music / "a"], index, analyze=False)
    assert report.missing == 0
    assert index.stats()["ok"] == 5


def test_bad_files_are_reported_and_the_scan_goes_on(tmp_path: Path, index: Index) -> None:
    root = tmp_path / "lib"
    write_audio(root / "good.flac", tone(2.0), tags={"title": "Good"})
    (root / "garbage.mp3").write_bytes(b"\x00not audio at all" * 200)
    (root / "empty.ogg").write_bytes(b"")
    (root / "text.m4a").write_text("just some text, not an mp4 container\n" * 20)
    full = (root / "good.flac").read_bytes()
    (root / "truncated.flac").write_bytes(full[:60])
    (root / "notes.txt").write_text("ignored")
    latin = os.fsencode(root) + b"/caf\xe9 nocturne.flac"
    write_audio(tmp_path / "untagged.flac", tone(2.0))
    (tmp_path / "untagged.flac").rename(os.fsdecode(latin))  # no title: the name is used
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to(root, target_is_directory=True)

    report = scan([root], index, analyze=False)
    failed = {Path(p.path).name: p.reason for p in report.failed}
    assert set(failed) == {"garbage.mp3", "empty.ogg", "text.m4a", "truncated.flac"}
    assert failed["empty.ogg"] == "empty file"
    assert all(reason for reason in failed.values())
    assert any("symlink loop" in p.reason for p in report.skipped)
    ok = index.search([Term("status", "ok")])
    assert {e.track.title for e in ok} == {"Good", "caf\ufffd nocturne"}
    # the undecodable name round-trips exactly through its URI
    cafe = next(e for e in ok if "nocturne" in e.track.title)
    assert os.fsencode(uri_to_path(cafe.track.uri)) == latin
    assert index.stats()["failed"] == 4
    # a rescan keeps the index consistent and reports the same failures
    again = scan([root], index, analyze=False)
    assert {Path(p.path).name for p in again.failed} == set(failed)
    assert index.stats()["ok"] == 2


def test_unreadable_file_and_folder() -> None:
    """Permissions bite only a non-root user: as root, the scan runs as `nobody`."""
    root = Path(tempfile.mkdtemp(prefix="setlist-perm-"))
    try:
        root.chmod(0o777)
        lib = root / "lib"
        write_audio(lib / "good.flac", tone(1.0))
        write_audio(lib / "secret.flac", tone(1.0)).chmod(0)
        write_audio(lib / "locked" / "inner.flac", tone(1.0))
        (lib / "locked").chmod(0)
        lib.chmod(0o755)
        command = [sys.executable, "-m", "setlist", "library", "scan", str(lib),
                   "--db", str(root / "db.sqlite"), "--no-analyze", "--json"]  # fmt: skip
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("needs setpriv to drop root")
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        env = {**os.environ, "HOME": str(root), "XDG_CONFIG_HOME": str(root / "config")}
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=root, env=env
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert [(Path(p["path"]).name, p["reason"]) for p in report["failed"]] == [
            ("secret.flac", "permission denied")
        ]
        assert [(Path(p["path"]).name, p["reason"]) for p in report["skipped"]] == [
            ("locked", "permission denied")
        ]
        assert report["new"] == 1
    finally:
        (root / "lib" / "locked").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


def test_interrupted_scan_keeps_finished_batches(
    music: Path, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan_module, "BATCH", 2)

    class Interrupt(scan_module.NoProgress):
        def __init__(self) -> None:
            self.count = 0

        def advance(self, n: int = 1) -> None:
            self.count += n
            if self.count >= 4:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan([music], index, analyze=False, progress=Interrupt())
    assert index.stats()["ok"] == 4  # two batches of two landed
    assert index.stats()["missing"] == 0  # an unfinished scan marks nothing missing
    report = scan([music], index, analyze=False)
    assert report.unchanged == 4 and report.new == 1


def test_missing_root_is_an_error(tmp_path: Path, index: Index) -> None:
    with pytest.raises(LibraryError, match="no such folder"):
        scan([tmp_path / "nowhere"], index, analyze=False)


def test_index_schema_and_wal(index: Index) -> None:
    assert index.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_index_from_the_future_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(LibraryError, match="newer setlist"):
        Index.open(path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("shopping list\n" * 100)
    with pytest.raises(LibraryError, match="not a setlist library index"):
        Index.open(path)


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\x00" not in b))
def test_uri_round_trips_any_file_name(name: bytes) -> None:
    path = Path(os.fsdecode(b"/music/" + name))
    uri = path_to_uri(path)
    assert uri.isascii()
    assert os.fsencode(uri_to_path(uri)) == os.fsencode(path)


# -- queries ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("", ()),
        ("tide", (Term(None, "tide"),)),
        ('artist:"Lumen Drift" calm', (Term("artist", "Lumen Drift"), Term(None, "calm"))),
        ("id:12", (Term("id", "12"),)),
        ("TAG:grounding", (Term("tag", "grounding"),)),
        ("http://example", (Term(None, "http://example"),)),
    ],
)
def test_query_parsing(text: str, terms: tuple[Term, ...]) -> None:
    assert parse_query(text) == terms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("artst:Eno", "unknown query field 'artst:'; did you mean 'artist:'?"),
        ('artist:"Eno', "cannot read query"),
        ("id:abc", "id:abc is not a track number"),
        ("genre:", "needs a value"),
    ],
)
def test_bad_queries(text: str, message: str) -> None:
    with pytest.raises(LibraryError, match=message.replace("?", r"\?")):
        parse_query(text)


def test_search_fields(music: Path, index: Index) -> None:
    scan([music], index, analyze=False)
    assert len(index.search(parse_query("wave"))) == 5
    assert [e.track.title for e in index.search(parse_query("format:m4a"))] == ["Wave 3"]
    assert len(index.search(parse_query("tag:drone artist:lumen"))) == 5
    assert index.search(parse_query("artist:nobody")) == []


# -- annotations ------------------------------------------------------------------------
def test_annotations_export_and_import_across_rebuilt_index(music: Path, tmp_path: Path) -> None:
    with Index.open(tmp_path / "one.sqlite") as first:
        scan([music], first, analyze=False)
        ids = [e.track.id for e in first.search(parse_query("format:flac"))]
        first.annotate(ids, {"intensity": 0.15, "never": True, "tags": ("grounding",)})
        exported = export_annotations(first, tmp_path / "notes.yaml")
    assert exported == 1
    text = (tmp_path / "notes.yaml").read_text(encoding="utf-8")
    assert "grounding" in text and "fingerprint" in text
    with Index.open(tmp_path / "two.sqlite") as second:
        scan([music], second, analyze=False)
        result = import_annotations(second, tmp_path / "notes.yaml")
        assert result.applied == 1 and result.unmatched == ()
        entry = second.search(parse_query("format:flac"))[0]
        assert entry.annotation is not None
        assert entry.annotation.never and entry.annotation.tags == ("grounding",)
        assert len(second.candidates()) == 0  # nothing analysed yet, and never-play holds


def test_annotation_import_is_all_or_nothing(music: Path, index: Index, tmp_path: Path) -> None:
    scan([music], index, analyze=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ntracks:\n"
        "  - match: {title: Wave 0, artist: Lumen Drift}\n    intensity: 0.3\n"
        "  - match: {title: Wave 1, artist: Lumen Drift}\n    vocals: loud\n"
        "  - match: {title: Wave 2, artist: Lumen Drift}\n    intensty: 0.3\n",
        encoding="utf-8",
    )
    with pytest.raises(AnnotationsFileError) as info:
        import_annotations(index, bad)
    lines = info.value.lines()
    assert any(line.startswith(f"{bad}:5:5: tracks[1]: vocals 'loud'") for line in lines), lines
    assert any(line.startswith(f"{bad}:8:5: tracks[2].intensty: unknown key") for line in lines)
    assert index.stats()["annotated"] == 0


# -- CLI --------------------------------------------------------------------------------
def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_scan_list_show_stats(runner: CliRunner, music: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite")
    code, out, _ = run(runner, "library", "scan", str(music), "--db", db, "--no-analyze", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["new"] == 5 and data["library"]["ok"] == 5 and data["analysis_pending"] == 5
    code, out, _ = run(runner, "library", "list", "format:flac", "--db", db, "--json")
    rows = json.loads(out)
    assert [r["title"] for r in rows] == ["Wave 0"]
    code, out, _ = run(runner, "library", "show", str(rows[0]["id"]), "--db", db)
    assert code == 0 and "Lumen Drift" in out and "ambient, drone" in out
    code, out, _ = run(runner, "library", "stats", "--db", db, "--json")
    assert json.loads(out)["formats"]["flac"] == 1


def test_cli_annotate_guards_many_matches(runner: CliRunner, music: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite")
    run(runner, "library", "scan", str(music), "--db", db, "--no-analyze")
    code, _, err = run(runner, "library", "annotate", "wave", "--intensity", "0.3", "--db", db)
    assert code == 1
    assert err.splitlines()[0] == "setlist: 5 tracks match 'wave'; add --all to annotate them all"
    code, out, _ = run(runner, "library", "annotate", "wave", "--never", "--all", "--db", db)
    assert code == 0 and len(out.splitlines()) == 5
    code, out, _ = run(
        runner,
        "library",
        "annotate",
        "format:wav",
        "--vocals",
        "wordless",
        "--tag",
        "Grounding",
        "--db",
        db,
    )
    assert code == 0
    code, out, _ = run(runner, "library", "show", "format:wav", "--db", db, "--json")
    shown = json.loads(out)
    assert shown["vocals"] == "wordless" and shown["vocals_source"] == "annotation"
    assert shown["annotation"]["tags"] == ["grounding"] and shown["annotation"]["never"]


def test_cli_library_errors_are_one_line(runner: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite")
    code, _, err = run(runner, "library", "scan", str(tmp_path / "nope"), "--db", db)
    assert code == 1 and err.startswith("setlist: ") and "no such folder" in err
    code, _, err = run(runner, "library", "list", "artst:x", "--db", db)
    assert code == 1 and "did you mean 'artist:'?" in err
    code, _, err = run(runner, "library", "show", "999", "--db", db)
    assert code == 1 and "no track matches '999'" in err


def test_corrupt_corpus_gives_a_clear_report(tmp_path: Path, index: Index) -> None:
    """Every kind of bad file from the demo module's corpus, scanned and analysed for real."""
    from setlist.library.demo import CORRUPT_CORPUS_EXPECTED, write_corrupt_corpus

    corpus = write_corrupt_corpus(tmp_path / "bad")
    report = scan([tmp_path / "bad"], index, analyze=True)
    problems = {p.path: p.reason for p in [*report.failed, *report.analysis_failed]}
    shown = {os.fsdecode(os.fsencode(p)) for p in problems}
    for name, expected in CORRUPT_CORPUS_EXPECTED.items():
        path = corpus[name]
        listed = any(os.fsencode(path) == os.fsencode(p) for p in problems) or any(
            str(path) == p for p in shown
        )
        if expected == "failed":
            skipped = any(str(path) in p.path for p in report.skipped)
            assert listed or skipped, (name, problems, report.skipped)
        elif expected == "ignored" and name != "symlink_loop":
            assert not listed, name
    assert all(reason and "\n" not in reason for reason in problems.values())
    ok = index.search([Term("status", "ok")])
    assert [os.fsencode(uri_to_path(e.track.uri)) for e in ok if e.analyzed] == [
        os.fsencode(corpus["latin1_name"])
    ]
    assert index.candidates() is not None  # the index is still consistent and queryable
