// The ragserve playground: chat with a tenant's bot, see the sources, rate the answers, swap adapters.
//
// Everything the API or a document says is put into the page as text (textContent, never as HTML), so a
// document holding <script> or <img onerror> shows as characters. The page loads no other script, and the
// server's Content-Security-Policy allows none. Keys live in sessionStorage: gone with the tab, never in a
// URL or a cookie.
"use strict";

const KEY_STORE = "ragserve.apiKey";
const ADMIN_KEY_STORE = "ragserve.adminKey";
const PREVIEW_CHARS = 280;
const FEEDBACK_MESSAGES = 50; // the most turns POST /v1/feedback keeps: the latest, up to the question

const state = {
  key: "",
  messages: [], // the conversation sent with each request: {role, content}
  controller: null, // the AbortController of the answer being streamed
};

const $ = (id) => document.getElementById(id);

// ---- DOM helpers: every text goes in as text ---------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "testid") node.dataset.testid = value;
    else if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// ---- errors ------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The API's error body is OpenAI's: {"error": {"message", "type", ...}}. A 429 says when to come back.
async function apiError(response) {
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = String(body.error.message);
    else if (body && body.detail) message = String(body.detail);
  } catch (_) {
    // not JSON: keep the status text
  }
  const wait = response.headers.get("Retry-After");
  if (response.status === 429 && wait && !/retry/i.test(message)) message += ` Retry in ${wait}s.`;
  if (response.status === 503) message += " The service is unavailable for now; try again shortly.";
  return new ApiError(response.status, message);
}

function describe(error) {
  if (error instanceof ApiError) return `${error.status}: ${error.message}`;
  if (error instanceof TypeError) return "The service could not be reached: " + error.message;
  return String(error && error.message ? error.message : error);
}

function showError(error) {
  const box = $("error");
  box.textContent = describe(error);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function api(path, { key = state.key, method = "GET", body, signal } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw await apiError(response);
  return response;
}

// ---- connecting: the key and the tenant's models -----------------------------------------------------

async function connect(event) {
  if (event) event.preventDefault();
  clearError();
  const key = $("api-key").value.trim();
  const select = $("model");
  select.replaceChildren();
  select.disabled = true;
  $("send").disabled = true;
  if (!key) {
    showError(new Error("Enter the tenant's API key."));
    return;
  }
  state.key = key;
  try {
    const models = await (await api("/v1/models")).json();
    for (const model of models.data) {
      const label = model.root && model.root !== model.id ? `${model.id} (${model.root})` : model.id;
      select.append(el("option", { value: model.id, text: label }));
    }
    select.value = "default";
    select.disabled = false;
    $("send").disabled = false;
    sessionStorage.setItem(KEY_STORE, key);
    $("message-input").focus();
  } catch (error) {
    state.key = "";
    showError(error);
  }
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
  sessionStorage.removeItem(ADMIN_KEY_STORE);
  state.key = "";
  $("api-key").value = "";
  $("admin-key").value = "";
  $("model").replaceChildren();
  $("model").disabled = true;
  $("send").disabled = true;
  $("admin-panel").replaceChildren();
}

// ---- server-sent events over a fetch stream (EventSource only does GET) --------------------------------

async function* sseData(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        const data = block
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

// ---- one answer ----------------------------------------------------------------------------------------

function addUserTurn(text) {
  const turn = el("li", { className: "turn user", testid: "question" }, el("div", { className: "bubble", text }));
  $("transcript").append(turn);
  return turn;
}

function addAssistantTurn() {
  const parts = {
    answer: el("div", { className: "bubble answer", testid: "answer" }),
    meta: el("div", { className: "meta", testid: "answer-meta" }),
    sources: el("ol", { className: "citations", testid: "citations" }),
    feedback: el("div", { className: "feedback" }),
  };
  parts.answer.dataset.chunks = "0";
  parts.answer.dataset.state = "streaming";
  const turn = el("li", { className: "turn assistant" }, parts.answer, parts.meta, parts.sources, parts.feedback);
  $("transcript").append(turn);
  turn.scrollIntoView({ block: "end" });
  return parts;
}

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function showMeta(parts, info) {
  const items = [];
  if (info.model) items.push(el("span", { testid: "answer-model", text: `answered by ${info.model}` }));
  if (info.usage) {
    const u = info.usage;
    items.push(el("span", { testid: "answer-tokens", text: `${u.prompt_tokens} prompt + ${u.completion_tokens} answer tokens` }));
  }
  if (info.ttft !== null) items.push(el("span", { testid: "answer-ttft", text: `first token ${formatMs(info.ttft)}` }));
  if (info.total !== null) items.push(el("span", { testid: "answer-total", text: `total ${formatMs(info.total)}` }));
  if (info.stopped) items.push(el("span", { className: "stopped", testid: "answer-stopped", text: "stopped" }));
  const g = info.grounding;
  if (g && typeof g.support === "number") {
    const replaced = g.replaced ? `; the model's answer (support ${Number(g.replaced.support).toFixed(2)}) was replaced by ${g.replaced.by === "quote" ? "a quote" : "the refusal"}` : "";
    items.push(el("span", { testid: "answer-support", text: `support ${g.support.toFixed(2)}${replaced}` }));
  }
  parts.meta.replaceChildren(...items);
}

// A piece of the answer's text with each [n] that names a source made a link to its card.
function linked(text, cards) {
  const pieces = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const card = cards.get(Number(match[1]));
    if (!card) continue;
    pieces.push(document.createTextNode(text.slice(last, match.index)));
    const link = el("a", { href: `#${card.id}`, className: "cite-ref", testid: "citation-ref", text: match[0] });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      card.scrollIntoView({ block: "nearest", behavior: "smooth" });
      card.classList.remove("flash");
      void card.offsetWidth; // restart the highlight
      card.classList.add("flash");
    });
    pieces.push(link);
    last = match.index + match[0].length;
  }
  pieces.push(document.createTextNode(text.slice(last)));
  return pieces;
}

// What hovering a claim says: the sources of the passage that supports it, or that none does.
function claimTitle(claim, citations) {
  const blocks = Array.isArray(claim.blocks) ? claim.blocks : [];
  const named = blocks.map((n) => {
    const citation = citations.find((c) => Number(c.index) === Number(n));
    return citation ? `[${n}] ${citation.source}${citation.heading ? ` (${citation.heading})` : ""}` : `[${n}]`;
  });
  const score = typeof claim.score === "number" ? ` (score ${claim.score.toFixed(2)})` : "";
  if (claim.supported) return `Supported by ${named.join(", ")}${score}`;
  const unknown = Array.isArray(claim.unknown) && claim.unknown.length
    ? `: ${claim.unknown.join(", ")} appear${claim.unknown.length === 1 ? "s" : ""} in no source` : "";
  return `Not supported by the sources${unknown}${score}`;
}

// The answer's text, each claim the grounding check scored marked as supported or not (its offsets count
// characters, as Python does: code points, not UTF-16 units), with [n] links inside.
function renderAnswer(node, text, cards, grounding, citations) {
  const chars = Array.from(text);
  const claims = grounding && Array.isArray(grounding.claims) ? grounding.claims.slice() : [];
  claims.sort((a, b) => a.start - b.start);
  const pieces = [];
  let pos = 0;
  for (const claim of claims) {
    if (!(claim.start >= pos && claim.end > claim.start && claim.end <= chars.length)) continue;
    pieces.push(...linked(chars.slice(pos, claim.start).join(""), cards));
    const span = el("span", {
      className: claim.supported ? "claim supported" : "claim unsupported",
      testid: "claim",
      title: claimTitle(claim, citations),
    });
    span.dataset.supported = claim.supported ? "true" : "false";
    span.append(...linked(chars.slice(claim.start, claim.end).join(""), cards));
    pieces.push(span);
    pos = claim.end;
  }
  pieces.push(...linked(chars.slice(pos).join(""), cards));
  node.replaceChildren(...pieces);
}

let cardCounter = 0;

function citationCard(citation) {
  const text = String(citation.text || "");
  const preview = text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS).trimEnd() + "…" : text;
  const score = typeof citation.score === "number" ? citation.score.toFixed(3) : "";
  const card = el(
    "li",
    { className: citation.cited ? "citation cited" : "citation", testid: "citation", id: `source-${++cardCounter}` },
    el(
      "div",
      { className: "card-head" },
      el("span", { className: "index", text: `[${citation.index}]` }),
      el("span", { className: "source", testid: "citation-source", text: String(citation.source || "") }),
      citation.heading ? el("span", { className: "heading", text: String(citation.heading) }) : null,
      score ? el("span", { className: "score", title: "retrieval score", text: score }) : null,
      citation.cited ? el("span", { className: "badge", text: citation.attributed ? "used" : "cited" }) : null,
    ),
    el("p", { className: "preview", testid: "citation-preview", text: preview }),
    text.length > PREVIEW_CHARS
      ? el("details", {}, el("summary", { text: "whole chunk" }), el("pre", { text }))
      : null,
  );
  card.dataset.cited = citation.cited ? "true" : "false";
  return card;
}

function showCitations(parts, citations, text, grounding) {
  const cards = new Map();
  const nodes = [];
  for (const citation of citations) {
    const card = citationCard(citation);
    cards.set(Number(citation.index), card);
    nodes.push(card);
  }
  // The cited cards first: they are what the answer rests on.
  nodes.sort((a, b) => Number(b.dataset.cited === "true") - Number(a.dataset.cited === "true"));
  parts.sources.replaceChildren(...nodes);
  renderAnswer(parts.answer, text, cards, grounding, citations);
}

function feedbackControls(parts, record) {
  const comment = el("input", {
    type: "text",
    maxlength: "2000",
    placeholder: "optional comment",
    testid: "feedback-comment",
    "aria-label": "comment on this answer",
  });
  const status = el("span", { className: "feedback-status", testid: "feedback-status", role: "status" });
  const up = el("button", { type: "button", testid: "thumbs-up", title: "a good answer", "aria-label": "thumbs up", text: "▲ good" });
  const down = el("button", { type: "button", testid: "thumbs-down", title: "a bad answer", "aria-label": "thumbs down", text: "▼ bad" });
  const rate = async (rating) => {
    up.disabled = down.disabled = true;
    status.textContent = "sending…";
    try {
      const body = { ...record, rating };
      const text = comment.value.trim();
      if (text) body.comment = text;
      const stored = await (await api("/v1/feedback", { method: "POST", body })).json();
      status.textContent = rating === "up" ? "thanks: rated good" : "thanks: rated bad";
      status.dataset.id = stored.id || "";
      (rating === "up" ? up : down).classList.add("chosen");
      comment.disabled = true;
    } catch (error) {
      status.textContent = "";
      up.disabled = down.disabled = false;
      showError(error);
    }
  };
  up.addEventListener("click", () => rate("up"));
  down.addEventListener("click", () => rate("down"));
  parts.feedback.replaceChildren(up, down, comment, status);
}

function setBusy(busy) {
  $("send").disabled = busy || !state.key;
  $("stop").disabled = !busy;
  $("model").disabled = busy || !state.key;
}

async function ask(question) {
  clearError();
  const history = state.messages.slice();
  state.messages.push({ role: "user", content: question });
  addUserTurn(question);
  const parts = addAssistantTurn();
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);

  const started = performance.now();
  const info = { model: null, usage: null, ttft: null, total: null, stopped: false, grounding: null };
  let text = "";
  let citations = [];
  let grounding = null;
  let responseId = "";
  let ok = false;
  try {
    const body = {
      model: $("model").value || "default",
      messages: state.messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    const maxTokens = Number($("max-tokens").value);
    if (Number.isInteger(maxTokens) && maxTokens > 0) body.max_tokens = maxTokens;
    const response = await api("/v1/chat/completions", { method: "POST", body, signal: controller.signal });
    for await (const chunk of sseData(response.body)) {
      if (chunk.error) throw new Error(`The answer failed mid-stream: ${chunk.error.message || "no reason given"}`);
      info.model = chunk.model || info.model;
      responseId = chunk.id || responseId;
      if (chunk.usage) info.usage = chunk.usage;
      if (chunk.citations) citations = chunk.citations;
      if (chunk.grounding) grounding = chunk.grounding;
      const delta = (chunk.choices || []).find((c) => (c.index || 0) === 0);
      const piece = delta && delta.delta ? delta.delta.content : "";
      if (piece) {
        if (info.ttft === null) info.ttft = performance.now() - started;
        text += piece;
        parts.answer.textContent = text;
        parts.answer.dataset.chunks = String(Number(parts.answer.dataset.chunks) + 1);
      }
    }
    ok = true;
  } catch (error) {
    if (error.name === "AbortError") {
      info.stopped = true;
      ok = text.length > 0;
    } else {
      showError(error);
      parts.answer.classList.add("failed");
      if (!text) parts.answer.textContent = describe(error);
    }
  } finally {
    state.controller = null;
    info.total = performance.now() - started;
    parts.answer.dataset.state = info.stopped ? "stopped" : ok ? "done" : "failed";
    setBusy(false);
  }
  info.grounding = grounding;
  showMeta(parts, info);
  if (!ok) {
    state.messages = history; // the question can be asked again as it was
    return;
  }
  state.messages.push({ role: "assistant", content: text });
  showCitations(parts, citations, text, grounding);
  feedbackControls(parts, {
    messages: state.messages.slice(0, -1).slice(-FEEDBACK_MESSAGES),
    answer: text,
    model: info.model || undefined,
    response_id: responseId || undefined,
    citations: citations.map((c) => ({ index: c.index, source: c.source, heading: c.heading || "", cited: !!c.cited })),
  });
}

function send(event) {
  event.preventDefault();
  const input = $("message-input");
  const question = input.value.trim();
  if (!question || state.controller || !state.key) return;
  input.value = "";
  ask(question);
}

function stop() {
  if (state.controller) state.controller.abort();
}

function newChat() {
  stop();
  state.messages = [];
  $("transcript").replaceChildren();
  clearError();
}

// ---- admin: each tenant's adapter, the registry's versions and their scores, the swap -------------------

function percent(value) {
  return typeof value === "number" ? `${Math.round(value * 100)}%` : "–";
}

function evalSummary(scores) {
  if (!scores) return "not evaluated";
  const parts = [];
  for (const setup of ["adapter", "prompted"]) {
    const row = scores[setup];
    if (row) parts.push(`${setup}: format ${percent(row.format_adherence)}, similarity ${percent(row.similarity)}`);
  }
  return parts.join(" · ") || "not evaluated";
}

async function loadAdmin(event) {
  if (event) event.preventDefault();
  clearError();
  const key = $("admin-key").value.trim();
  const panel = $("admin-panel");
  if (!key) {
    showError(new Error("Enter the admin key."));
    return;
  }
  try {
    const [tenants, registry] = await Promise.all([
      api("/admin/tenants", { key }).then((r) => r.json()),
      api("/admin/adapters", { key }).then((r) => r.json()),
    ]);
    sessionStorage.setItem(ADMIN_KEY_STORE, key);
    const versions = [];
    const rows = [];
    for (const adapter of registry.adapters || []) {
      for (const v of adapter.versions || []) {
        const ref = `${adapter.name}@${v.version}`;
        versions.push(ref);
        rows.push(
          el(
            "tr",
            { testid: "adapter-version" },
            el("td", { text: ref }),
            el("td", { text: v.created_at || "–" }),
            el("td", { text: evalSummary(v.eval) }),
            el("td", { text: (v.tenants || []).join(", ") || "–" }),
          ),
        );
      }
    }
    const registryTable = el(
      "table",
      { className: "registry" },
      el("thead", {}, el("tr", {}, ...["version", "created", "eval", "tenants"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows),
    );
    const tenantRows = (tenants.tenants || []).map((tenant) => tenantRow(key, tenant.name, tenant.adapter, versions));
    panel.replaceChildren(
      el("h2", { text: "Tenants" }),
      el(
        "table",
        { className: "tenants" },
        el("thead", {}, el("tr", {}, ...["tenant", "adapter", "swap to"].map((h) => el("th", { text: h })))),
        el("tbody", {}, ...tenantRows),
      ),
      el("h2", { text: "Adapter registry" }),
      rows.length ? registryTable : el("p", { text: "No adapters in the registry." }),
    );
  } catch (error) {
    panel.replaceChildren();
    showError(error);
  }
}

function tenantRow(key, tenant, current, versions) {
  const select = el("select", { testid: "swap-select", "aria-label": `adapter for ${tenant}` });
  select.append(el("option", { value: "", text: "base model (no adapter)" }));
  for (const ref of versions) select.append(el("option", { value: ref, text: ref }));
  select.value = versions.includes(current) ? current : "";
  const button = el("button", { type: "button", testid: "swap", text: "Swap" });
  const shown = el("td", { testid: "tenant-adapter", text: current || "base model" });
  button.addEventListener("click", async () => {
    clearError();
    button.disabled = true;
    try {
      const done = await (
        await api(`/admin/tenants/${encodeURIComponent(tenant)}/adapter`, {
          key,
          method: "PUT",
          body: { adapter: select.value },
        })
      ).json();
      shown.textContent = done.adapter || "base model";
      if (state.key) await connect(); // the tenant's model list may have changed
      await loadAdmin();
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
    }
  });
  const row = el("tr", { testid: "tenant-row" }, el("td", { text: tenant }), shown, el("td", {}, select, button));
  row.dataset.tenant = tenant;
  return row;
}

// ---- wiring ----------------------------------------------------------------------------------------------

function start() {
  $("connect").addEventListener("submit", connect);
  $("forget").addEventListener("click", forgetKey);
  $("composer").addEventListener("submit", send);
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", newChat);
  $("admin-connect").addEventListener("submit", loadAdmin);
  $("message-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  const saved = sessionStorage.getItem(KEY_STORE);
  if (saved) {
    $("api-key").value = saved;
    connect();
  }
  const savedAdmin = sessionStorage.getItem(ADMIN_KEY_STORE);
  if (savedAdmin) $("admin-key").value = savedAdmin;
}

document.addEventListener("DOMContentLoaded", start);
