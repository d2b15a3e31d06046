"""`ragserve tenants` verbs on the state database when no service runs: create with a key shown once, list,
change, rotate keys, and delete with erasure; bad input is one line naming what is wrong."""

import hashlib
import json
from typing import Any

from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore

runner = CliRunner()


def _run(*args: str, answer: str | None = None) -> Any:
    result = runner.invoke(app, ["tenants", *args], input=answer)
    assert "Traceback" not in result.output
    return result


def _json(*args: str) -> Any:
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _store(settings: Settings) -> TenantStore:
    return TenantStore(Database.of(settings))


def test_create_list_change_and_rotate_keys(settings: Settings) -> None:
    created = _json("create", "initech", "--k", "3", "--system-prompt", "You are Initech's assistant.")
    key = created["key"]["key"]
    assert created["tenant"]["k"] == 3 and key.startswith("rsk-")
    assert _store(settings).tenant_for_key(hashlib.sha256(key.encode()).hexdigest()) is not None
    (listed,) = _json("list")["tenants"]
    assert listed["name"] == "initech" and listed["source"] == "api" and listed["docs"] is None
    assert _json("set", "initech", "--answer-mode", "quote")["answer_mode"] == "quote"
    new = _json("issue-key", "initech", "--name", "ci", "--expires-in", "3600")
    assert new["name"] == "ci" and new["expires_at"] is not None
    assert _json("revoke-key", "initech", created["key"]["id"])["revoked_at"] is not None
    assert _store(settings).tenant_for_key(hashlib.sha256(key.encode()).hexdigest()) is None
    shown = _run("keys", "initech")
    assert shown.exit_code == 0 and "ci" in shown.stdout and key not in shown.stdout


def test_delete_erases_the_tenant_and_asks_first(settings: Settings) -> None:
    key = _json("create", "hooli")["key"]["key"]
    refused = _run("delete", "hooli", answer="n\n")
    assert refused.exit_code != 0 and _store(settings).get("hooli") is not None
    erased = _json("delete", "hooli", "--yes")
    assert erased["deleted"] == "hooli"
    assert _store(settings).get("hooli") is None
    assert _store(settings).tenant_for_key(hashlib.sha256(key.encode()).hexdigest()) is None


def test_bad_input_is_one_line_naming_it(settings: Settings) -> None:
    _json("create", "acme")
    for args, says in [
        (("create", "acme"), "tenant 'acme' exists already"),
        (("create", "../x"), "invalid tenant '../x'"),
        (("set", "acme"), "name at least one setting"),
        (("set", "nobody", "--k", "2"), "unknown tenant 'nobody'"),
        (("revoke-key", "acme", "key_nope"), "tenant 'acme' has no key 'key_nope'"),
        (("delete", "nobody", "--yes"), "unknown tenant 'nobody'"),
    ]:
        result = _run(*args)
        assert result.exit_code == 1 and says in " ".join(result.stderr.split()), (args, result.output)
