"""`ragserve tenants promote` as a user drives it: the refusals name their reason, and on a (fake) cluster it
prints what moved. No Qdrant server can run here, so the cluster is tests/ingest/fake_cluster.py's."""

import json

import pytest
from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.ingest.index import QdrantIndex
from tests.ingest.fake_cluster import FakeCluster
from tests.ingest.test_promotion import add_docs
from tests.ingest.test_sharding import CLUSTER, live_index

runner = CliRunner()


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """A cluster with custom sharding holding acme's 5 chunks, which the commands connect to."""
    fake = FakeCluster(transfer_polls=0)
    add_docs(live_index(fake), "acme", 5)
    fake.calls.clear()
    index = QdrantIndex(fake.as_client(), "ragserve", layout=CLUSTER)
    monkeypatch.setattr(QdrantIndex, "connect", classmethod(lambda cls, settings: index))
    monkeypatch.setenv("RAGSERVE_QDRANT_URL", "http://qdrant-1:6333")
    monkeypatch.setenv("RAGSERVE_QDRANT_CUSTOM_SHARDING", "true")
    return fake


def test_promote_with_custom_sharding_off_is_an_error_naming_the_setting() -> None:
    result = runner.invoke(app, ["tenants", "promote", "acme"])
    assert result.exit_code == 1
    assert "error: custom sharding is off" in result.stderr
    assert "RAGSERVE_QDRANT_CUSTOM_SHARDING=true" in result.stderr


def test_custom_sharding_on_the_embedded_store_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSERVE_QDRANT_CUSTOM_SHARDING", "true")
    result = runner.invoke(app, ["tenants", "promote", "acme"])
    assert result.exit_code == 1
    assert "RAGSERVE_QDRANT_CUSTOM_SHARDING needs a Qdrant server (RAGSERVE_QDRANT_URL)" in result.stderr


def test_promote_an_unknown_tenant_is_an_error_naming_it(cluster: FakeCluster) -> None:
    result = runner.invoke(app, ["tenants", "promote", "initech"])
    assert result.exit_code == 1
    assert "error: tenant 'initech' has no documents" in result.stderr
    assert "create_shard_key" not in cluster.names()


def test_promote_prints_what_moved(cluster: FakeCluster) -> None:
    result = runner.invoke(app, ["tenants", "promote", "acme"])
    assert result.exit_code == 0, result.output
    collection = cluster.aliases["ragserve"]
    assert result.stdout == (
        f"promoted acme: its 5 points are in its own shard of {collection}, and gone from the shared shard\n"
    )
    again = runner.invoke(app, ["tenants", "promote", "acme", "--json"])
    assert json.loads(again.stdout) == {
        "tenant": "acme",
        "collection": collection,
        "points": 5,
        "started": False,
    }
