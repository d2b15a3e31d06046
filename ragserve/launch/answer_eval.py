"""`ragserve eval answers --config`: the stack started from the config, then every set-up asked the same
questions through the real HTTP chat path.

vLLM and the index start once; each set-up then gets an API of its own (its config changed as the set-up
says, a one-off key for the tenant, and adapter assignments that start from the data dir's but never write
to it), so set-ups differ only in what they name.
"""

import asyncio
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry
from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.vllm_process import free_port
from ragserve.errors import InvalidTenantError
from ragserve.evaluation.runner import RETRIEVAL_K, ask_questions, rank_of
from ragserve.evaluation.scoring import summarize, summarize_retrieval
from ragserve.evaluation.session import EvalRun
from ragserve.evaluation.setups import Setup
from ragserve.ingest.runtime import IngestRuntime
from ragserve.launch.stack import Say, index_tenants, serving_in_thread, vllm_for
from ragserve.service.app import create_app
from ragserve.service.config import ServeConfig
from ragserve.service.tenants import TenantDirectory
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.tenants import TenantStore

__all__ = ["evaluate_config"]


def evaluate_config(
    cfg: ServeConfig,
    settings: Settings,
    run: EvalRun,
    on_done: Callable[[], None],
    say: Say,
) -> dict[str, Any]:
    """Starts what the config needs (vLLM unless RAGSERVE_VLLM_URL, the tenant's index), then asks."""
    if run.tenant not in cfg.tenants:
        raise InvalidTenantError(f"{cfg.path}: no tenant {run.tenant!r}")
    only_tenant = cfg.model_copy(update={"tenants": {run.tenant: cfg.tenants[run.tenant]}})
    if run.retrieval_only:
        index_tenants(only_tenant, settings, say)
        with IngestRuntime.open(settings) as runtime:
            retriever = runtime.retriever()
            ranks = []
            for item in run.items:
                hits = retriever.search(run.tenant, item.question, RETRIEVAL_K)
                ranks.append(rank_of(item, [h.source for h in hits]))
                on_done()
        return run.report({"retrieval": summarize_retrieval(ranks)}, {"retrieval": ranks})
    # Every set-up's config and adapter is checked before vLLM's minute of start-up, not after it.
    configs = {s.name: s.apply(only_tenant, run.tenant) for s in run.setups}
    registry = AdapterRegistry(settings.adapters_root)
    for setup_cfg in configs.values():
        for ref in setup_cfg.adapters().values():
            if ref:
                registry.resolve(ref)
    model_dir = ensure_base_model(cfg.model.base, settings.models_dir)
    results = {}
    # Its API serves one random key per set-up, on loopback, with no admin routes: nothing to refuse there;
    # its metrics on any free port, beside a `ragserve up` that holds the usual one.
    served = settings.model_copy(update={"admin_key": None, "metrics_port": 0})
    with vllm_for(cfg, settings, model_dir, say, port=free_port(), log_name="vllm-eval.log") as vllm:
        index_tenants(only_tenant, settings, say)
        for setup in run.setups:
            key = secrets.token_urlsafe(24)
            setup_cfg = _with_key(configs[setup.name], run.tenant, key)
            with tempfile.TemporaryDirectory() as scratch:
                database = _scratch_state(settings, Path(scratch), setup_cfg, run.tenant, setup)
                app = create_app(
                    setup_cfg,
                    served,
                    model_dir,
                    vllm.url,
                    database,
                    vllm_api_key=vllm.api_key,
                    replicas=vllm.replicas,
                )
                say(f"set-up {setup.name}: asking {len(run.items)} questions")
                with serving_in_thread(app, settings) as api:
                    results[setup.name] = asyncio.run(
                        ask_questions(api, key, run.items, setup, on_done, run.concurrency)
                    )
    return run.report({name: summarize(rows) for name, rows in results.items()}, results)


def _with_key(cfg: ServeConfig, tenant: str, key: str) -> ServeConfig:
    keyed = cfg.tenants[tenant].model_copy(
        update={"api_key": key, "api_key_sha256": None, "api_key_env": None}
    )
    return cfg.model_copy(update={"tenants": {**cfg.tenants, tenant: keyed}})


def _scratch_state(
    settings: Settings, scratch: Path, cfg: ServeConfig, tenant: str, setup: Setup
) -> Database:
    """A scratch state database with the set-up's tenants and the data dir's adapter assignment of the
    tenant, unless the set-up names an adapter itself: the eval never changes the real one."""
    database = Database(f"sqlite:///{scratch / 'state.db'}")
    database.migrate()
    TenantDirectory(TenantStore(database)).sync_config(cfg)
    persisted = AssignmentStore(Database.of(settings)).read()
    overridden = "adapter" in setup.tenant or "default_adapter" in setup.model
    if tenant in persisted and not overridden:
        AssignmentStore(database).set(tenant, persisted[tenant])
    return database
