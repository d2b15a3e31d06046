"""The answer itself, with the bundled model: at the service's defaults, a fact the model cannot know is
stated once it is indexed; with the bundled grounding adapter, a question the documents do not answer is
refused (the plain base model never refuses: docs/answer-quality.md)."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ragserve.engine.vllm_process import VllmProcess
from ragserve.ingest.embedding import DenseEmbedder
from ragserve.service.config import ServeConfig, TenantConfig
from ragserve.service.prompt import REFUSED
from ragserve.settings import Settings
from tests.support.chat import ask, post_chat, sse_events, stream_chat, user
from tests.support.documents import write
from tests.support.servers import ADMIN_KEY, reindex, serving

KEY = "initech-key"
COMPANY = "# Initech\n\nInitech makes office software. Its head office is in Austin."


GROUNDING = {"model": {"default_adapter": "grounding"}, "prompt": {"context": "user", "focus_sentences": 0}}


def _serve(
    root: Path, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess, changes: dict[str, Any]
) -> Iterator[tuple[str, Path]]:
    docs = root / "docs"
    write(docs, "company.md", COMPANY)
    config = ServeConfig.model_validate(
        {"tenants": {"initech": TenantConfig(api_key=KEY, docs=docs)}, **changes}
    )
    admin_key = SecretStr(ADMIN_KEY)
    settings = Settings(data_dir=root / "data", adapters_dir=root / "adapters", admin_key=admin_key)
    with serving(config, settings, base_model_dir, vllm.url, embedder) as (url, _):
        yield url, docs


@pytest.fixture(scope="module")
def at_defaults(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess
) -> Iterator[tuple[str, Path]]:
    yield from _serve(tmp_path_factory.mktemp("defaults"), embedder, base_model_dir, vllm, {})


@pytest.fixture(scope="module")
def with_grounding(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess
) -> Iterator[tuple[str, Path]]:
    yield from _serve(tmp_path_factory.mktemp("grounding"), embedder, base_model_dir, vllm, GROUNDING)


def _reindex(url: str) -> None:
    reindex(url, "initech")


def _ask(url: str, question: str) -> dict[str, Any]:
    return ask(url, KEY, question)  # no sampling: the defaults


def _answer(url: str, question: str) -> str:
    return str(_ask(url, question)["choices"][0]["message"]["content"])


def _streamed_citations(url: str, question: str) -> list[dict[str, Any]]:
    with stream_chat(url, KEY, {"messages": user(question)}) as response:
        events = sse_events(response)
    return [c for event in events for c in event.get("citations", [])]


def test_at_the_defaults_a_fresh_fact_is_stated_in_the_answer_once_indexed(
    at_defaults: tuple[str, Path],
) -> None:
    url, docs = at_defaults
    write(docs, "printers.md", "# Printers\n\nThe Initech PC LOAD 7 printer prints 38 pages per minute.")
    _reindex(url)
    question = "How many pages per minute does the PC LOAD 7 print?"
    body = _ask(url, question)
    answer = body["choices"][0]["message"]["content"]
    assert "38" in answer, answer
    # The model wrote no [n]; the service cites the block the answer's "38" comes from, streamed or not.
    for citations in (body["citations"], _streamed_citations(url, question)):
        cited = [c["source"] for c in citations if c["cited"]]
        assert cited == ["printers.md"], (answer, citations)


def test_with_the_grounding_adapter_a_question_the_documents_do_not_answer_is_refused(
    with_grounding: tuple[str, Path],
) -> None:
    url, _ = with_grounding
    _reindex(url)
    answer = _answer(url, "What is the phone number of Initech's help desk?")
    assert REFUSED.search(answer), answer


UNANSWERABLE = "What is the phone number of Initech's help desk?"


@pytest.fixture(scope="module")
def policies(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder, base_model_dir: Path, vllm: VllmProcess
) -> Iterator[str]:
    """initech refuses an unsupported answer, hooli (the same documents) only flags it, umbrella quotes (the
    default), wayne generates nothing (`answer_mode = "quote"`)."""
    root = tmp_path_factory.mktemp("policies")
    tenants = {}
    for name, policy in (("initech", {"on_unsupported": "refuse"}), ("hooli", {"on_unsupported": "flag"}),
                         ("umbrella", {}), ("wayne", {"answer_mode": "quote"})):  # fmt: skip
        write(root / name, "company.md", COMPANY)
        tenants[name] = TenantConfig.model_validate({"api_key": f"{name}-key", "docs": root / name, **policy})
    config = ServeConfig(tenants=tenants)
    settings = Settings(
        data_dir=root / "data", adapters_dir=root / "adapters", admin_key=SecretStr(ADMIN_KEY)
    )
    with serving(config, settings, base_model_dir, vllm.url, embedder, indexed=tenants) as (url, _):
        yield url


def _asked(url: str, key: str, question: str, stream: bool = False) -> tuple[str, dict[str, Any]]:
    """The answer's text and its grounding, streamed or not."""
    text, grounding, _ = _asked_with_usage(url, key, question, stream)
    return text, grounding


def _asked_with_usage(
    url: str, key: str, question: str, stream: bool = False
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    request: dict[str, Any] = {"messages": user(question)}
    if not stream:
        body = post_chat(url, key, request).json()
        return body["choices"][0]["message"]["content"], body["grounding"], body["usage"]
    with stream_chat(url, key, {**request, "stream_options": {"include_usage": True}}) as response:
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        events = sse_events(response)
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    [grounding] = [e["grounding"] for e in events if "grounding" in e]
    [usage] = [e["usage"] for e in events if e.get("usage")]
    return text, grounding, usage


def test_under_refuse_an_unanswerable_question_is_refused_and_another_tenants_flag_is_kept(
    policies: str,
) -> None:
    refused, grounding = _asked(policies, "initech-key", UNANSWERABLE)
    assert refused == "I don't know.", (refused, grounding)
    assert grounding["policy"] == "refuse"
    flagged, other = _asked(policies, "hooli-key", UNANSWERABLE)
    # The base model never refuses (docs/answer-quality.md): hooli gets its invented answer, flagged.
    assert other["policy"] == "flag" and other["replaced"] is None, other
    assert flagged != "I don't know." and other["support"] < 1, (flagged, other)
    assert grounding["replaced"] == {"support": other["support"], "by": "refusal"}


def test_streamed_and_whole_answers_carry_the_same_grounding(policies: str) -> None:
    for key in ("initech-key", "hooli-key"):
        whole = _asked(policies, key, UNANSWERABLE)
        streamed = _asked(policies, key, UNANSWERABLE, stream=True)
        assert streamed == whole


def test_under_the_default_quote_an_answer_is_the_models_supported_one_or_the_documents_own_words(
    policies: str,
) -> None:
    for question in ("Where is Initech's head office?", "What does Initech make?", UNANSWERABLE):
        text, grounding = _asked(policies, "umbrella-key", question)
        assert grounding["policy"] == "quote"
        replaced = grounding["replaced"]
        if replaced is None:
            assert grounding["support"] == 1.0, (question, text, grounding)
        elif replaced["by"] == "quote":
            quoted = re.sub(r" \[\d+\]$", "", text)
            assert quoted in COMPANY, (question, text)
        else:
            assert text == "I don't know.", (question, text)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_in_quote_mode_nothing_is_generated_an_answer_is_the_documents_own_words_or_i_dont_know(
    policies: str,
) -> None:
    text, grounding, usage = _asked_with_usage(policies, "wayne-key", "Where is Initech's head office?")
    quoted = re.sub(r" \[\d+\]$", "", text)
    assert "Austin" in quoted and _flat(quoted) in _flat(COMPANY), text  # verbatim, from wayne's documents
    assert usage["completion_tokens"] == 0 and grounding["support"] == 1.0, (usage, grounding)
    assert _asked(policies, "wayne-key", UNANSWERABLE)[0] == "I don't know."
    for question in ("Where is Initech's head office?", UNANSWERABLE):
        assert _asked_with_usage(policies, "wayne-key", question, stream=True) == _asked_with_usage(
            policies, "wayne-key", question
        )
    # Without retrieval there is nothing to quote, and still nothing is generated.
    body = ask(policies, "wayne-key", "Where is Initech's head office?", rag=False)
    assert body["choices"][0]["message"]["content"] == "I don't know." and body["citations"] == [], body
    # The mode is wayne's alone: hooli, with the same documents, still gets the model's answer.
    assert (
        _asked_with_usage(policies, "hooli-key", "Where is Initech's head office?")[2]["completion_tokens"]
        > 0
    )
