// nstcore serve: the start form, and every run (queued, running, earlier) as a card.
"use strict";
const $ = (id) => document.getElementById(id);
let refs = {content: null, styles: []};  // stored uploads to run again without uploading

function showError(text) {
  $("error").hidden = !text;
  $("error").textContent = text || "";
}

async function start(event) {
  event.preventDefault();
  showError("");
  const data = new FormData($("start"));
  if (!$("content").files.length && refs.content) data.append("content_ref", refs.content);
  if (!$("styles").files.length) for (const name of refs.styles) data.append("style_ref", name);
  $("go").disabled = true;
  try {
    const response = await fetch("/api/runs", {method: "POST", body: data});
    const answer = await response.json().catch(() => ({error: `the server answered ${response.status}`}));
    if (!response.ok) { showError(answer.error); return; }
    location.href = answer.url;
  } catch (e) {
    showError(`the server could not be reached: ${e}`);
  } finally {
    $("go").disabled = false;
  }
}

function again(request) {
  refs = {content: request.content, styles: request.styles || []};
  $("content-ref").textContent = request.content ? `(or keep ${request.content})` : "";
  $("styles-ref").textContent = refs.styles.length ? `(or keep ${refs.styles.join(", ")})` : "";
  for (const name of ["preset", "size", "optimizer", "steps", "style_weight", "preserve_color", "style_blend"]) {
    const value = (request.options || {})[name];
    $(name).value = value === undefined || value === null ? "" : String(value);
  }
  window.scrollTo(0, 0);
}

function card(run) {
  const div = document.createElement("div");
  div.className = "card";
  const link = document.createElement("a");
  link.href = `/runs/${encodeURIComponent(run.id)}`;
  if (run.output || run.status === "running") {
    const img = document.createElement("img");
    img.src = `/api/runs/${encodeURIComponent(run.id)}/picture`;
    img.alt = run.title;
    img.loading = "lazy";
    link.append(img);
  }
  const title = document.createElement("div");
  title.textContent = run.title || run.id;
  link.append(title);
  const status = document.createElement("span");
  status.className = `badge ${run.status}`;
  status.textContent = run.status;
  const settings = document.createElement("div");
  settings.className = "muted";
  const s = run.settings || {};
  settings.textContent = [s.preset && `preset ${s.preset}`, s.size && `${s.size} px`, s.optimizer,
    s.steps && `${s.steps} steps`, s.style_weight && `style ${s.style_weight}`,
    s.preserve_color && s.preserve_color !== "none" && `colour ${s.preserve_color}`]
    .filter(Boolean).join(" · ");
  div.append(link, status, settings);
  if (run.request && run.request.content) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "run again with changes";
    button.addEventListener("click", () => again(run.request));
    div.append(button);
  }
  return div;
}

async function refresh() {
  try {
    const runs = await (await fetch("/api/runs")).json();
    const gallery = $("gallery");
    if (runs.length) gallery.replaceChildren(...runs.map(card));
  } catch (e) { /* the next refresh tries again */ }
}

$("start").addEventListener("submit", start);
refresh();
setInterval(refresh, 3000);
