"""Atomic writes: whole files or nothing, with ordinary permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from setlist.fsutil import atomic_write_bytes, atomic_write_text


def test_replaces_whole_and_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "plan.m3u8"
    atomic_write_text(target, "first version, longer than the second\n")
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "second\n")
    finally:
        os.umask(old)
    assert target.read_text(encoding="utf-8") == "second\n"
    assert target.stat().st_mode & 0o777 == 0o644
    atomic_write_bytes(tmp_path / "token", b"secret", mode=0o600)
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deep", "plan.m3u8", "token"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "plan.setlist.yaml"
    target.write_text("the old plan\n", encoding="utf-8")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="the disk is full"):
        atomic_write_text(target, "a new plan that never lands\n")
    assert target.read_text(encoding="utf-8") == "the old plan\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.setlist.yaml"]
