import hashlib
import os
import shutil
from pathlib import Path

import pytest

from ragserve.errors import DocsDirError, SkipDocument
from ragserve.ingest.sources import read_source, scan_folder
from tests.support.documents import write


def test_document_id_is_relative_posix_path_and_hash_is_sha256(docs: Path) -> None:
    write(docs, "guides/setup.md", "# Setup\n\nPlug it in.")
    result = scan_folder(docs, max_bytes=1000)
    [source] = result.files
    assert source.doc_id == "guides/setup.md"
    assert source.format == "markdown"
    assert source.sha256 == hashlib.sha256(b"# Setup\n\nPlug it in.").hexdigest()


def test_hidden_files_and_folders_are_ignored(docs: Path) -> None:
    write(docs, "a.txt", "visible")
    write(docs, ".git/config", "hidden")
    write(docs, ".draft.md", "hidden")
    assert [f.doc_id for f in scan_folder(docs, 1000).files] == ["a.txt"]


def test_unsupported_oversized_empty_and_unreadable_files_are_reported(docs: Path) -> None:
    write(docs, "ok.md", "fine")
    write(docs, "image.png", "not really")
    write(docs, "big.txt", "x" * 200)
    write(docs, "blank.txt", "  \n")
    (docs / "dangling.md").symlink_to(docs / "missing.md")
    result = scan_folder(docs, max_bytes=100)
    reasons = {s.path: s.reason for s in result.skipped}
    assert [f.doc_id for f in result.files] == ["ok.md"]
    assert reasons["image.png"] == "unsupported file type '.png'"
    assert reasons["big.txt"].startswith("over the size cap")
    assert reasons["blank.txt"] == "empty file"
    assert reasons["dangling.md"].startswith("broken symlink")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DocsDirError, match="no such folder"):
        scan_folder(tmp_path / "nope", 1000)


def test_empty_folder_is_a_clear_error(docs: Path) -> None:
    with pytest.raises(DocsDirError, match="holds no documents"):
        scan_folder(docs, 1000)


def test_a_file_is_not_a_docs_folder(tmp_path: Path) -> None:
    with pytest.raises(DocsDirError, match="not a folder"):
        scan_folder(write(tmp_path, "f.md", "x"), 1000)


def test_symlinks_to_a_file_or_folder_outside_are_skipped_and_never_read(tmp_path: Path, docs: Path) -> None:
    write(docs, "own.md", "Our own text.")
    secret = write(tmp_path / "elsewhere", "secret.md", "Not for this tenant.")
    other_tenant = secret.parent
    (docs / "leak.md").symlink_to(secret)
    (docs / "globex").symlink_to(other_tenant, target_is_directory=True)
    result = scan_folder(docs, 1000)
    reasons = {s.path: s.reason for s in result.skipped}
    assert [f.doc_id for f in result.files] == ["own.md"]
    assert reasons == {
        "leak.md": "symlink to a file outside the docs folder (symlinks are not followed)",
        "globex": "symlink to a folder outside the docs folder (symlinks are not followed)",
    }
    assert not any(s.keeps_old_version for s in result.skipped)


def test_symlinks_within_the_folder_and_symlink_loops_are_skipped_without_hanging(docs: Path) -> None:
    write(docs, "guides/setup.md", "Plug it in.")
    (docs / "setup-link.md").symlink_to(docs / "guides" / "setup.md")
    (docs / "guides" / "up").symlink_to(docs, target_is_directory=True)  # a loop for a walker that follows
    (docs / "a.md").symlink_to(docs / "b.md")
    (docs / "b.md").symlink_to(docs / "a.md")
    result = scan_folder(docs, 1000)
    reasons = {s.path: s.reason for s in result.skipped}
    assert [f.doc_id for f in result.files] == ["guides/setup.md"]
    assert reasons["setup-link.md"].startswith("symlink within the docs folder")
    assert reasons["guides/up"].startswith("symlink within the docs folder")
    assert reasons["a.md"] == reasons["b.md"] == "broken symlink or symlink loop (symlinks are not followed)"


def test_a_folder_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path: Path, docs: Path) -> None:
    write(docs, "guides/setup.md", "Plug it in.")
    [source] = scan_folder(docs, 1000).files
    write(tmp_path / "outside", "setup.md", "Text from outside.")
    shutil.rmtree(docs / "guides")
    (docs / "guides").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(SkipDocument, match="symlinks are not followed"):
        read_source(source, 1000)


def test_a_file_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path: Path, docs: Path) -> None:
    doc = write(docs, "setup.md", "Plug it in.")
    [source] = scan_folder(docs, 1000).files
    doc.unlink()
    doc.symlink_to(write(tmp_path, "outside.md", "Text from outside."))
    with pytest.raises(SkipDocument, match="symlinks are not followed"):
        read_source(source, 1000)


def test_a_named_pipe_is_skipped_without_blocking(docs: Path) -> None:
    write(docs, "ok.md", "fine")
    os.mkfifo(docs / "pipe.md")
    reasons = {s.path: s.reason for s in scan_folder(docs, 1000).skipped}
    assert reasons == {"pipe.md": "not a regular file"}
