from pathlib import Path

import pytest

from ragserve.errors import DocsDirError, InvalidTenantError
from ragserve.ingest import extract, html_text
from ragserve.ingest.index import point_id
from ragserve.ingest.runtime import IngestRuntime
from ragserve.settings import Settings
from tests.ingest.indexed import point_set, sources
from tests.support.documents import write

LONG = "\n\n".join(
    f"Paragraph {i} explains how the warehouse robot charges its battery." * 3 for i in range(40)
)


def test_first_run_adds_every_document(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "# A\n\nAlpha facts.")
    write(docs, "sub/b.txt", "Beta facts.")
    report = runtime.reindexer().run(docs, "acme")
    assert (report.added, report.updated, report.deleted, report.unchanged) == (2, 0, 0, 0)
    assert report.chunks_embedded == 2
    assert sources(runtime.index, "acme") == {"a.md": 1, "sub/b.txt": 1}


def test_unchanged_documents_cost_only_a_hash_check(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    write(docs, "b.md", "Beta.")
    runtime.reindexer().run(docs, "acme")
    before = point_set(runtime.index, "acme")
    report = runtime.reindexer().run(docs, "acme")
    assert (report.added, report.updated, report.unchanged, report.chunks_embedded) == (0, 0, 2, 0)
    assert point_set(runtime.index, "acme") == before


def test_changed_document_is_replaced_and_others_untouched(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "Old alpha text.")
    write(docs, "b.md", "Beta.")
    runtime.reindexer().run(docs, "acme")
    write(docs, "a.md", "New alpha text.")
    report = runtime.reindexer().run(docs, "acme")
    assert (report.updated, report.unchanged, report.chunks_embedded) == (1, 1, 1)
    texts = {p["source"]: p["text"] for p in point_set(runtime.index, "acme").values()}
    assert texts == {"a.md": "New alpha text.", "b.md": "Beta."}


def test_a_document_that_shrinks_loses_its_old_tail(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "long.md", LONG)
    runtime.reindexer().run(docs, "acme")
    long_count = sources(runtime.index, "acme")["long.md"]
    assert long_count > 5
    write(docs, "long.md", "Now it is short.")
    runtime.reindexer().run(docs, "acme")
    points = point_set(runtime.index, "acme")
    assert [p["text"] for p in points.values()] == ["Now it is short."]
    assert set(points) == {point_id("acme", "long.md", 0)}


def test_deleted_document_has_its_chunks_removed(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "keep.md", "Keep me.")
    gone = write(docs, "gone.md", LONG)
    runtime.reindexer().run(docs, "acme")
    gone.unlink()
    report = runtime.reindexer().run(docs, "acme")
    assert (report.deleted, report.unchanged) == (1, 1)
    assert sources(runtime.index, "acme") == {"keep.md": 1}


def test_point_ids_are_uuid5_of_tenant_source_and_position(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", LONG)
    runtime.reindexer().run(docs, "acme")
    for pid, payload in point_set(runtime.index, "acme").items():
        assert pid == point_id("acme", payload["source"], payload["chunk_index"])


def test_bad_files_are_skipped_and_the_run_goes_on_without_losing_anything(
    runtime: IngestRuntime, docs: Path
) -> None:
    write(docs, "good.md", "Good text.")
    was_good = write(docs, "was-good.md", "Fine at first.")
    runtime.reindexer().run(docs, "acme")
    was_good.write_bytes(b"\xff\xfe broken \x00 bytes")
    (docs / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (docs / "empty.md").write_text("")
    (docs / "bin.txt").write_bytes(b"\x00\x01\x02")
    report = runtime.reindexer().run(docs, "acme")
    reasons = {s.path: s.reason for s in report.skipped}
    assert set(reasons) == {"was-good.md", "latin1.txt", "empty.md", "bin.txt"}
    assert reasons["latin1.txt"].startswith("not UTF-8")
    assert reasons["empty.md"] == "empty file"
    # The old version of the now-broken file stays searchable, and nothing else was touched.
    assert sources(runtime.index, "acme") == {"good.md": 1, "was-good.md": 1}


def test_changing_the_embedding_model_rebuilds(settings: Settings, embedder, docs: Path) -> None:
    write(docs, "a.md", "Alpha.")
    with IngestRuntime.open(settings, embedder) as rt:
        rt.reindexer().run(docs, "acme")
        old_fp = rt.spec.fingerprint
    with IngestRuntime.open(settings, embedder) as rt:
        rt.spec = rt.spec.__class__("another-model", embedder.dim, rt.chunker.params, rt.sparse.params)
        assert rt.spec.fingerprint != old_fp
        report = rt.reindexer().run(docs, "acme")
        assert (report.index, report.added) == ("switched", 1)
        assert rt.index.metadata()["embedding_model"] == "another-model"


def test_missing_docs_dir_is_a_clear_error(runtime: IngestRuntime, tmp_path: Path) -> None:
    with pytest.raises(DocsDirError):
        runtime.reindexer().run(tmp_path / "nowhere", "acme")


def test_invalid_tenant_is_refused(runtime: IngestRuntime, docs: Path) -> None:
    write(docs, "a.md", "A.")
    with pytest.raises(InvalidTenantError):
        runtime.reindexer().run(docs, "../Acme")


def _all_text(runtime: IngestRuntime, tenant: str) -> str:
    return "\n".join(p["text"] for p in point_set(runtime.index, tenant).values())


def test_symlinks_out_of_the_docs_folder_are_reported_and_their_text_never_indexed(
    runtime: IngestRuntime, tmp_path: Path, docs: Path
) -> None:
    globex = tmp_path / "globex-docs"
    write(globex, "secret.md", "Globex pays its roasters in saffron.")
    write(tmp_path / "etc", "passwd.txt", "root:x:0:0:root")
    write(docs, "own.md", "Acme robots charge overnight.")
    (docs / "passwd.txt").symlink_to(tmp_path / "etc" / "passwd.txt")
    (docs / "globex").symlink_to(globex, target_is_directory=True)
    report = runtime.reindexer().run(docs, "acme")
    reasons = {s["path"]: s["reason"] for s in report.to_json()["skipped"]}
    assert reasons == {
        "globex": "symlink to a folder outside the docs folder (symlinks are not followed)",
        "passwd.txt": "symlink to a file outside the docs folder (symlinks are not followed)",
    }
    assert sources(runtime.index, "acme") == {"own.md": 1}
    assert "saffron" not in _all_text(runtime, "acme")
    assert "root:x" not in _all_text(runtime, "acme")


def test_a_document_that_became_a_symlink_out_loses_its_old_version(
    runtime: IngestRuntime, tmp_path: Path, docs: Path
) -> None:
    write(docs, "keep.md", "Keep me.")
    doc = write(docs, "faq.md", "The old FAQ.")
    runtime.reindexer().run(docs, "acme")
    doc.unlink()
    doc.symlink_to(write(tmp_path, "elsewhere.md", "Somebody else's words."))
    report = runtime.reindexer().run(docs, "acme")
    assert [s.path for s in report.skipped] == ["faq.md"]
    assert report.deleted == 1
    assert sources(runtime.index, "acme") == {"keep.md": 1}


def test_deeply_nested_html_is_skipped_and_the_other_documents_are_indexed(
    runtime: IngestRuntime, docs: Path
) -> None:
    for depth in (600, 100_000):
        (docs / f"deep-{depth}.html").write_text("<div>" * depth + "x" + "</div>" * depth)
    write(docs, "page.html", "<h1>Returns</h1><p>Within 30 days.</p>")
    write(docs, "notes.md", "Plain notes.")
    report = runtime.reindexer().run(docs, "acme")
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons == {
        "deep-600.html": "HTML nested 600 elements deep (the limit is 512)",
        "deep-100000.html": "HTML nested 100000 elements deep (the limit is 512)",
    }
    assert sources(runtime.index, "acme") == {"page.html": 1, "notes.md": 1}


def test_a_parser_crash_on_one_document_skips_only_that_document(
    runtime: IngestRuntime, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = html_text.html_to_markdown

    def crashes_on_one(html: str) -> str:
        if "trigger" in html:
            raise AttributeError("'NoneType' object has no attribute 'name'")
        return real(html)

    monkeypatch.setattr(extract, "html_to_markdown", crashes_on_one)
    write(docs, "bad.html", "<p>trigger</p>")
    write(docs, "good.html", "<p>Fine.</p>")
    report = runtime.reindexer().run(docs, "acme")
    [skipped] = report.skipped
    assert skipped.path == "bad.html"
    assert skipped.reason.startswith("the html parser failed: AttributeError")
    assert sources(runtime.index, "acme") == {"good.html": 1}
