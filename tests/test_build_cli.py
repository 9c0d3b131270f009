"""`setlist build` and `setlist show` end to end: a real SQLite index, real output files.

The index holds synthetic analysed tracks (stored through the same API a scan uses), so
planning is exercised at library scale without synthesising hours of audio.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from setlist.cli import cli
from setlist.library.index import Index, ScannedFile
from setlist.library.scan import tags_to_values
from setlist.testing import make_library


def fill_index(path: Path, n: int = 400, seed: int = 0, **kwargs: float) -> list:
    tracks = make_library(n, seed, **kwargs)
    with Index.open(path) as index:
        index.store_scanned(
            [
                ScannedFile(
                    uri=t.uri,
                    display_path=f"/music/{t.id}.flac",
                    size=1000 + t.id,
                    mtime_ns=t.id,
                    fingerprint=f"fp{t.id}",
                    values=tags_to_values(
                        {
                            "_format": "flac",
                            "_length": t.duration,
                            "title": [t.title],
                            "artist": [t.artist],
                            "genre": list(t.tags),
                        },
                        f"/music/{t.id}.flac",
                    ),
                )
                for t in tracks
            ]
        )
        rows = {e.track.uri: e.track.id for e in index.search([])}
        for t in tracks:
            assert t.features is not None
            index.store_features(rows[t.uri], t.features)
    return tracks


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lib") / "library.sqlite"
    fill_index(path)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_build_writes_every_output_and_prints_the_summary(db: Path, tmp_path: Path) -> None:
    code, out, err = run(
        "build", "ketamine-im-psychedelic", "--db", str(db), "--seed", "4",
        "--dir", str(tmp_path), "--out", "monday",
    )  # fmt: skip
    assert code == 0, err
    for suffix in (".setlist.yaml", ".m3u8", ".xspf", ".html", ".svg"):
        assert (tmp_path / f"monday{suffix}").is_file(), suffix
    assert "fit error (RMSE)" in out and "worst transition" in out
    timing = re.search(r"timing error +([\d.]+)s", out)
    assert timing is not None and float(timing.group(1)) <= 1.0
    assert "violations         none" in out
    assert "(seed 4)" in out
    # show reloads the same plan
    code, shown, err = run("show", str(tmp_path / "monday.setlist.yaml"))
    assert code == 0, err
    assert shown.startswith(
        ("ketamine-im-psychedelic: 2:00:00", "ketamine-im-psychedelic: 1:59:59")
    )
    body = [line for line in out.splitlines() if line.startswith(("--", "0:", "1:"))]
    assert body == shown.splitlines()[1:]


def test_build_json_and_the_same_seed_rebuilds(db: Path, tmp_path: Path) -> None:
    a = run("build", "ketamine-lozenge", "--db", str(db), "--seed", "9", "--json", "--dry-run")
    b = run("build", "ketamine-lozenge", "--db", str(db), "--seed", "9", "--json", "--dry-run")
    assert a[0] == b[0] == 0, a[2]
    first, second = json.loads(a[1]), json.loads(b[1])
    assert first["files"] == []
    key = [(e["track"]["id"], e["start"]) for e in first["entries"]]
    assert key == [(e["track"]["id"], e["start"]) for e in second["entries"]]
    assert first["seed"] == 9 and first["library"]


def test_default_names_never_overwrite(db: Path, tmp_path: Path) -> None:
    args = ["build", "integration-practice", "--db", str(db), "--dir", str(tmp_path)]
    assert run(*args, "--format", "m3u8")[0] == 0
    assert run(*args, "--format", "m3u8")[0] == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    first = next(n for n in names if not n.endswith("-2.m3u8"))
    assert first.startswith("integration-practice-20")
    assert names == sorted([first, first.replace(".m3u8", "-2.m3u8")])


def test_dry_run_writes_nothing(db: Path, tmp_path: Path) -> None:
    code, out, _ = run("build", "integration-practice", "--db", str(db), "--dir", str(tmp_path),
                       "--dry-run", "--explain")  # fmt: skip
    assert code == 0
    assert "why: cost" in out
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_minutes_stretch_the_arc(db: Path) -> None:
    code, out, err = run("build", "ketamine-im-psychedelic", "--db", str(db), "--minutes", "135",
                         "--dry-run")  # fmt: skip
    assert code == 0, err
    assert "in 2:15:00" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ketamine-im-psychedelc"], 2, "unknown arc 'ketamine-im-psychedelc'; did you mean"),
        (["ketamine-im-psychedelic", "--minutes", "20"], 2, "the phases can last"),
    ],
)
def test_bad_requests_are_one_line(db: Path, args: list[str], code: int, message: str) -> None:
    exit_code, _, err = run("build", *args, "--db", str(db), "--dry-run")
    assert exit_code == code
    assert err.startswith("setlist: ") and message in err
    assert "Traceback" not in err


def test_cannot_fill_exits_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "lyrics.sqlite"
    fill_index(db, n=80, lyrics=1.0)
    out = tmp_path / "out"
    code, _, err = run("build", "ketamine-im-psychedelic", "--db", str(db), "--dir", str(out))
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith("setlist: cannot fill phase '") and "'vocals: none'" in lines[0]
    assert lines[1].startswith("  hint: ")
    assert not out.exists()


def test_empty_library(tmp_path: Path) -> None:
    code, _, err = run("build", "integration-practice", "--db", str(tmp_path / "empty.sqlite"))
    assert code == 1
    assert "no analysed tracks" in err and "setlist library scan" in err


def test_profiles_veto_for_couples(db: Path, tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("vetoes:\n  artists: ['Artist 0001', 'Artist 0002']\n", encoding="utf-8")
    b.write_text("vetoes:\n  genres: [drone]\n", encoding="utf-8")
    code, out, err = run("build", "couples-side-by-side", "--db", str(db), "--json", "--dry-run",
                         "--profile", str(a), "--profile", str(b))  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    artists = {e["track"]["artist"] for e in plan["entries"]}
    tags = {t for e in plan["entries"] for t in e["track"]["tags"]}
    assert not artists & {"Artist 0001", "Artist 0002"}
    assert "drone" not in tags
    assert plan["profiles"] == ["a", "b"]


def test_show_reports_a_malformed_file_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.setlist.yaml"
    bad.write_text("version: 1\narc: [not, a, mapping]\n", encoding="utf-8")
    code, _, err = run("show", str(bad))
    assert code == 2
    assert err.startswith(f"setlist: {bad}:")
    code, _, err = run("show", str(tmp_path / "missing.setlist.yaml"))
    assert code != 0 and err.startswith("setlist: ") and "Traceback" not in err
