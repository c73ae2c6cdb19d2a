"""The one atomic-write helper: the target is the old version or the new one, never half."""

import os
from pathlib import Path

import pytest

from course_utils.tooling import files


def test_atomic_file_replaces_the_target_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_file(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    files.write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_atomic_file_gives_the_permissions_open_would(tmp_path):
    umask = os.umask(0o027)
    try:
        files.write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640


def test_atomic_folder_keeps_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "tagger"
    with files.atomic_folder(target) as staging:
        (staging / "weights").write_text("v1")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_folder(target) as staging:
            (staging / "weights").write_text("v2, half")
            raise KeyboardInterrupt
    assert (target / "weights").read_text() == "v1"
    with files.atomic_folder(target) as staging:
        (staging / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tagger"]


def test_the_writers_never_change_the_process_umask(tmp_path, monkeypatch):
    """Re-probe: os.umask(0) is process-wide, so another thread could create world-writable files."""
    umask = os.umask(0o022)
    os.umask(umask)
    monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("the umask was changed"))
    with files.atomic_file(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    with files.atomic_folder(tmp_path / "folder") as staging:
        (staging / "b.txt").write_text("y")
    with files.atomic_folder(tmp_path / "folder") as staging:  # a swap over an existing folder
        (staging / "c.txt").write_text("z")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "folder"]


def test_atomic_folder_puts_the_old_folder_back_when_the_swap_fails(tmp_path, monkeypatch):
    """The rename that swaps the new folder in fails (a full or read-only disk): the old one comes back."""
    target = tmp_path / "model"
    with files.atomic_folder(target) as staging:
        (staging / "weights").write_text("old")
    real_replace = os.replace

    def replace(source, destination):
        if Path(source).name.endswith(".part"):  # the staging folder's rename into place
            raise OSError(28, "No space left on device")
        real_replace(source, destination)
    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        with files.atomic_folder(target) as staging:
            (staging / "weights").write_text("new")
    assert (target / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or .old folder left


def test_file_in_the_way_names_the_file_that_blocks_a_folder(tmp_path):
    assert files.file_in_the_way(tmp_path / "new" / "deeper") is None
    (tmp_path / "taken").write_text("")
    assert files.file_in_the_way(tmp_path / "taken") == tmp_path / "taken"
    assert files.file_in_the_way(tmp_path / "taken" / "a" / "b") == tmp_path / "taken"
