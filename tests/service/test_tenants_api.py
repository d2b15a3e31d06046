"""Tenants and keys over the admin API, live, on the session's real vLLM: a tenant created over HTTP answers
at once while another keeps answering, keys rotate under load with none of the new key's requests failing,
a changed setting counts from the next request, and a deleted tenant leaves nothing behind."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.blue_green import Collections
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.ingest.index import QdrantIndex
from ragserve.state.database import Database
from ragserve.state.schema import metadata
from tests.service.conftest import KEYS, Service, serve
from tests.support.chat import bearer, post_chat, user
from tests.support.postgres import PostgresServer
from tests.support.servers import ADMIN_KEY


@pytest.fixture(scope="module")
def tenants_service(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: DenseEmbedder,
    base_model_dir: Path,
    vllm: VllmProcess,
    adapters_root: Path,
    postgres: PostgresServer,
) -> Iterator[Service]:
    """A service whose state is in a real PostgreSQL (the documents tests' is SQLite, the default)."""
    root = tmp_path_factory.mktemp("tenants")
    yield from serve(
        root, embedder, base_model_dir, vllm.url, adapters_root, database_url=postgres.new_database()
    )


ADMIN = bearer(ADMIN_KEY)
QUESTION = {"messages": user("How long does the battery last?"), "max_tokens": 4}


def _admin(service: Service, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{service.url}/admin{path}", json=body, headers=ADMIN, timeout=120)


def create_tenant(service: Service, name: str, **settings: Any) -> str:
    """A tenant made over HTTP; its first key."""
    response = _admin(service, "POST", "/tenants", {"name": name, **settings})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["tenant"]["name"] == name and created["tenant"]["source"] == "api"
    key: str = created["key"]["key"]
    return key


class Load:
    """Chat requests one after another from a thread, with the key `key` holds at each; every status kept."""

    def __init__(self, service: Service, key: str) -> None:
        self.service = service
        self.key = key
        self.statuses: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            key = self.key
            self.statuses.append((key, post_chat(self.service.url, key, QUESTION).status_code))

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(120)

    def wait_for(self, n: int, key: str) -> None:
        deadline = time.monotonic() + 120
        while sum(k == key for k, _ in self.statuses) < n and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def service(tenants_service: Service) -> Iterator[Service]:
    yield tenants_service


def test_a_tenant_created_over_http_answers_at_once_while_another_keeps_answering(service: Service) -> None:
    with Load(service, KEYS["globex"]) as globex:
        globex.wait_for(2, KEYS["globex"])
        key = create_tenant(service, "initech", system_prompt="You are the Initech assistant.", k=2)
        response = post_chat(service.url, key, QUESTION)
        assert response.status_code == 200, response.text
        globex.wait_for(len(globex.statuses) + 2, KEYS["globex"])
    assert globex.statuses and all(status == 200 for _, status in globex.statuses)
    listed = {t["name"]: t for t in _admin(service, "GET", "/tenants").json()["tenants"]}
    assert listed["initech"]["k"] == 2 and listed["initech"]["docs"] is None
    assert _admin(service, "POST", "/tenants", {"name": "initech"}).status_code == 409


def test_keys_rotate_under_load_and_a_revoked_key_is_refused_at_once(service: Service) -> None:
    old = create_tenant(service, "rotor")
    (old_id,) = [k["id"] for k in _admin(service, "GET", "/tenants/rotor/keys").json()["keys"]]
    with Load(service, old) as load:
        load.wait_for(2, old)
        issued = _admin(service, "POST", "/tenants/rotor/keys", {"name": "next", "expires_in_s": 3600})
        assert issued.status_code == 201
        new = issued.json()["key"]
        load.key = new  # the client moves to the new key, then the old one is revoked
        load.wait_for(2, new)
        revoked = _admin(service, "DELETE", f"/tenants/rotor/keys/{old_id}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        refused = post_chat(service.url, old, QUESTION)
        assert refused.status_code == 401 and refused.json()["error"]["message"] == "unknown API key"
        load.wait_for(sum(k == new for k, _ in load.statuses) + 2, new)
    assert [s for k, s in load.statuses if k == new] and all(s == 200 for k, s in load.statuses if k == new)
    keys = _admin(service, "GET", "/tenants/rotor/keys").json()["keys"]
    assert [(k["name"], k["revoked_at"] is not None) for k in keys] == [("", True), ("next", False)]
    assert all(set(k) == {"id", "tenant", "name", "created_at", "expires_at", "revoked_at"} for k in keys)


def test_a_changed_setting_counts_from_the_next_request(service: Service) -> None:
    key = create_tenant(service, "hooli")
    asked = {**QUESTION, "max_tokens": 20}
    assert post_chat(service.url, key, asked).status_code == 200
    changed = _admin(service, "PATCH", "/tenants/hooli", {"max_tokens": 8, "k": 1})
    assert changed.status_code == 200 and changed.json()["max_tokens"] == 8 and changed.json()["k"] == 1
    capped = post_chat(service.url, key, asked)
    assert capped.status_code == 400 and "max_tokens" in capped.text
    bad = _admin(service, "PATCH", "/tenants/hooli", {"k": 500})
    assert bad.status_code == 400 and bad.json()["error"]["param"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/tenants", None),
        ("POST", "/tenants", {"name": "sneaky"}),
        ("GET", "/tenants/acme", None),
        ("PATCH", "/tenants/acme", {"k": 1}),
        ("DELETE", "/tenants/acme", None),
        ("POST", "/tenants/acme/keys", {}),
        ("GET", "/tenants/acme/keys", None),
        ("DELETE", "/tenants/acme/keys/config_acme", None),
    ],
)
def test_admin_calls_without_the_admin_key_are_401(
    service: Service, method: str, path: str, body: Any
) -> None:
    for headers in ({}, bearer(KEYS["acme"]), bearer("admin-key-wrong")):
        response = httpx.request(method, f"{service.url}/admin{path}", json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
    assert post_chat(service.url, KEYS["acme"], QUESTION).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "../etc"}, 404, "invalid tenant"),
        ({"name": "a" * 65}, 400, "name"),
        ({"name": "ok", "colour": "red"}, 400, "colour"),
        ({"name": "ok2", "k": -1}, 400, "k"),
        ({"name": "ok3", "adapter": "nope@v9"}, 404, "nope"),
        ({"name": "ok4", "key": {"expires_in_s": 1}}, 400, "expires_in_s"),
    ],
)
def test_a_bad_new_tenant_is_a_4xx_naming_what_is_wrong(
    service: Service, body: dict[str, Any], status: int, says: str
) -> None:
    response = _admin(service, "POST", "/tenants", body)
    assert response.status_code == status, response.text
    assert says in response.text
    listed = {t["name"] for t in _admin(service, "GET", "/tenants").json()["tenants"]}
    assert body["name"] not in listed


def test_unknown_tenants_and_keys_are_404(service: Service) -> None:
    for method, path in [
        ("GET", "/tenants/nobody"),
        ("PATCH", "/tenants/nobody"),
        ("DELETE", "/tenants/nobody"),
        ("GET", "/tenants/nobody/keys"),
        ("DELETE", "/tenants/acme/keys/key_0000"),
        ("DELETE", "/tenants/globex/keys/config_acme"),  # acme's key, through another tenant
    ]:
        response = _admin(service, method, path, {} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
    assert post_chat(service.url, KEYS["acme"], QUESTION).status_code == 200


def test_deleting_a_tenant_erases_it_from_the_index_the_database_and_the_data_dir(service: Service) -> None:
    """globex was indexed, gave feedback and has an assignment; after the delete, nothing of it is found."""
    feedback = {
        "rating": "up",
        "messages": user("Refunds?"),
        "answer": "Within 14 days [1].",
        "citations": [{"index": 1, "source": "refunds.md", "cited": True}],
    }
    posted = httpx.post(f"{service.url}/v1/feedback", json=feedback, headers=bearer(KEYS["globex"]))
    assert posted.status_code == 201
    assert _admin(service, "PUT", "/tenants/globex/adapter", {"adapter": ""}).status_code == 200
    assert service.state.ingest.index.count_chunks("globex") > 0

    response = _admin(service, "DELETE", "/tenants/globex")
    assert response.status_code == 200, response.text
    assert "config file" in response.json()["note"]

    assert post_chat(service.url, KEYS["globex"], QUESTION).status_code == 401
    assert _admin(service, "GET", "/tenants/globex").status_code == 404
    index: QdrantIndex = service.state.ingest.index
    for name in Collections(index).physical_names():
        assert index.view(name).count_chunks("globex") == 0
        assert not any("globex" in key for key, value in index.view(name).metadata().items() if value)
    assert _rows_naming(service.state.database, "globex") == []
    files = _files_naming(service.data_dir, "globex")
    assert files == [], "\n".join(files)
    assert post_chat(service.url, KEYS["acme"], QUESTION).status_code == 200


def _rows_naming(database: Database, needle: str) -> list[str]:
    found = []
    with database.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()).all():
                if needle in repr(tuple(row)):
                    found.append(f"{table.name}: {row}")
    return found


def _files_naming(root: Path, needle: str) -> list[str]:
    """Files under the data dir whose name or bytes hold the needle: the state database's and the embedded
    Qdrant store's included."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and (needle in path.name or needle.encode() in path.read_bytes()):
            found.append(str(path.relative_to(root)))
    return found
