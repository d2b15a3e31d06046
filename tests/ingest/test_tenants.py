from pathlib import Path

from ragserve.ingest.runtime import IngestRuntime
from tests.ingest.indexed import sources
from tests.support.documents import write


def _two_tenants(runtime: IngestRuntime, root: Path) -> None:
    # Same file names, same topics, different facts.
    write(root / "acme", "warranty.md", "# Warranty\n\nAcme robots carry a 3-year warranty.")
    write(root / "acme", "support.md", "# Support\n\nAcme support is open 7:00 to 19:00.")
    write(root / "globex", "warranty.md", "# Warranty\n\nGlobex grinders carry a 1-year warranty.")
    write(root / "globex", "support.md", "# Support\n\nGlobex support answers email within a day.")
    runtime.reindexer().run(root / "acme", "acme")
    runtime.reindexer().run(root / "globex", "globex")


def test_searches_never_cross_tenants(runtime: IngestRuntime, tmp_path: Path) -> None:
    _two_tenants(runtime, tmp_path)
    retriever = runtime.retriever()
    for tenant, other in (("acme", "Globex"), ("globex", "Acme")):
        for mode in ("hybrid", "dense", "bm25"):
            hits = retriever.search(tenant, f"{other} warranty years", k=10, mode=mode)
            assert hits, (tenant, mode)
            assert all(other not in hit.text for hit in hits), (tenant, mode)


def test_an_unknown_tenant_finds_nothing(runtime: IngestRuntime, tmp_path: Path) -> None:
    _two_tenants(runtime, tmp_path)
    assert runtime.retriever().search("initech", "warranty") == []


def test_reindexing_one_tenant_never_touches_another(runtime: IngestRuntime, tmp_path: Path) -> None:
    _two_tenants(runtime, tmp_path)
    (tmp_path / "acme" / "warranty.md").unlink()
    report = runtime.reindexer().run(tmp_path / "acme", "acme")
    assert report.deleted == 1
    assert sources(runtime.index, "acme") == {"support.md": 1}
    assert sources(runtime.index, "globex") == {"warranty.md": 1, "support.md": 1}


def test_hybrid_search_finds_the_fact(runtime: IngestRuntime, tmp_path: Path) -> None:
    _two_tenants(runtime, tmp_path)
    [top, *_] = runtime.retriever().search("acme", "how many years of warranty on robots?", k=3)
    assert (top.source, top.heading) == ("warranty.md", "Warranty")
    assert "3-year" in top.text
