// The playground: runs a scenario through the same /v1/chat/completions stream any
// client uses, and draws the extra `agent` / `event` fields of each chunk.
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

function onChunk(chunk) {
  if (chunk.usage) {
    const u = chunk.usage;
    $("usage").textContent = `${u.total_tokens} tokens (${u.prompt_tokens} in / ${u.completion_tokens} out)`;
  }
  const ev = chunk.event;
  const agent = chunk.agent;
  const delta = chunk.choices && chunk.choices[0] ? chunk.choices[0].delta : {};
  if (ev) {
    switch (ev.type) {
      case "turn_start": closeTurn(); startTurn(agent); break;
      case "delta":
        if (!state.openTurn || state.openTurn.dataset.agent !== agent) { closeTurn(); startTurn(agent); }
        state.openTurn.querySelector(".text").textContent += ev.text;
        break;
      case "turn_end": closeTurn(); break;
      case "message": {
        closeTurn();
        const section = startTurn(agent);
        section.querySelector(".text").textContent = ev.text;
        closeTurn();
        break;
      }
      case "tool_call": {
        closeTurn();
        const details = el("details", "tool");
        details.dataset.agent = agent;
        details.append(el("summary", "", `🔧 ${agent} → ${ev.name}(…)`), toolCallBody(ev.name, ev.arguments));
        if (ev.name === "python") details.open = true;  // the code is the point: show it
        $("transcript").append(details);
        state.tools.set(ev.call_id, details);
        break;
      }
      case "tool_result": {
        let details = state.tools.get(ev.call_id);
        if (!details) {
          details = el("details", "tool");
          details.append(el("summary", "", `🔧 ${ev.name}`));
          $("transcript").append(details);
        }
        details.querySelector("summary").textContent += ev.is_error ? " ✗ error" : " ✓";
        details.append(el("pre", "result" + (ev.is_error ? " error" : ""), ev.content));
        break;
      }
      case "files":
        showFiles(ev.files, headers(), $("transcript"));
        break;
      case "final":
        $("elapsed").textContent = `${ev.elapsed_s.toFixed(1)} s`;
        break;
    }
  }
  if (delta && typeof delta.content === "string" && delta.content) {
    closeTurn();
    $("final").hidden = false;
    $("final-agent").textContent = agent ? `· ${agent}` : "";
    $("final-text").textContent += delta.content;
  }
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
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({
        model: $("scenario").value,
        messages: [{ role: "user", content: task }],
        stream: true,
        stream_options: { include_usage: true },
      }),
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
          const data = line.slice(6);
          if (data === "[DONE]") { finished = true; continue; }
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          onChunk(chunk);
        }
      }
    }
    setStatus(finished ? "done" : "ended without an answer");
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
