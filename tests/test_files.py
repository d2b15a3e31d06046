import errno
import os
import stat
from pathlib import Path

import pytest

from ragserve import files
from ragserve.files import move_folder_durably, write_atomically


def test_write_atomically_replaces_the_content_and_leaves_no_scratch_file(tmp_path: Path) -> None:
    path = tmp_path / "assignments.json"
    write_atomically(path, "old\n")
    write_atomically(path, "né\n")
    write_atomically(tmp_path / "blob", b"\x00\x01")
    assert path.read_bytes() == "né\n".encode()
    assert (tmp_path / "blob").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assignments.json", "blob"]


def test_a_failure_mid_write_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "card.json"
    path.write_text("the old card")

    def disk_error(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", disk_error)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomically(path, "the new card")
    assert path.read_text() == "the old card"
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_the_bytes_reach_the_disk_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomically(tmp_path / "service.json", "{}")
    assert events == ["fsync file", "replace", "fsync folder"]


def test_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "assignments.json"
    path.write_text("{}")
    path.chmod(0o600)
    write_atomically(path, '{"acme": ""}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_folder_is_moved_into_place_with_its_files_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = tmp_path / "staging"
    (staged / "sub").mkdir(parents=True)
    (staged / "weights.bin").write_bytes(b"w")
    (staged / "sub" / "config.json").write_text("{}")
    synced: list[str] = []
    real_sync = files._sync

    def sync(path: Path, flags: int) -> None:
        synced.append(path.name)
        real_sync(path, flags)

    monkeypatch.setattr(files, "_sync", sync)
    move_folder_durably(staged, tmp_path / "v1")
    assert (tmp_path / "v1" / "sub" / "config.json").read_text() == "{}"
    assert not staged.exists()
    assert {"weights.bin", "config.json", "staging", "sub"} <= set(synced)
    assert synced[-1] == tmp_path.name  # the parent, after the rename


def test_moving_onto_a_folder_that_is_taken_fails_and_keeps_both(tmp_path: Path) -> None:
    staged = tmp_path / "staging"
    staged.mkdir()
    (staged / "a").write_text("new")
    taken = tmp_path / "v1"
    taken.mkdir()
    (taken / "a").write_text("old")
    with pytest.raises(OSError):
        move_folder_durably(staged, taken)
    assert (taken / "a").read_text() == "old"
    assert (staged / "a").read_text() == "new"
