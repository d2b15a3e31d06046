import hashlib
from pathlib import Path

import pytest

from ragserve.errors import DocsDirError
from ragserve.ingest.sources import scan_folder
from tests.conftest import write


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
    assert reasons["dangling.md"].startswith("unreadable")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DocsDirError, match="no such folder"):
        scan_folder(tmp_path / "nope", 1000)


def test_empty_folder_is_a_clear_error(docs: Path) -> None:
    with pytest.raises(DocsDirError, match="holds no documents"):
        scan_folder(docs, 1000)


def test_a_file_is_not_a_docs_folder(tmp_path: Path) -> None:
    with pytest.raises(DocsDirError, match="not a folder"):
        scan_folder(write(tmp_path, "f.md", "x"), 1000)
