"""`ragserve adapters eval`: the adapter's held-out split asked of a vLLM with the adapter's base model, one
given by URL or one started here; checked first as the service would check it before loading it."""

import asyncio

from ragserve.adapters.evaluation import SETUPS
from ragserve.adapters.lifecycle import EvaluatedAdapter, HeldOutSplit, evaluate_adapter, held_out_split
from ragserve.adapters.registry import AdapterVersion
from ragserve.adapters.validation import validate_on_base
from ragserve.engine.base_model import ensure_base_model, served_base_name
from ragserve.engine.vllm_client import VllmClient
from ragserve.engine.vllm_process import VllmSpec, free_port
from ragserve.launch.stack import Say, vllm_at_or_started
from ragserve.settings import Settings

__all__ = ["evaluate_version"]


def evaluate_version(
    settings: Settings,
    version: AdapterVersion,
    vllm_url: str | None,
    max_tokens: int,
    base: str | None,
    say: Say,
) -> EvaluatedAdapter:
    """`base`: the base model's folder, if not the one the adapter's card names."""
    split = held_out_split(version)
    base_dir = ensure_base_model(base or split.card.base_model, settings.models_dir)
    base_name = split.card.base_model if base is None else served_base_name(base)
    validate_on_base(version, base_name, base_dir, settings)
    say(f"evaluating {version.ref} on {len(split.held_out)} held-out examples, {len(SETUPS)} set-ups")
    spec = VllmSpec(base_dir, base_name, free_port(), settings.max_lora_rank, dtype=settings.vllm_dtype)
    with vllm_at_or_started(vllm_url, settings, spec, "vllm-eval.log", say) as vllm:
        return asyncio.run(_ask(vllm.url, vllm.api_key, version, split, base_name, max_tokens))


async def _ask(
    url: str, key: str | None, version: AdapterVersion, split: HeldOutSplit, base_name: str, max_tokens: int
) -> EvaluatedAdapter:
    client = VllmClient(url, timeout_s=600, api_key=key)
    try:
        return await evaluate_adapter(client, version, split, base_name, max_tokens)
    finally:
        await client.aclose()
