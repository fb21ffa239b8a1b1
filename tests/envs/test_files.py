"""Atomic writes under a full disk: the previous file stays whole, the error names the file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from envs.storage import files
from envs.storage.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    disk_usage_line,
    is_no_space,
    no_space,
)


def _full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["write", "rename"])
def test_a_full_disk_leaves_the_previous_file_whole(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "agent.zip"
    atomic_write_bytes(dest, b"previous artefact" * 100)
    before = dest.read_bytes()
    if where == "rename":
        monkeypatch.setattr(files.os, "replace", _full_disk)
    else:
        original = Path.write_bytes

        def half_then_full(self: Path, data: bytes) -> int:
            original(self, data[: len(data) // 2])  # what a disk fills up in the middle of
            _full_disk()
            return 0

        monkeypatch.setattr(Path, "write_bytes", half_then_full)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(dest, b"new artefact" * 1000)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(dest)
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.zip"]  # no temporary left
    monkeypatch.undo()
    atomic_write_bytes(dest, b"new artefact")  # space again: the rerun completes
    assert dest.read_bytes() == b"new artefact"


def test_a_quota_and_hdf5s_message_count_as_a_full_disk(tmp_path: Path) -> None:
    assert is_no_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_no_space(OSError("Can't write data (file write failed: errno = 28, error message)"))
    assert not is_no_space(OSError(errno.EACCES, "Permission denied"))
    assert not is_no_space(ValueError("No space left on device"))
    e = no_space(tmp_path / "x.json", OSError(errno.EDQUOT, "quota"))
    assert e.errno == errno.EDQUOT and e.filename == str(tmp_path / "x.json")


def test_other_errors_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(KeyError), atomic_path(tmp_path / "a.txt"):
        raise KeyError("x")
    assert list(tmp_path.iterdir()) == []


def test_disk_usage_line_names_the_mount_and_the_free_space(tmp_path: Path) -> None:
    line = disk_usage_line(tmp_path / "not" / "yet" / "there.json")
    assert line.startswith("disk /") and " free of " in line
    atomic_write_json(tmp_path / "a.json", {"a": 1})
    assert disk_usage_line(tmp_path / "a.json") == disk_usage_line(tmp_path)
