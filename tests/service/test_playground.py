"""The playground page in a real browser (Debian's chromium, driven by Playwright) against the real service,
vLLM and index: a key, a streamed answer with its sources, stop, errors, feedback, the admin swap, and
document markup shown as text."""

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright
from typer.testing import CliRunner

from ragserve.cli.main import app
from ragserve.evaluation.qa import load_qa
from ragserve.service.routes.playground import CONTENT_SECURITY_POLICY
from tests.service.conftest import ADAPTER, KEYS, Service, service_fixture
from tests.support.documents import write

playground_service = service_fixture("playground")

_PAGE_FILES = Path(__file__).resolve().parents[2] / "service" / "playground"
_WAIT_MS = 120_000  # an answer on a CPU, behind whatever else the machine runs


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system's chromium (make setup installs Debian's): `playwright install` cannot download here.
    Per module, not per session: Playwright's sync API keeps an event loop running in the main thread while
    it is started, and later tests call asyncio.run there."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium or not Path(chromium).exists():
        pytest.fail("no chromium: run `make setup` (it installs Debian's), or set CHROMIUM=/path/to/chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context each test: its own sessionStorage."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def console_errors(page: Page) -> Iterator[list[str]]:
    """What the page logged as errors, and its uncaught exceptions: a CSP violation is one of them."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    yield errors


def _connect(page: Page, service: Service, key: str) -> None:
    page.goto(f"{service.url}/playground")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("connect").click()


def _ask(page: Page, question: str) -> None:
    page.get_by_test_id("message-input").fill(question)
    page.get_by_test_id("send").click()


def _admin(service: Service, method: str, path: str, body: dict[str, str]) -> None:
    """An admin API call the test makes itself, outside the page."""
    headers = {"Authorization": "Bearer admin-key"}
    httpx.request(method, f"{service.url}{path}", json=body, headers=headers, timeout=120).raise_for_status()


def _last_answer_done(page: Page) -> None:
    expect(page.get_by_test_id("answer").last).to_have_attribute("data-state", re.compile("done|stopped"),
                                                                 timeout=_WAIT_MS)  # fmt: skip


def test_the_page_is_static_and_locked_down(playground_service: Service) -> None:
    response = httpx.get(f"{playground_service.url}/playground", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    html = response.text
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/playground/playground.js" defer>']
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    for name, kind in (("playground.js", "text/javascript"), ("playground.css", "text/css")):
        asset = httpx.get(f"{playground_service.url}/playground/{name}", timeout=10)
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert asset.headers["x-content-type-options"] == "nosniff"
    missing = httpx.get(f"{playground_service.url}/playground/..%2Fapp.py", timeout=10)
    assert missing.status_code == 404 and "error" in missing.json()
    # Nothing the API or a document says is ever parsed as HTML.
    script = (_PAGE_FILES / "playground.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_ask_and_see_the_streamed_answer_with_its_sources(
    page: Page, playground_service: Service, console_errors: list[str], tmp_path: Path
) -> None:
    _connect(page, playground_service, KEYS["acme"])
    expect(page.get_by_test_id("model")).to_be_enabled()
    expect(page.get_by_test_id("model")).to_have_value("default")
    _ask(page, "How long does the Roadrunner R2 battery run on one charge?")

    answer = page.get_by_test_id("answer").last
    expect(answer).not_to_be_empty(timeout=_WAIT_MS)  # the first tokens, before the stream ends
    _last_answer_done(page)
    assert int(answer.get_attribute("data-chunks") or 0) > 1, "the answer arrived in one piece, not streamed"
    sources = page.get_by_test_id("citation-source").all_inner_texts()
    assert "battery.md" in sources
    expect(page.get_by_test_id("answer-model").last).to_contain_text(ADAPTER)  # which adapter answered
    expect(page.get_by_test_id("answer-tokens").last).to_contain_text("answer tokens")
    expect(page.get_by_test_id("answer-ttft").last).to_contain_text("first token")
    expect(page.get_by_test_id("error")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('ragserve.apiKey')") == KEYS["acme"]
    assert KEYS["acme"] not in page.url

    # A second turn carries the first: the request holds both questions and the first answer.
    with page.expect_request("**/v1/chat/completions") as sent:
        _ask(page, "And what warranty do the robots carry?")
    _last_answer_done(page)
    messages = json.loads(sent.value.post_data or "{}")["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    page.screenshot(path=tmp_path / "playground.png", full_page=True)
    assert console_errors == []


def test_unsupported_sentences_are_marked_and_each_claim_names_its_source(
    page: Page, playground_service: Service, console_errors: list[str]
) -> None:
    """The fixture's tenants only flag an unsupported answer, so the page shows the model's own answer with
    its grounding: the base model never refuses, and invents an answer to what the documents do not say."""
    _connect(page, playground_service, KEYS["globex"])
    _ask(page, "What is the phone number of Globex's support line?")
    _last_answer_done(page)
    claims = page.get_by_test_id("claim")
    expect(claims.first).to_be_visible()
    unsupported = page.locator('[data-testid="claim"][data-supported="false"]')
    expect(unsupported.first).to_have_attribute("title", re.compile("^Not supported by the sources"))
    expect(page.get_by_test_id("answer-support").last).to_contain_text("support ")
    # A supported claim names its source: ask what the documents do say.
    _ask(page, "Within how many days does Globex refund a damaged bag?")
    _last_answer_done(page)
    supported = page.get_by_test_id("answer").last.locator('[data-testid="claim"][data-supported="true"]')
    expect(supported.first).to_have_attribute("title", re.compile(r"^Supported by .*refunds\.md"))
    assert console_errors == []


def test_stop_cancels_the_stream(page: Page, playground_service: Service) -> None:
    # The tiny model may end an answer early on its own; asking vLLM to ignore its end token keeps the stream
    # going until the stop button is what ends it.
    def long_answer(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        route.continue_(post_data=json.dumps({**body, "ignore_eos": True}))

    page.route("**/v1/chat/completions", long_answer)
    _connect(page, playground_service, KEYS["globex"])
    page.get_by_test_id("max-tokens").fill("1200")
    _ask(page, "Count from one to one thousand.")
    answer = page.get_by_test_id("answer").last
    expect(answer).to_have_attribute("data-chunks", re.compile(r"^([5-9]|\d\d+)$"), timeout=_WAIT_MS)
    page.get_by_test_id("stop").click()
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(page.get_by_test_id("answer-stopped")).to_be_visible()
    chunks = answer.get_attribute("data-chunks")
    page.wait_for_timeout(1500)
    assert answer.get_attribute("data-chunks") == chunks, "tokens kept arriving after stop"
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("stop")).to_be_disabled()

    page.unroute("**/v1/chat/completions")
    page.get_by_test_id("max-tokens").fill("")
    _ask(page, "What is Globex's refund window?")  # the service took the next question as usual
    _last_answer_done(page)
    expect(page.get_by_test_id("answer").last).to_have_attribute("data-state", "done")


def test_a_wrong_key_shows_the_401(page: Page, playground_service: Service) -> None:
    _connect(page, playground_service, "not-a-key")
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("401")
    expect(error).to_contain_text("unknown API key")
    expect(page.get_by_test_id("send")).to_be_disabled()
    assert page.evaluate("sessionStorage.getItem('ragserve.apiKey')") is None


@pytest.mark.parametrize(
    ("status", "body", "headers", "shown"),
    [
        (
            429,
            {"error": {"message": "too many requests in flight; retry in 3s"}},
            {"Retry-After": "3"},
            "429",
        ),
        (503, {"error": {"message": "vLLM is unreachable"}}, {}, "unavailable"),
        (404, {"error": {"message": "model 'x' does not exist"}}, {}, "does not exist"),
    ],
)
def test_api_errors_are_messages_in_the_page(
    page: Page,
    playground_service: Service,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    shown: str,
) -> None:
    """The page's error display for statuses the live service gives only under load or outage: the answer
    to the chat request is replaced in the browser (a unit check of the page's error path)."""
    _connect(page, playground_service, KEYS["globex"])
    expect(page.get_by_test_id("send")).to_be_enabled()
    page.route(
        "**/v1/chat/completions",
        lambda route: route.fulfill(status=status, json=body, headers=headers),
    )
    _ask(page, "Anything?")
    error = page.get_by_test_id("error")
    expect(error).to_contain_text(str(status))
    expect(error).to_contain_text(shown)
    expect(page.get_by_test_id("answer").last).to_have_attribute("data-state", "failed")
    expect(page.get_by_test_id("send")).to_be_enabled()


def test_thumbs_up_is_stored_and_exported(page: Page, playground_service: Service, tmp_path: Path) -> None:
    _connect(page, playground_service, KEYS["globex"])
    _ask(page, "How many days does Globex take to refund a damaged bag?")
    _last_answer_done(page)
    page.get_by_test_id("feedback-comment").last.fill("right, and cited")
    page.get_by_test_id("thumbs-up").last.click()
    expect(page.get_by_test_id("feedback-status").last).to_contain_text("thanks")

    feedback = playground_service.state.feedback
    record = feedback.read("globex").records[-1].model_dump()
    assert record["rating"] == "up" and record["comment"] == "right, and cited"
    assert record["messages"][-1]["content"].startswith("How many days")
    assert record["answer"] == page.get_by_test_id("answer").last.text_content()
    assert "acme" not in feedback.tenants()

    # Exported as a labelled question that `ragserve eval answers` loads, accepting the answer it was given.
    out = tmp_path / "export"
    data_dir = str(playground_service.data_dir)
    result = CliRunner().invoke(app, ["feedback", "export", "--tenant", "globex", "--data-dir", data_dir,
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = [item for item in load_qa(out / "qa.jsonl") if item.id == record["id"]]
    assert row.question == record["messages"][-1]["content"]
    assert row.unanswerable or row.match(record["answer"])


def test_document_markup_renders_as_text(page: Page, playground_service: Service) -> None:
    write(
        playground_service.docs["globex"],
        "notice.txt",
        "Security notice. The vault code word is pelican. "
        "<script>window.__xss = 'script'</script> <img src=x onerror=\"window.__xss = 'img'\"> "
        "<b>bold</b>",
    )
    _admin(playground_service, "POST", "/admin/reindex", {"tenant": "globex"})
    _connect(page, playground_service, KEYS["globex"])
    _ask(page, "What is the vault code word in the security notice?")
    _last_answer_done(page)
    card = page.get_by_test_id("citation").filter(has_text="notice.txt")
    expect(card).to_have_count(1)
    expect(card.get_by_test_id("citation-preview")).to_contain_text("<script>window.__xss")
    expect(card.get_by_test_id("citation-preview")).to_contain_text("<img src=x onerror=")
    assert page.evaluate("window.__xss === undefined")
    assert page.locator("#transcript img, #transcript script, #transcript b").count() == 0


def test_the_admin_panel_swaps_a_tenants_adapter(page: Page, playground_service: Service) -> None:
    page.goto(f"{playground_service.url}/playground")
    page.locator("#admin-details > summary").click()
    page.get_by_test_id("admin-key").fill("admin-key")
    page.get_by_test_id("admin-load").click()
    acme = page.locator("[data-testid=tenant-row][data-tenant=acme]")
    expect(acme.get_by_test_id("tenant-adapter")).to_have_text("acme-style@v1")
    for version in ("acme-style@v1", "acme-style@v2"):  # the registry may hold others, the bundled ones
        expect(page.get_by_test_id("adapter-version").filter(has_text=version)).to_have_count(1)
    try:
        acme.get_by_test_id("swap-select").select_option("acme-style@v2")
        acme.get_by_test_id("swap").click()
        expect(acme.get_by_test_id("tenant-adapter")).to_have_text("acme-style@v2", timeout=_WAIT_MS)
        expect(page.get_by_test_id("error")).to_be_hidden()
    finally:
        _admin(playground_service, "PUT", "/admin/tenants/acme/adapter", {"adapter": "acme-style@v1"})

    page.get_by_test_id("admin-key").fill("wrong")
    page.get_by_test_id("admin-load").click()
    expect(page.get_by_test_id("error")).to_contain_text("401")
