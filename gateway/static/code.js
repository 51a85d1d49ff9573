// Code and files in the playground: Python highlighted (a small tokenizer: the page loads
// nothing from the network), fenced code blocks in messages, images the code made inline.
"use strict";

const PY_KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else " +
  "except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield").split(" "));
const PY_BUILTINS = new Set("print len range open str int float list dict set tuple sum min max abs enumerate zip sorted".split(" "));
const PY_TOKEN = /(#[^\n]*)|("""[\s\S]*?"""|'''[\s\S]*?'''|[rbfu]{0,2}"(?:\\.|[^"\\\n])*"|[rbfu]{0,2}'(?:\\.|[^'\\\n])*')|(\b\d[\d_]*(?:\.\d*)?(?:e[+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function highlightPython(code) {
  let html = "";
  let last = 0;
  for (const m of code.matchAll(PY_TOKEN)) {
    html += escapeHtml(code.slice(last, m.index));
    const [text, comment, string, number, name] = m;
    let cls = null;
    if (comment) cls = "tok-comment";
    else if (string) cls = "tok-string";
    else if (number) cls = "tok-number";
    else if (name && PY_KEYWORDS.has(name)) cls = "tok-keyword";
    else if (name && PY_BUILTINS.has(name)) cls = "tok-builtin";
    html += cls ? `<span class="${cls}">${escapeHtml(text)}</span>` : escapeHtml(text);
    last = m.index + text.length;
  }
  return html + escapeHtml(code.slice(last));
}

function codeBlock(code, language) {
  const pre = document.createElement("pre");
  pre.className = "code";
  const inner = document.createElement("code");
  inner.className = "language-" + (language || "text");
  if (!language || language === "python" || language === "py") inner.innerHTML = highlightPython(code);
  else inner.textContent = code;
  pre.append(inner);
  return pre;
}

// Replace a text node's ```lang fenced blocks with highlighted <pre> blocks.
function renderFences(container) {
  const text = container.textContent;
  if (!text.includes("```")) return;
  const parts = text.split(/```([\w+-]*)\n([\s\S]*?)```/g);
  container.replaceChildren();
  for (let i = 0; i < parts.length; i += 3) {
    if (parts[i]) container.append(document.createTextNode(parts[i]));
    if (i + 2 < parts.length) container.append(codeBlock(parts[i + 2], parts[i + 1] || "python"));
  }
}

// The `python` tool's argument is {"code": "..."}; anything else is shown as it came.
function toolCallBody(name, argumentsJson) {
  if (name === "python") {
    try {
      const args = JSON.parse(argumentsJson);
      if (typeof args.code === "string") return codeBlock(args.code, "python");
    } catch (err) { /* not JSON: fall through */ }
  }
  const pre = document.createElement("pre");
  pre.className = "args";
  pre.textContent = argumentsJson;
  return pre;
}

// Files the run's code wrote: images inline, other files as download links.
async function showFiles(files, headers, into) {
  const box = document.createElement("div");
  box.className = "files";
  into.append(box);
  for (const f of files) {
    const response = await fetch(`/v1/files/${f.id}/content`, { headers });
    if (!response.ok) continue;
    const url = URL.createObjectURL(await response.blob());
    const figure = document.createElement("figure");
    figure.dataset.fileId = f.id;
    if (f.media_type.startsWith("image/")) {
      const img = document.createElement("img");
      img.src = url;
      img.alt = f.filename;
      figure.append(img);
    }
    const caption = document.createElement("figcaption");
    const link = document.createElement("a");
    link.href = url;
    link.download = f.filename;
    link.textContent = f.filename;
    caption.append(link, document.createTextNode(` · ${f.media_type} · ${f.bytes} bytes · ${f.agent}`));
    figure.append(caption);
    box.append(figure);
  }
}
