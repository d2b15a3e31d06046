"""Real client libraries, unchanged, against the service and the real vLLM: what people will point at it."""

import json
from typing import Any

from pydantic import BaseModel

from tests.service.conftest import KEYS, Service

QUESTION = "How long does the Roadrunner battery last?"


class Battery(BaseModel):
    hours: int


def test_langchain_invoke_stream_and_structured_output(service: Service) -> None:
    from langchain_openai import ChatOpenAI

    options: dict[str, Any] = {"base_url": f"{service.url}/v1", "api_key": KEYS["acme"], "max_tokens": 40}
    llm = ChatOpenAI(model="default", **options)
    assert llm.invoke(QUESTION).content
    chunks = list(llm.stream(QUESTION))
    assert "".join(str(c.content) for c in chunks)
    # The citations ride on the last chunk with a choice; LangChain keeps a chunk's extra fields there.
    structured = llm.with_structured_output(Battery).invoke(QUESTION)
    assert isinstance(structured, Battery)


def test_llamaindex_openai_like_chat_and_stream(service: Service) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(
        model="default",
        api_base=f"{service.url}/v1",
        api_key=KEYS["acme"],
        is_chat_model=True,
        context_window=2048,
        max_tokens=40,
    )
    messages = [ChatMessage(role="user", content=QUESTION)]
    assert llm.chat(messages).message.content
    assert "".join(r.delta or "" for r in llm.stream_chat(messages))


def test_litellm_completion_and_stream_keep_the_citations(service: Service) -> None:
    import litellm

    options: dict[str, Any] = {
        "model": "openai/default",
        "api_base": f"{service.url}/v1",
        "api_key": KEYS["acme"],
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 40,
    }
    whole = litellm.completion(**options)
    assert whole.choices[0].message.content
    assert json.loads(json.dumps(whole.citations))[0]["source"] == "battery.md"
    chunks = list(litellm.completion(**options, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    carried = [c.citations for c in chunks if getattr(c, "citations", None)]
    assert carried and carried[-1][0]["source"] == "battery.md"
