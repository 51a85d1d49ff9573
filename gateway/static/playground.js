// The playground: runs a scenario through the same Responses stream (/v1/responses) that
// outside clients use, and draws each output item by the agent it names.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { controller: null, timer: null, started: 0, openTurn: null, tools: new Map(), models: [] };

function headers() {
  const h = { "content-type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["authorization"] = "Bearer " + key;
  return h;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text) { $("status").textContent = text; }

function showError(message) {
  $("error").hidden = false;
  $("error").textContent = message;
}

async function loadScenarios() {
  $("api-key").value = localStorage.getItem("gateway-key") || "";
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    state.models = body.data;
    const select = $("scenario");
    select.replaceChildren(...body.data.map((m) => { const o = el("option", "", m.id); o.value = m.id; return o; }));
    onScenarioChange();
  } catch (err) {
    showError("Could not list scenarios: " + err.message);
  }
}

function onScenarioChange() {
  const model = state.models.find((m) => m.id === $("scenario").value);
  $("description").textContent = model ? model.description : "";
  if (model && model.default_task && !$("task").dataset.edited) $("task").value = model.default_task;
}

function startTurn(agent) {
  const section = el("section", "turn streaming");
  section.dataset.agent = agent;
  section.append(el("h3", "agent", agent), el("div", "text"));
  $("transcript").append(section);
  state.openTurn = section;
  return section;
}

function closeTurn() {
  if (state.openTurn) {
    state.openTurn.classList.remove("streaming");
    // the stop word is for the team, not for the reader
    const text = state.openTurn.querySelector(".text");
    text.textContent = text.textContent.replace(/\s*\bTERMINATE\b[.!]?\s*$/, "");
    renderFences(text);
  }
  state.openTurn = null;
}

// One Responses stream event (POST /v1/responses, stream: true): inner turns are reasoning
// items, tool calls function_call / function_call_output items, the answer the message item;
// each item names its agent in the extra `agent` field.
function onEvent(ev) {
  const item = ev.item || {};
  switch (ev.type) {
    case "response.output_item.added":
      if (item.type === "reasoning") { closeTurn(); startTurn(item.agent); }
      else if (item.type === "function_call_output") toolResult(item);
      else if (item.type === "message") {  // the answer: its agent's turn is already shown
        closeTurn();
        $("final").hidden = false;
        $("final-agent").textContent = item.agent ? `· ${item.agent}` : "";
      }
      break;
    case "response.reasoning_text.delta":
      if (state.openTurn) state.openTurn.querySelector(".text").textContent += ev.delta;
      break;
    case "response.output_text.delta":
      $("final-text").textContent += ev.delta;
      break;
    case "response.output_item.done":
      if (item.type === "function_call") toolCall(item);
      else if (item.type === "reasoning" || item.type === "message") closeTurn();
      break;
    case "response.completed": {
      const u = ev.response.usage;
      if (u) $("usage").textContent = `${u.total_tokens} tokens (${u.input_tokens} in / ${u.output_tokens} out)`;
      const answer = ev.response.output.find((i) => i.type === "message");
      const files = answer && answer.content[0] ? answer.content[0].annotations || [] : [];
      const shown = files.filter((a) => a.type === "container_file_citation").map((a) => ({
        id: a.file_id, filename: a.filename, media_type: a.media_type, bytes: a.bytes, agent: answer.agent,
      }));
      if (shown.length) showFiles(shown, headers(), $("transcript"));
      return "done";
    }
    case "response.failed":
      throw new Error(ev.response.error ? ev.response.error.message : "the run failed");
    case "response.incomplete":
      return "stopped";
    case "error":
      throw new Error(ev.message);
  }
  return null;
}

function toolCall(item) {
  closeTurn();
  const details = el("details", "tool");
  details.dataset.agent = item.agent;
  details.append(el("summary", "", `🔧 ${item.agent} → ${item.name}(…)`), toolCallBody(item.name, item.arguments));
  if (item.name === "python") details.open = true;  // the code is the point: show it
  $("transcript").append(details);
  state.tools.set(item.call_id, details);
}

function toolResult(item) {
  let details = state.tools.get(item.call_id);
  if (!details) {
    details = el("details", "tool");
    details.append(el("summary", "", `🔧 ${item.name}`));
    $("transcript").append(details);
  }
  details.querySelector("summary").textContent += item.is_error ? " ✗ error" : " ✓";
  details.append(el("pre", "result" + (item.is_error ? " error" : ""), item.output));
}

async function run(event) {
  event.preventDefault();
  const task = $("task").value.trim();
  if (!task || state.controller) return;
  localStorage.setItem("gateway-key", $("api-key").value.trim());
  $("transcript").replaceChildren();
  $("final").hidden = true;
  $("final-text").textContent = "";
  $("error").hidden = true;
  $("usage").textContent = "– tokens";
  state.tools.clear();
  state.openTurn = null;
  state.controller = new AbortController();
  $("run").disabled = true;
  $("stop").disabled = false;
  setStatus("running…");
  state.started = performance.now();
  state.timer = setInterval(() => {
    $("elapsed").textContent = `${((performance.now() - state.started) / 1000).toFixed(1)} s`;
  }, 100);
  let finished = false;
  let outcome = null;
  try {
    const response = await fetch("/v1/responses", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({ model: $("scenario").value, input: task, stream: true }),
      signal: state.controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error ? `${response.status}: ${body.error.message}` : response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of block.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const ended = onEvent(JSON.parse(line.slice(6)));
          if (ended) outcome = ended;
        }
      }
    }
    finished = outcome === "done";
    setStatus(outcome || "ended without an answer");
  } catch (err) {
    if (err.name === "AbortError") setStatus("stopped");
    else { setStatus("error"); showError(err.message); }
  } finally {
    closeTurn();
    renderFences($("final-text"));
    clearInterval(state.timer);
    if (!finished || $("elapsed").textContent === "") {
      $("elapsed").textContent = `${((performance.now() - state.started) / 1000).toFixed(1)} s`;
    }
    state.controller = null;
    $("run").disabled = false;
    $("stop").disabled = true;
  }
}

function stop() {
  // aborting the request closes the connection; the gateway cancels the run
  if (state.controller) state.controller.abort();
}

$("form").addEventListener("submit", run);
$("stop").addEventListener("click", stop);
$("scenario").addEventListener("change", onScenarioChange);
$("task").addEventListener("input", () => { $("task").dataset.edited = "1"; });
$("api-key").addEventListener("change", () => { localStorage.setItem("gateway-key", $("api-key").value.trim()); loadScenarios(); });
loadScenarios();
