"""OpenAI's Responses API on the session's real vLLM and the embedded Qdrant, driven by the unchanged `openai`
SDK and the OpenAI Agents SDK: file_search over a tenant's store answers with a file_citation to the file,
streamed and not; a thread continues by previous_response_id; parse fills a pydantic model; function tools
round-trip; another tenant's response is 404; unsupported fields are a 400 naming them."""

import asyncio
from collections.abc import Iterator
from typing import Any

import agents
import httpx
import openai
import pytest
import websockets
from openai.resources.responses.responses import ResponsesConnection
from openai.types.responses import FunctionToolParam
from pydantic import BaseModel

from ragserve.service.compaction import EARLIER, unsealed
from tests.service.conftest import KEYS, Service, service_fixture
from tests.service.test_tenants_api import create_tenant
from tests.support.chat import bearer, openai_client
from tests.support.waiting import wait_until

responses_service = service_fixture("responses")
MANUAL = b"# Flux capacitor\n\nThe Initech flux capacitor needs 1.21 gigawatts to start.\n"
QUESTION = "How many gigawatts does the flux capacitor need?"


@pytest.fixture(scope="module")
def initech(responses_service: Service) -> str:
    """A tenant made over HTTP, answering by quotes from its documents: its answers cite deterministically."""
    return create_tenant(responses_service, "initech", answer_mode="quote")


@pytest.fixture(scope="module")
def client(responses_service: Service, initech: str) -> Iterator[openai.OpenAI]:
    with openai_client(responses_service.url, initech) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def store(client: openai.OpenAI) -> tuple[str, str]:
    """A store holding the manual, indexed: (store id, file id)."""
    created = client.vector_stores.create(name="manuals")
    attached = client.vector_stores.files.upload_and_poll(
        vector_store_id=created.id, file=("capacitor.md", MANUAL)
    )
    assert attached.status == "completed"
    return created.id, attached.id


def _file_search(store_id: str) -> list[Any]:
    return [{"type": "file_search", "vector_store_ids": [store_id]}]


def test_file_search_answers_with_a_citation_to_the_file(
    client: openai.OpenAI, store: tuple[str, str]
) -> None:
    store_id, file_id = store
    response = client.responses.create(
        model="default",
        input=QUESTION,
        tools=_file_search(store_id),
        include=["file_search_call.results"],
    )
    assert response.status == "completed" and response.object == "response"
    search, message = response.output
    assert search.type == "file_search_call" and search.queries == [QUESTION]
    assert search.results and search.results[0].file_id == file_id
    assert search.results[0].filename == "capacitor.md" and "1.21 gigawatts" in (search.results[0].text or "")
    assert message.type == "message" and "1.21 gigawatts" in response.output_text
    (part,) = message.content
    assert part.type == "output_text"
    citations = [a for a in part.annotations if a.type == "file_citation"]
    assert [(c.file_id, c.filename) for c in citations] == [(file_id, "capacitor.md")]
    assert response.usage is not None and response.usage.output_tokens >= 0
    assert client.responses.retrieve(response.id).output_text == response.output_text
    # Without the tool, retrieval reads all the tenant's documents as chat's does, and, as in OpenAI's API,
    # the text carries no file_citation: the sources are in `citations`.
    plain = client.responses.create(model="default", input=QUESTION)
    (message,) = plain.output
    assert message.type == "message" and message.content[0].annotations == []  # type: ignore[union-attr]
    assert "1.21 gigawatts" in plain.output_text
    assert any(c["cited"] for c in (plain.model_extra or {})["citations"])


def test_a_streamed_response_sends_the_typed_events_in_order(
    client: openai.OpenAI, store: tuple[str, str]
) -> None:
    store_id, file_id = store
    with client.responses.stream(model="default", input=QUESTION, tools=_file_search(store_id)) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    message_at = kinds.index("response.content_part.added")
    assert (
        kinds.index("response.file_search_call.completed")
        < message_at
        < kinds.index("response.output_text.delta")
    )
    assert kinds.index("response.output_text.done") < kinds.index("response.content_part.done")
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text and "1.21 gigawatts" in deltas
    annotations = [
        a for e in events if e.type == "response.output_text.annotation.added" for a in [e.annotation]
    ]
    assert annotations == [
        {"type": "file_citation", "file_id": file_id, "filename": "capacitor.md", "index": 0}
    ]


def _until_done(connection: ResponsesConnection) -> list[Any]:
    """The events of one response on a WebSocket, through its last."""
    events: list[Any] = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "response.incomplete", "response.failed", "error"):
            return events
    raise AssertionError(f"the connection closed after {[e.type for e in events]}")


def test_websocket_mode_answers_each_response_create_on_one_connection(
    responses_service: Service, client: openai.OpenAI, initech: str, store: tuple[str, str]
) -> None:
    store_id, file_id = store
    with client.responses.connect() as connection:
        connection.response.create(model="default", input=QUESTION, tools=_file_search(store_id))
        events = _until_done(connection)
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
        done = events[-1].response
        assert events[-1].type == "response.completed" and "1.21" in done.output_text
        deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert deltas == done.output_text
        assert done.output[-1].content[0].annotations[0].file_id == file_id
        # A refused one is an error event naming the field; the connection stays open for the next.
        connection.response.create(model="default", input="hi", reasoning={"effort": "low"})
        refused = _until_done(connection)
        assert [(e.type, e.param) for e in refused] == [("error", "reasoning")]
        for raw, param in (("not json", None), ('{"type": "response.cancel"}', "type")):
            connection.send_raw(raw)
            assert [(e.type, e.param) for e in _until_done(connection)] == [("error", param)]
        # The connection remembers its latest response: continued even when it was not stored.
        connection.response.create(model="default", input="My name is Peter.", store=False)
        unstored = _until_done(connection)[-1].response
        connection.response.create(model="default", input="And my name?", previous_response_id=unstored.id)
        follow_up = _until_done(connection)[-1]
        assert follow_up.type == "response.completed"
        assert follow_up.response.previous_response_id == unstored.id
        # A continuation that fails forgets the response it continued (it was stored nowhere else).
        connection.response.create(model="default", input="Hello.", store=False)
        forgotten = _until_done(connection)[-1].response
        stray = [
            {"role": "user", "content": "Hi"},
            {"type": "function_call_output", "call_id": "x", "output": "1"},
        ]
        connection.response.create(model="default", input=stray, previous_response_id=forgotten.id)  # type: ignore[arg-type]
        assert [(e.type, e.param) for e in _until_done(connection)] == [("error", "input")]
        connection.response.create(model="default", input="Hi", previous_response_id=forgotten.id)
        gone = _until_done(connection)
        assert [(e.type, e.code, e.status) for e in gone] == [("error", "previous_response_not_found", 404)]
    thread = responses_service.state.responses.get("initech", follow_up.response.id).thread
    assert [m["role"] for m in thread] == ["user", "assistant", "user", "assistant"]
    assert "Peter" in thread[0]["content"]
    with pytest.raises(openai.NotFoundError):  # nowhere else
        client.responses.create(model="default", input="Again?", previous_response_id=unstored.id)
    assert client.responses.retrieve(done.id).output_text == done.output_text
    other = create_tenant(responses_service, "vandelay")
    with openai_client(responses_service.url, other) as theirs, theirs.responses.connect() as connection:
        connection.response.create(model="default", input="Hi", previous_response_id=done.id)
        assert [(e.type, e.code) for e in _until_done(connection)] == [
            ("error", "previous_response_not_found")
        ]
    with (
        openai_client(responses_service.url, "not-a-key") as stranger,
        pytest.raises(websockets.InvalidStatus) as refused_key,
    ):
        stranger.responses.connect().enter()
    assert refused_key.value.response.status_code == 401


def test_a_websocket_closed_mid_answer_lets_go_of_its_slot(responses_service: Service) -> None:
    with openai_client(responses_service.url, KEYS["acme"]) as acme, acme.responses.connect() as connection:
        connection.response.create(model="default", input="Tell a long story.", max_output_tokens=400)
        for event in connection:
            if event.type == "response.output_text.delta":
                break
    wait_until(lambda: responses_service.state.limiter.in_flight() == 0, 30, "the slot to be let go")


def test_previous_response_id_continues_the_thread(
    responses_service: Service, client: openai.OpenAI, initech: str
) -> None:
    first = client.responses.create(
        model="default", input="My name is Peter. What does the capacitor need?", instructions="Be brief."
    )
    second = client.responses.create(
        model="default", input="And what is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    thread = responses_service.state.responses.get("initech", second.id).thread
    assert [m["role"] for m in thread] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]  # instructions are not carried
    assert "Peter" in thread[0]["content"] and thread[1]["content"] == first.output_text
    unstored = client.responses.create(model="default", input="Hello", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="default", input="Again?", previous_response_id=first.id)
    other = create_tenant(responses_service, "initrode")
    with openai_client(responses_service.url, other) as theirs:
        for call in (
            lambda: theirs.responses.retrieve(second.id),
            lambda: theirs.responses.delete(second.id),
            lambda: theirs.responses.create(model="default", input="Hi", previous_response_id=second.id),
        ):
            with pytest.raises(openai.NotFoundError):
                call()
    assert client.responses.retrieve(second.id).id == second.id


def test_input_items_lists_what_the_response_was_given_in_cursor_pages(
    responses_service: Service, client: openai.OpenAI
) -> None:
    first = client.responses.create(model="default", input="Hello there.", max_output_tokens=8)
    given: list[Any] = [
        {"role": "developer", "content": "Answer in one line."},
        {"id": "msg_mine", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What does the capacitor need?"},
    ]
    second = client.responses.create(
        model="default", input=given, previous_response_id=first.id, max_output_tokens=8
    )
    newest_first = list(client.responses.input_items.list(second.id, limit=1))  # follows the cursor
    listed = [item.model_dump(exclude_none=True) for item in reversed(newest_first)]
    assert [(i["type"], i["role"], i["status"]) for i in listed] == [
        ("message", "developer", "completed"),
        ("message", "user", "completed"),
        ("message", "assistant", "completed"),
        ("message", "user", "completed"),
    ]  # only this response's input, not the thread it continued
    assert listed[1]["id"] == "msg_mine" and len({i["id"] for i in listed}) == 4
    assert listed[2]["content"] == [{"type": "output_text", "text": "Hello.", "annotations": []}]
    assert listed[3]["content"] == [{"type": "input_text", "text": "What does the capacitor need?"}]
    ascending = client.responses.input_items.list(second.id, order="asc", limit=2)
    assert [i.id for i in ascending.data] == [i["id"] for i in listed[:2]] and ascending.has_more
    once, again = (client.responses.input_items.list(first.id).data for _ in range(2))
    assert [(i.type, i.role) for i in once] == [("message", "user")]  # type: ignore[union-attr]
    assert [i.id for i in once] == [i.id for i in again]  # given once, when it was stored
    other = create_tenant(responses_service, "hooli")
    with openai_client(responses_service.url, other) as theirs, pytest.raises(openai.NotFoundError):
        theirs.responses.input_items.list(second.id)


def test_compaction_keeps_the_users_messages_and_a_summary_a_new_chain_reads(
    responses_service: Service, client: openai.OpenAI, initech: str
) -> None:
    said = "We agreed to launch on Tuesday and notify support first."
    compacted = client.responses.compact(
        model="default",
        input=[
            {"role": "user", "content": said},
            {"role": "assistant", "content": "Understood. The launch is Tuesday, with support told first."},
        ],
    )
    assert compacted.object == "response.compaction" and compacted.usage.output_tokens > 0
    kept = [i.model_dump(exclude_none=True, warnings=False) for i in compacted.output]  # SDK: output types
    assert [i["type"] for i in kept] == ["message", "compaction"]
    assert kept[0]["content"] == [{"type": "input_text", "text": said}]
    summary = unsealed(kept[1]["encrypted_content"])
    assert summary.strip()
    following = [*kept, {"role": "user", "content": "When do we launch?"}]
    answered = client.responses.create(model="default", input=following)  # type: ignore[arg-type]
    thread = responses_service.state.responses.get("initech", answered.id).thread
    assert thread[1] == {"role": "system", "content": EARLIER + summary}  # the summary, where it stood
    # A conversation longer than the model's context is still compacted: its oldest turns give way.
    long = [
        {"role": role, "content": f"{role} turn {i}: " + "the capacitor stores charge " * 60}
        for i in range(4)
        for role in ("user", "assistant")
    ]
    compacted = client.responses.compact(model="default", input=long)  # type: ignore[arg-type]
    assert [i.type for i in compacted.output] == ["message"] * 4 + ["compaction"]
    forged = [{"type": "compaction", "encrypted_content": "bm90IG91cnM="}]  # base64, not one of ours
    bad: list[tuple[dict[str, Any], str]] = [
        ({"input": "Compact this."}, "model"),
        ({"model": "default", "input": forged}, "input"),
    ]
    for body, param in bad:
        refused = httpx.post(
            f"{responses_service.url}/v1/responses/compact", json=body, headers=bearer(initech), timeout=60
        )
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param, refused.text


def test_a_thread_too_long_for_the_context_is_refused_unless_truncation_is_auto(
    responses_service: Service, initech: str
) -> None:
    """OpenAI's default truncation, "disabled", refuses a thread the model cannot take whole; "auto" drops
    its oldest turns. (The test's model has 2048 tokens.)"""
    earlier = [
        {"role": role, "content": f"{role} turn {i}: " + "the capacitor stores charge " * 60}
        for i in range(4)
        for role in ("user", "assistant")
    ]
    body = {"input": [*earlier, {"role": "user", "content": "What does it need?"}], "max_output_tokens": 16}
    for truncation, status in ((None, 400), ("disabled", 400), ("auto", 200)):
        sent = body if truncation is None else {**body, "truncation": truncation}
        response = httpx.post(
            f"{responses_service.url}/v1/responses", json=sent, headers=bearer(initech), timeout=120
        )
        assert response.status_code == status, (truncation, response.text)
        if status == 400:
            error = response.json()["error"]
            assert error["param"] == "input" and error["code"] == "context_length_exceeded", error
            assert 'truncation "auto"' in error["message"]
        else:
            assert response.json()["truncation"] == "auto"


class Part(BaseModel):
    name: str
    gigawatts: float


def test_parse_fills_a_pydantic_model_and_function_tools_round_trip(responses_service: Service) -> None:
    # The base model's tenant generates (a quote is not JSON, nor a tool call).
    with openai_client(responses_service.url, "globex-key") as globex:
        parsed = globex.responses.parse(
            model="default", input="Describe a flux capacitor part.", text_format=Part, max_output_tokens=60
        )
        assert isinstance(parsed.output_parsed, Part)
        weather: FunctionToolParam = {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "strict": None,
        }
        called = globex.responses.create(
            model="default",
            input="What is the weather in Paris?",
            tools=[weather],
            tool_choice={"type": "function", "name": "get_weather"},
        )
        (call,) = [i for i in called.output if i.type == "function_call"]
        assert call.name == "get_weather" and call.call_id  # its arguments are the 135M model's to get right
        answered = globex.responses.create(
            model="default",
            previous_response_id=called.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
            max_output_tokens=20,
        )
        assert answered.status in ("completed", "incomplete") and answered.output[-1].type == "message"


def test_the_agents_sdk_answers_with_its_file_search_tool(
    responses_service: Service, initech: str, store: tuple[str, str]
) -> None:
    store_id, _ = store
    agents.set_tracing_disabled(True)  # its traces would go to OpenAI
    client = openai.AsyncOpenAI(base_url=f"{responses_service.url}/v1", api_key=initech, max_retries=0)
    model = agents.OpenAIResponsesModel(model="default", openai_client=client)
    agent = agents.Agent(
        name="support",
        instructions="Answer from the manuals.",
        model=model,
        tools=[agents.FileSearchTool(vector_store_ids=[store_id], include_search_results=True)],
    )
    result = asyncio.run(agents.Runner.run(agent, QUESTION))
    assert "1.21 gigawatts" in str(result.final_output)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "reasoning": {"effort": "low"}}, "reasoning"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": "hi", "colour": "red"}, "colour"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}]}, "input"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools"),
        ({"input": "hi", "include": ["reasoning.encrypted_content"]}, "include"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "text": {"format": {"type": "json_schema"}}}, "text.format"),
        (
            {
                "input": "hi",
                "tools": [{"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {"type": "near"}}],
            },
            "tools",
        ),
        ({"input": []}, "input"),
        (  # an output for a call never made
            {
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "function_call_output", "call_id": "c", "output": "1"},
                ]
            },
            "input",
        ),
    ],
)
def test_unsupported_or_malformed_fields_are_400_naming_them(
    responses_service: Service, initech: str, body: dict[str, Any], param: str
) -> None:
    response = httpx.post(
        f"{responses_service.url}/v1/responses", json=body, headers=bearer(initech), timeout=60
    )
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["param"] or "").startswith(param), response.text


def test_unknown_ids_are_404(responses_service: Service, initech: str) -> None:
    for body in (
        {"input": "hi", "previous_response_id": "resp_unknown"},
        {"input": "hi", "tools": [{"type": "file_search", "vector_store_ids": ["vs_unknown"]}]},
    ):
        response = httpx.post(
            f"{responses_service.url}/v1/responses", json=body, headers=bearer(initech), timeout=60
        )
        assert response.status_code == 404, response.text
