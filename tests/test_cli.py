"""The CLI: help and README coverage, the error boundary, and the arc commands' output."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from setlist import __version__
from setlist.arcfiles import Catalogue
from setlist.cli import cli
from setlist.cliutil import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED
from setlist.errors import ArcError

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def all_commands(group: click.Group, prefix: str = "setlist") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix} {name}"
        out.append((full, command))
        if isinstance(command, click.Group):
            out.extend(all_commands(command, full))
    return out


COMMANDS = all_commands(cli)


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_and_is_documented(name: str, command: click.Command) -> None:
    assert command.help and command.help.strip(), f"{name} has no help text"
    assert (command.short_help or command.help.split("\n")[0]).strip()
    assert f"`{name}" in README, f"{name} is missing from the README"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help text"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_help_runs(runner: CliRunner, name: str, command: click.Command) -> None:
    result = runner.invoke(cli, [*name.split()[1:], "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def readme_blocks() -> list[list[str]]:
    """The `$ setlist ...` lines of each README console block (run in order)."""
    blocks = re.findall(r"```console\n(.*?)```", README, flags=re.S)
    out = []
    for block in blocks:
        lines = [line[2:].strip() for line in block.splitlines() if line.startswith("$ setlist ")]
        if lines:
            out.append(lines)
    return out


def test_readme_shows_the_two_setup_commands() -> None:
    setup = re.search(r"## Set-up.*?```console\n(.*?)```", README, flags=re.S)
    assert setup is not None
    commands = [line.split("#")[0].strip() for line in setup.group(1).splitlines() if line]
    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: b[0])
def test_readme_commands_run(
    runner: CliRunner, block: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every README command runs, in order, with /tmp/ redirected to a private folder."""
    monkeypatch.chdir(REPO)
    for line in block:
        args: list[str] = []
        for word in shlex.split(line)[1:]:
            if "*" in word:
                args.extend(sorted(str(p) for p in Path().glob(word)))
            else:
                args.append(word.replace("/tmp/", f"{tmp_path}/"))
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, f"{line}\n{result.output}"


def test_readme_validate_example_is_real(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's sample error lines are what the validator prints for that mistake."""
    monkeypatch.chdir(tmp_path)
    shown = re.search(r"\$ setlist arcs validate my-arc.yaml\n(.*?)```", README, flags=re.S)
    assert shown is not None
    for line in shown.group(1).strip().splitlines():
        assert re.match(r"my-arc\.yaml:\d+:\d+: ", line), line


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"setlist {__version__}"


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "setlist", "arcs", "list", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    names = {row["name"] for row in json.loads(done.stdout)}
    assert "ketamine-im-psychedelic" in names


def test_arcs_list_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["arcs", "list", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert len(rows) >= 8
    for row in rows:
        assert row["errors"] == []
        assert row["length"] > 0 and row["phases"]


def test_arcs_list_marks_invalid_templates(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\n", encoding="utf-8")
    monkeypatch.setenv("SETLIST_ARCS", str(tmp_path))
    result = runner.invoke(cli, ["arcs", "list"])
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("broken"))
    assert "INVALID" in line and "missing required key 'phases'" in line


def test_arcs_show_text(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["arcs", "show", "ketamine-im-psychedelic", "--start", "14:30"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dose at 14:35" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    assert rows["onset"][1:3] == ["14:35", "14:50"]
    assert rows["integration"][2] == "16:30"
    assert "eyeshades and headphones on" in out  # the therapist's notes are shown
    assert "┬" in out or "+" in out  # the chart marks the phase boundaries


def test_arcs_show_chart_tracks_the_curve(runner: CliRunner) -> None:
    """The tallest chart column sits where the arc's curve peaks."""
    arc = Catalogue.default().load("ketamine-im-psychedelic")
    result = runner.invoke(cli, ["arcs", "show", "ketamine-im-psychedelic", "--width", "60"])
    chart = [line[6:] for line in result.output.splitlines() if line[5:6] == "│"]
    heights = [sum(1 for row in chart if col < len(row) and row[col] == "█") for col in range(60)]
    peak_col = max(range(60), key=lambda c: heights[c])
    import numpy as np

    t = (np.arange(60) + 0.5) * arc.length / 60
    values = arc.intensity_at(t)
    assert values[peak_col] >= values.max() - 1 / 8


def test_arcs_show_ascii_fallback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "setlist", "arcs", "show", "ketamine-lozenge"],
        capture_output=True,
        check=False,
        env={"PYTHONIOENCODING": "ascii", "PATH": "/usr/bin"},
    )
    assert done.returncode == 0, done.stderr
    done.stdout.decode("ascii")  # nothing outside ASCII
    assert b"#" in done.stdout


def test_bad_start_time_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["arcs", "show", "ketamine-lozenge", "--start", "25:99"])
    assert result.exit_code == 2
    assert "not a time like 14:30" in result.output


def test_unknown_arc_is_one_line_with_hint(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["arcs", "show", "ketamine-lozenj"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        "setlist: unknown arc 'ketamine-lozenj'; did you mean 'ketamine-lozenge'?",
        "  hint: 'setlist arcs list' shows the arcs by name",
    ]
    assert "Traceback" not in result.output


def test_debug_shows_the_exception(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--debug", "arcs", "show", "nope"])
    assert isinstance(result.exception, ArcError)


def test_no_traceback_from_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nphases: [\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "setlist", "arcs", "show", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"setlist: {bad}:3:1: YAML syntax error")
    debug = subprocess.run(
        [sys.executable, "-m", "setlist", "--debug", "arcs", "show", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" in debug.stderr


def test_ctrl_c_ends_quietly(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Catalogue, ref: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Catalogue, "load", interrupted)
    result = runner.invoke(cli, ["arcs", "show", "ketamine-lozenge"])
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stderr == "setlist: interrupted\n"


def test_closed_pipe_ends_quietly() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "setlist", "arcs", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader goes away before a byte is written
        err = proc.stderr.read()
        assert proc.wait(timeout=30) == EXIT_BROKEN_PIPE
    assert err == b""


def test_schema_output_file_is_written_atomically(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "out" / "schema.json"
    result = runner.invoke(cli, ["arcs", "schema", "-o", str(target)])
    assert result.exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["title"] == "setlist arc template"
    assert [p.name for p in target.parent.iterdir()] == ["schema.json"]  # no temp files left
