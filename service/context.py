"""What reaches the prompt for one chat request: the tenant's retrieved blocks, focused on the question, with
the conversation, in the model's context budget."""

import asyncio
import time
from dataclasses import replace

from ragserve.ingest.search import Hit
from ragserve.service.focus import focus
from ragserve.service.prompt import Message, Prompt, retrieval_query
from ragserve.service.retrieval import retrieve_hits
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState
from ragserve.service.vllm_request import max_tokens_for

__all__ = ["prompt_for"]


async def prompt_for(state: ServiceState, tenant: str, body: ChatRequest) -> Prompt:
    turns = [
        Message("system" if m.role == "developer" else m.role, m.text(), m.passed_on()) for m in body.messages
    ]
    tenant_config = state.tenants.settings(tenant)
    k = tenant_config.k if body.k is None else body.k
    hits: list[Hit] = []
    retrieved: list[Hit] = []
    if body.rag and k > 0:
        t0 = time.perf_counter()
        query = retrieval_query(turns)
        found = await retrieve_hits(state, tenant, query, k, body.sources)
        hits = retrieved = [h for h in found if h.score >= body.min_score]
        if state.config.prompt.focus_sentences:
            keep = state.config.prompt.focus_sentences
            hits = await asyncio.to_thread(focus, hits, query, state.retriever.embedder, keep)
        state.metrics.stage_seconds.labels("retrieve").observe(time.perf_counter() - t0)
    t0 = time.perf_counter()
    max_tokens = max_tokens_for(body, state, tenant)
    prompt = await asyncio.to_thread(
        state.prompts.build, tenant_config.system_prompt, hits, turns, max_tokens, body.keeps_turns
    )
    state.metrics.stage_seconds.labels("prompt").observe(time.perf_counter() - t0)
    return replace(prompt, retrieved=retrieved)
