"""What one chat request asks of vLLM: the token budget (the client's ask within the tenant's cap and the
context), and the payload (the prompt, the model's sampling defaults, then the client's own values)."""

import hashlib
from typing import Any

from ragserve.errors import InvalidRequestError, PromptTooLongError
from ragserve.service.prompt import Prompt
from ragserve.service.schemas import ChatRequest
from ragserve.service.state import ServiceState

__all__ = ["cache_salt", "max_tokens_for", "vllm_payload"]

# What the client may set and vLLM takes as it is: OpenAI's fields, then vLLM's sampling extensions.
_PASSED_ON = frozenset({
    "n", "temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "seed", "logprobs",
    "top_logprobs", "logit_bias", "response_format", "tools", "tool_choice", "parallel_tool_calls",
    "top_k", "min_p", "min_tokens", "repetition_penalty", "ignore_eos",
})  # fmt: skip


def max_tokens_for(body: ChatRequest, state: ServiceState, tenant: str) -> int:
    """What the client asked for, else the model's default, within the tenant's cap and the context."""
    cap = state.tenants.settings(tenant).max_tokens
    asked = body.max_completion_tokens or body.max_tokens
    param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    if asked is not None and cap is not None and asked > cap:
        raise InvalidRequestError(f"{param} is {asked}, over this key's limit of {cap}", param=param)
    tokens = asked or min(state.config.model.max_tokens, cap or state.config.model.max_tokens)
    context = state.config.model.max_model_len
    if tokens >= context:
        raise PromptTooLongError(
            f"{param} is {tokens}, which leaves no room for the prompt in the model's context of {context} "
            "tokens",
            param=param,
        )
    return tokens


def cache_salt(tenant: str) -> str:
    """Each tenant's requests share vLLM's prefix cache only with each other, so how fast a prompt starts
    tells no tenant what another one asked. The client never sets it: it comes from the key's tenant."""
    return hashlib.sha256(f"ragserve-tenant:{tenant}".encode()).hexdigest()[:32]


def vllm_payload(
    body: ChatRequest, served: str, prompt: Prompt, state: ServiceState, tenant: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": served,
        "messages": [{"role": m.role, "content": m.content, **m.extra} for m in prompt.messages],
        "max_tokens": prompt.max_tokens,
        "cache_salt": cache_salt(tenant),
    }
    # The model's sampling defaults, then what the client sent: the client's own values always win.
    payload.update(state.config.model.sampling())
    sent = body.model_dump(include=set(_PASSED_ON), exclude_none=True)
    payload.update(sent)
    if body.stream:
        # Usage always, for the metrics; the client sees it only if it asked (sse_events).
        usage = body.stream_options.model_dump() if body.stream_options else {}
        payload["stream_options"] = {**usage, "include_usage": True}
    return payload
