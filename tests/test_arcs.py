"""Arc templates: every shipped arc validates, and every malformed one is located."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from setlist.arcfiles import Catalogue
from setlist.arcs import parse_arc
from setlist.cli import cli
from setlist.errors import ArcError
from setlist.models import Vocals
from setlist.yamlsrc import parse_yaml

from .conftest import ARCS

GOOD = """\
name: good
length: 1h
crossfade: 8s
vocals: none
tags:
  avoid: [harsh]
phases:
  - name: onset
    duration: 15m
    intensity: [0.2, 0.4]
    tags: {prefer: [drone], avoid: [percussion]}
  - name: peak
    duration: {min: 20m, max: 40m}
    intensity:
      - {at: 0m, value: 0.4}
      - {at: 50%, value: 0.7}
      - {value: 0.5}
    tempo: 60-90
  - name: integration
    duration: 15m
    intensity: 0.2
    vocals: allow
    volume: -6dB
"""


def write(tmp_path: Path, text: str, name: str = "arc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def validate(runner: CliRunner, *paths: Path) -> tuple[int, list[str]]:
    result = runner.invoke(cli, ["arcs", "validate", *map(str, paths)])
    return result.exit_code, result.output.splitlines()


# -- shipped templates ------------------------------------------------------------------
def test_at_least_eight_shipped_arcs(shipped_arcs: list[Path]) -> None:
    assert len(shipped_arcs) >= 8


@pytest.mark.parametrize("path", sorted(ARCS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_arc_validates_cleanly(path: Path) -> None:
    arc, problems = Catalogue.default().check(path)
    assert problems == []
    assert arc is not None
    assert arc.name == path.stem
    assert arc.description


@pytest.mark.parametrize("path", sorted(ARCS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_arc_has_sourced_header(path: Path) -> None:
    header = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header).lower()
    assert len(header) >= 3, "each template opens with a comment giving its timing basis"
    if "extends" not in path.read_text(encoding="utf-8"):
        assert any(w in text for w in ("source", "et al", "http", ".com", ".org", "pmc")), (
            "the header names its sources"
        )


def test_validate_all_shipped_exits_zero(runner: CliRunner, shipped_arcs: list[Path]) -> None:
    code, lines = validate(runner, *shipped_arcs)
    assert code == 0, lines
    assert len([line for line in lines if ": ok (" in line]) == len(shipped_arcs)


@pytest.mark.parametrize("path", sorted(ARCS.glob("*.yaml")), ids=lambda p: p.stem)
def test_show_json_durations_add_up(runner: CliRunner, path: Path) -> None:
    result = runner.invoke(cli, ["arcs", "show", path.stem, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    durations = [p["duration"] for p in data["phases"]]
    assert sum(durations) == pytest.approx(data["length"])
    assert data["phases"][0]["start"] == 0
    for before, after in zip(data["phases"], data["phases"][1:], strict=False):
        assert after["start"] == pytest.approx(before["end"])
    assert data["phases"][-1]["end"] == pytest.approx(data["length"])
    assert all(0.0 <= v <= 1.0 for _, v in data["curve"])


def test_route_templates_cover_the_clinic() -> None:
    names = {p.stem for p in ARCS.glob("*.yaml")}
    for wanted in (
        "ketamine-im-psychedelic",
        "ketamine-im-psycholytic",
        "ketamine-iv-infusion",
        "ketamine-lozenge",
        "esketamine-intranasal",
        "couples-side-by-side",
        "couples-shared-low-dose",
        "integration-practice",
    ):
        assert wanted in names
    couples = Catalogue.default().load("couples-side-by-side")
    assert "reconnection" in [p.name for p in couples.phases]
    esk = Catalogue.default().load("esketamine-intranasal")
    assert esk.length == pytest.approx(2 * 3600)


# -- parsing a good template ----------------------------------------------------------
def test_good_template_resolves(tmp_path: Path) -> None:
    arc = Catalogue.default().load(str(write(tmp_path, GOOD)))
    assert arc.length == 3600
    assert [p.name for p in arc.phases] == ["onset", "peak", "integration"]
    assert arc.phases[1].duration == 30 * 60  # flexible phase absorbs the length
    onset, peak, integration = arc.phases
    assert onset.vocals is Vocals.NONE and integration.vocals is Vocals.ALLOW
    assert onset.tags.avoid == ("harsh", "percussion")  # avoid lists add up
    assert onset.tags.prefer == ("drone",)
    assert peak.tags.avoid == ("harsh",)
    assert integration.volume_db == -6.0
    assert peak.tempo is not None and (peak.tempo.low, peak.tempo.high) == (60, 90)
    t = np.array([0, 15 * 60 - 1e-6, 30 * 60, 45 * 60 - 1e-6, 3600])
    assert np.allclose(arc.intensity_at(t), [0.2, 0.4, 0.7, 0.5, 0.2])


def test_durations_without_length_use_nominals(tmp_path: Path) -> None:
    arc = Catalogue.default().load(str(write(tmp_path, GOOD.replace("length: 1h\n", ""))))
    assert arc.length == 60 * 60  # 15 + midway(20, 40) + 15


def test_yaml_values_are_plain_data(tmp_path: Path) -> None:
    root = parse_yaml("a: no\nb: 1:15:00\nc: '3'\nd: 2024-01-01\n", "x.yaml")
    assert root.plain() == {"a": "no", "b": "1:15:00", "c": "3", "d": "2024-01-01"}


def test_clock_duration_not_read_as_sexagesimal(tmp_path: Path) -> None:
    text = GOOD.replace(
        "duration: 15m\n    intensity: [0.2", "duration: 15:00\n    intensity: [0.2"
    )
    arc = Catalogue.default().load(str(write(tmp_path, text)))
    assert arc.phases[0].duration == 900


# -- malformed templates: table of (yaml, exact line we expect) --------------------------
BAD = [
    pytest.param(
        GOOD.replace("length: 1h", "lenght: 1h"),
        "arc.yaml:2:1: lenght: unknown key (did you mean 'length'?)",
        id="typo-top-level-key",
    ),
    pytest.param(
        GOOD.replace("    tempo: 60-90", "    tempoo: 60-90"),
        "arc.yaml:18:5: phases[1].tempoo: unknown key (did you mean 'tempo'?)",
        id="typo-phase-key",
    ),
    pytest.param(
        GOOD.replace(
            "duration: 15m\n    intensity: [0.2", "duration: 15 minutes\n    intensity: [0.2"
        ),
        "arc.yaml:9:15: phases[0].duration: '15 minutes': expected a duration like "
        "'90s', '12m', '1h15m' or '1:15:00'",
        id="bad-duration",
    ),
    pytest.param(
        GOOD.replace("duration: 15m\n    intensity: 0.2", "duration: 15\n    intensity: 0.2"),
        "arc.yaml:20:15: phases[2].duration: 15: give a unit, e.g. '20m' or '90s'",
        id="duration-without-unit",
    ),
    pytest.param(
        GOOD.replace("{at: 50%, value: 0.7}", "{at: 50%, value: 1.7}"),
        "arc.yaml:16:26: phases[1].intensity[1].value: intensity 1.7 is outside 0-1",
        id="keyframe-out-of-range",
    ),
    pytest.param(
        GOOD.replace(
            "{at: 50%, value: 0.7}", "{at: 50%, value: 0.7}\n      - {at: 5m, value: 0.6}"
        ),
        "arc.yaml:15:7: phases[1].intensity: keyframe times must strictly increase",
        id="keyframes-not-monotone",
    ),
    pytest.param(
        GOOD.replace("intensity: 0.2\n", "intensity: -0.1\n"),
        "arc.yaml:21:16: phases[2].intensity: intensity -0.1 is outside 0-1",
        id="intensity-negative",
    ),
    pytest.param(
        "name: empty\ndescription: no phases here\n",
        "arc.yaml:1:1: phases: missing required key 'phases' (the list of phases)",
        id="missing-phases",
    ),
    pytest.param(
        "name: x\nphases: []\n",
        "arc.yaml:2:9: phases: expected a list of at least one phase",
        id="empty-phases",
    ),
    pytest.param(
        "name: x\nphases:\n  - name: onset\n    duration: 10m\n   intensity: 0.3\n",
        "arc.yaml:5:4: YAML syntax error: expected <block end>, but found "
        "'<block mapping start>' (while parsing a block collection)",
        id="yaml-syntax-error",
    ),
    pytest.param(
        GOOD.replace("length: 1h", "length: 3h"),
        "arc.yaml:2:9: length: the phases can last 50m-1h10m in all, not 3h "
        "(widen the flexible phases' bounds or change 'length')",
        id="durations-do-not-add-up-flexible",
    ),
    pytest.param(
        GOOD.replace("duration: {min: 20m, max: 40m}", "duration: 20m"),
        "arc.yaml:2:9: length: the phases can last 50m in all, not 1h (make a phase flexible "
        "with duration: {min: ..., max: ...}, or fix the sums)",
        id="durations-do-not-add-up-fixed",
    ),
    pytest.param(
        GOOD.replace("vocals: allow", "vocals: nope"),
        "arc.yaml:22:13: phases[2].vocals: 'nope' is not a vocals policy (expected none, "
        "allow or prefer; did you mean 'none'?)",
        id="bad-vocals",
    ),
    pytest.param(
        GOOD.replace("tempo: 60-90", "tempo: 90-60"),
        "arc.yaml:18:12: phases[1].tempo: tempo 90-60: the lower bound comes first",
        id="tempo-reversed",
    ),
    pytest.param(
        GOOD.replace("volume: -6dB", "volume: +3dB"),
        "arc.yaml:23:13: phases[2].volume: +3.0 dB would boost past the normalised level",
        id="volume-boost",
    ),
    pytest.param(
        GOOD.replace("crossfade: 8s", "crossfade: 10m"),
        "arc.yaml:3:12: phases[0].crossfade: a 10m crossfade leaves no room in a 15m phase "
        "(expected under half the phase)",
        id="crossfade-too-long",
    ),
    pytest.param(
        GOOD.replace("- name: integration", "- name: onset"),
        "arc.yaml:19:11: phases[2].name: phase name 'onset' is used twice (first at line 8)",
        id="duplicate-phase-name",
    ),
    pytest.param(
        GOOD.replace("name: good", "name: Good Arc"),
        "arc.yaml:1:7: name: 'Good Arc': expected lowercase words joined by '-', e.g. "
        "'ketamine-im-high'",
        id="bad-name",
    ),
    pytest.param(
        GOOD.replace("crossfade: 8s\n", "crossfade: 8s\ncrossfade: 9s\n"),
        "arc.yaml:4:1: crossfade: duplicate key (first at line 3)",
        id="duplicate-key",
    ),
    pytest.param(
        GOOD.replace("intensity: 0.2\n", "intensity: !!python/object/apply:os.system ['true']\n"),
        "arc.yaml:21:16: YAML tag '!!python/object/apply:os.system' is not allowed "
        "(arc files hold plain data only)",
        id="unsafe-yaml-tag",
    ),
    pytest.param(
        GOOD.replace("tags: {prefer: [drone], avoid: [percussion]}", "tags: {prefer: [harsh]}"),
        "arc.yaml:11:11: phases[0].tags: tags both preferred and avoided: harsh",
        id="tag-preferred-and-avoided",
    ),
    pytest.param(
        GOOD.replace("length: 1h", "length: 1h\ndose_at: 2h"),
        "arc.yaml:3:10: dose_at: 2h is after the session ends (1h)",
        id="dose-after-end",
    ),
    pytest.param(
        "- just\n- a list\n",
        "arc.yaml:1:1: expected a mapping with keys: name, description, extends, length, "
        "dose_at, tolerance, crossfade, volume, vocals, tempo, tags, phases",
        id="not-a-mapping",
    ),
    pytest.param("", "arc.yaml:1:1: the file is empty", id="empty-file"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_malformed_template_reports_location(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, text)
    code, lines = validate(runner, Path(path.name))
    assert code == 2
    assert expected in lines, "\n".join(lines)


def test_every_error_line_is_located(runner: CliRunner, tmp_path: Path) -> None:
    text = GOOD.replace("length: 1h", "lenght: 1h").replace("vocals: allow", "vocals: x")
    code, lines = validate(runner, write(tmp_path, text))
    assert code == 2
    assert len(lines) == 2
    for line in lines:
        origin, line_no, col, _rest = line.split(":", 3)
        assert origin.endswith("arc.yaml") and int(line_no) > 0 and int(col) > 0


def test_warning_alone_keeps_exit_zero(runner: CliRunner, tmp_path: Path) -> None:
    code, lines = validate(runner, write(tmp_path, GOOD.replace("- name: onset", "- name: onsett")))
    assert code == 0
    assert any("warning: phases[0].name: custom phase name 'onsett'" in line for line in lines)


def test_mixed_valid_and_invalid_files(runner: CliRunner, tmp_path: Path) -> None:
    good = write(tmp_path, GOOD, "good.yaml")
    bad = write(tmp_path, "name: x\n", "bad.yaml")
    code, lines = validate(runner, good, bad)
    assert code == 2
    assert any(line.endswith("good.yaml: ok (good, 1h, 3 phases)") for line in lines)
    assert any("bad.yaml:1:1: phases: missing required key" in line for line in lines)


def test_unreadable_and_missing_files(runner: CliRunner, tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: x\ndescription: caf\xe9\n")
    code, lines = validate(runner, latin, tmp_path / "missing.yaml", tmp_path)
    assert code == 2
    assert any("latin.yaml:2:1: not UTF-8 text" in line for line in lines)
    assert any("missing.yaml:1:1: " in line and "no such file" in line for line in lines)
    assert any("is a folder" in line for line in lines)


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["name: x", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    with pytest.raises(ArcError, match="more than"):
        parse_yaml("\n".join(lines), "bomb.yaml")


# -- extends --------------------------------------------------------------------------
def test_extends_by_name_and_path(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "base.yaml")
    child = write(
        tmp_path,
        "name: child\nextends: base\nlength: 70m\ncrossfade: 5s\n",
        "child.yaml",
    )
    arc = Catalogue.default().load(str(child))
    assert arc.name == "child" and arc.length == 70 * 60
    assert arc.phases[1].duration == 40 * 60
    assert all(p.crossfade == 5 for p in arc.phases)
    by_path = write(tmp_path, "name: c2\nextends: ./base.yaml\n", "c2.yaml")
    assert Catalogue.default().load(str(by_path)).length == 3600


def test_extends_shipped_arc_by_name(tmp_path: Path) -> None:
    child = write(tmp_path, "name: mine\nextends: ketamine-im-psychedelic\nvolume: -6dB\n")
    arc = Catalogue.default().load(str(child))
    parent = Catalogue.default().load("ketamine-im-psychedelic")
    assert [p.name for p in arc.phases] == [p.name for p in parent.phases]
    assert arc.phases[0].volume_db == -6.0


def test_extends_errors_point_into_the_right_file(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("vocals: allow", "vocals: maybe"), "base.yaml")
    child = write(tmp_path, "name: child\nextends: base\n", "child.yaml")
    code, lines = validate(runner, child)
    assert code == 2
    assert any("base.yaml:22:13: phases[2].vocals: 'maybe'" in line for line in lines)


def test_extends_cycle(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "name: a\nextends: b\n", "a.yaml")
    write(tmp_path, "name: b\nextends: ./a.yaml\n", "b.yaml")
    code, lines = validate(runner, Path("a.yaml"))
    assert code == 2
    assert lines == ["b.yaml:2:10: extends: cycle: a.yaml -> b.yaml -> a.yaml"]


def test_extends_unknown_parent(runner: CliRunner, tmp_path: Path) -> None:
    child = write(tmp_path, "name: c\nextends: ketamine-im-psychedelc\n")
    code, lines = validate(runner, child)
    assert code == 2
    assert lines[0].endswith(
        "arc.yaml:2:10: extends: unknown arc 'ketamine-im-psychedelc'; "
        "did you mean 'ketamine-im-psychedelic'?"
    )


def test_parse_arc_without_resolver_refuses_extends() -> None:
    root = parse_yaml("name: c\nextends: base\n", "c.yaml")
    with pytest.raises(ArcError, match="cannot be resolved"):
        parse_arc(root)


def test_search_path_env_shadows_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        GOOD.replace("name: good", "name: ketamine-im-psychedelic"),
        "ketamine-im-psychedelic.yaml",
    )
    monkeypatch.setenv("SETLIST_ARCS", str(tmp_path))
    arc = Catalogue.default().load("ketamine-im-psychedelic")
    assert arc.length == 3600
    assert arc.origin.endswith("ketamine-im-psychedelic.yaml")
