"""One eval run: every set-up asked the same questions, against a running service or a stack started here.

With a config, vLLM and the index start once; each set-up then gets an API of its own (its config changed
as the set-up says, a one-off key for the tenant, and adapter assignments that start from the data dir's
but never write to it), so set-ups differ only in what they name.
"""

import asyncio
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragserve.adapters.assignments import AssignmentStore
from ragserve.adapters.registry import AdapterRegistry
from ragserve.engine.base_model import ensure_base_model
from ragserve.engine.vllm_process import free_port
from ragserve.errors import ConfigError, InvalidTenantError
from ragserve.ingest.runtime import IngestRuntime
from ragserve.service.app import create_app
from ragserve.service.config import ServeConfig
from ragserve.service.evaluation.qa import QAItem
from ragserve.service.evaluation.runner import RETRIEVAL_K, ask_questions, rank_of, rank_sources
from ragserve.service.evaluation.scoring import summarize, summarize_retrieval
from ragserve.service.evaluation.setups import Setup
from ragserve.service.stack import index_tenants, serving_in_thread, vllm_for
from ragserve.settings import Settings

__all__ = ["EvalRun", "evaluate_config", "evaluate_service"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class EvalRun:
    tenant: str
    qa_file: Path
    items: list[QAItem]
    setups: list[Setup]
    retrieval_only: bool = False
    concurrency: int = 4

    def report(self, metrics: dict[str, Any], results: dict[str, list[Any]]) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "questions": len(self.items),
            "qa_file": str(self.qa_file),
            "mode": "retrieval" if self.retrieval_only else "answers",
            "setups": metrics,
            "results": {name: [r.to_json() for r in rows] for name, rows in results.items()},
        }


def evaluate_service(url: str, key: str, run: EvalRun, on_done: Callable[[], None]) -> dict[str, Any]:
    """Against a running service: set-ups may only change what a request sends."""
    if run.retrieval_only:
        ranks = asyncio.run(rank_sources(url, key, run.items, on_done))
        return run.report({"retrieval": summarize_retrieval(ranks)}, {"retrieval": ranks})
    for setup in run.setups:
        if setup.changes_config:
            raise ConfigError(f"set-up {setup.name} changes the served config; run it with --config")
    results = {
        s.name: asyncio.run(ask_questions(url, key, run.items, s, on_done, run.concurrency))
        for s in run.setups
    }
    return run.report({name: summarize(rows) for name, rows in results.items()}, results)


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
                store = _assignments(settings, Path(scratch), run.tenant, setup)
                app = create_app(
                    setup_cfg,
                    served,
                    model_dir,
                    vllm.url,
                    store,
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


def _assignments(settings: Settings, scratch: Path, tenant: str, setup: Setup) -> AssignmentStore:
    """The data dir's assignments, in a scratch copy; a set-up that names an adapter overrides them."""
    persisted = AssignmentStore.in_data_dir(settings.data_dir).read()
    store = AssignmentStore(scratch / "assignments.json")
    for name, ref in persisted.items():
        if name == tenant and ("adapter" in setup.tenant or "default_adapter" in setup.model):
            continue
        store.set(name, ref)
    return store
