// The run page: a snapshot of the run, then its events (server-sent) as steps end.
"use strict";
const runId = decodeURIComponent(location.pathname.split("/").pop());
const api = `/api/runs/${encodeURIComponent(runId)}`;
const $ = (id) => document.getElementById(id);
const rows = [];      // one per step: {step, size, total, terms}
const scaleStarts = []; // steps where a new scale began
const colours = ["#1d1d1f", "#2b59c3", "#c3462b", "#2b9c4a", "#9c2b8f", "#c39a2b"];
let drawPending = false;

function text(id, value) { $(id).textContent = value; }
function fmt(x) { return x === null || x === undefined ? "-" : Number(x).toPrecision(4); }
function clock(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? `${h}h` : "") + `${String(m).padStart(h ? 2 : 1, "0")}m${String(r).padStart(2, "0")}s`;
}

function setStatus(status, message, output) {
  const badge = $("status");
  badge.textContent = status;
  badge.className = `badge ${status}`;
  if (message) {
    $("message").hidden = false;
    $("message").textContent = message;
    $("message").className = status === "failed" || status === "interrupted" ? "message error" : "message";
  }
  if (output) {
    $("download").hidden = false;
    $("download-link").href = `${api}/output`;
    $("download-link").setAttribute("download", output);
    text("download-name", output);
  }
}

function showSnapshot(run) {
  text("title", run.title || `run ${run.id}`);
  document.title = `nstcore: ${run.title || run.id}`;
  const inputs = $("inputs");
  inputs.replaceChildren();
  for (const name of run.inputs) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = `${api}/inputs/${encodeURIComponent(name)}`;
    img.alt = name;
    const caption = document.createElement("figcaption");
    caption.textContent = name;
    figure.append(img, caption);
    inputs.append(figure);
  }
  const table = $("settings");
  table.replaceChildren();
  for (const [key, value] of Object.entries(run.settings)) {
    if (value === null || value === undefined || (typeof value === "object" && !Array.isArray(value) && !Object.keys(value).length)) continue;
    const tr = document.createElement("tr");
    const k = document.createElement("td"), v = document.createElement("td");
    k.textContent = key;
    v.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    tr.append(k, v);
    table.append(tr);
  }
  setStatus(run.status, run.message, run.output);
}

function onStep(event) {
  if (rows.length && rows[rows.length - 1].size !== event.size) scaleStarts.push(event.step);
  rows.push({step: event.step, size: event.size, total: event.total, terms: event.terms});
  text("step", `${event.step} / ${event.steps}`);
  text("sps", event.seconds.toFixed(2));
  text("eta", clock(event.eta));
  text("loss", fmt(event.total));
  text("scale", `${event.size} px`);
  if (!drawPending) { drawPending = true; requestAnimationFrame(drawChart); }
}

function onPicture(event) {
  const img = $("picture");
  img.src = `${api}/picture?v=${event.version}`;
  img.hidden = false;
  $("waiting").hidden = true;
}

function drawChart() {
  drawPending = false;
  const canvas = $("chart"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 34;
  ctx.clearRect(0, 0, w, h);
  if (!rows.length) return;
  const names = ["total", ...Object.keys(rows[0].terms)];
  const value = (row, name) => (name === "total" ? row.total : row.terms[name]);
  let lo = Infinity, hi = -Infinity;
  for (const row of rows) for (const name of names) {
    const v = value(row, name);
    if (v > 0 && isFinite(v)) { lo = Math.min(lo, Math.log10(v)); hi = Math.max(hi, Math.log10(v)); }
  }
  if (!isFinite(lo)) return;
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const steps = rows[rows.length - 1].step, first = rows[0].step;
  const x = (step) => pad + (w - pad - 8) * (steps === first ? 1 : (step - first) / (steps - first));
  const y = (v) => h - pad + 10 - (h - pad) * (Math.log10(v) - lo) / (hi - lo);
  ctx.strokeStyle = "#d2d2d7"; ctx.fillStyle = "#6e6e73"; ctx.font = "11px system-ui";
  for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) {
    ctx.beginPath(); ctx.moveTo(pad, y(10 ** e)); ctx.lineTo(w, y(10 ** e)); ctx.stroke();
    ctx.fillText(`1e${e}`, 2, y(10 ** e) + 4);
  }
  ctx.setLineDash([4, 4]);
  for (const step of scaleStarts) { ctx.beginPath(); ctx.moveTo(x(step), 0); ctx.lineTo(x(step), h - pad + 10); ctx.stroke(); }
  ctx.setLineDash([]);
  names.forEach((name, i) => {
    ctx.strokeStyle = colours[i % colours.length]; ctx.lineWidth = name === "total" ? 2 : 1.2;
    ctx.beginPath();
    let started = false;
    for (const row of rows) {
      const v = value(row, name);
      if (!(v > 0 && isFinite(v))) { started = false; continue; }
      if (started) ctx.lineTo(x(row.step), y(v)); else { ctx.moveTo(x(row.step), y(v)); started = true; }
    }
    ctx.stroke();
  });
  const legend = $("legend");
  if (legend.childElementCount !== names.length) {
    legend.replaceChildren(...names.map((name, i) => {
      const span = document.createElement("span"), swatch = document.createElement("i");
      swatch.style.background = colours[i % colours.length];
      span.append(swatch, document.createTextNode(name));
      return span;
    }));
  }
}

async function main() {
  const response = await fetch(api);
  if (!response.ok) { setStatus("failed", `no such run: ${runId}`); return; }
  showSnapshot(await response.json());
  const source = new EventSource(`${api}/events`);
  source.addEventListener("step", (e) => onStep(JSON.parse(e.data)));
  source.addEventListener("picture", (e) => onPicture(JSON.parse(e.data)));
  source.addEventListener("status", (e) => {
    const event = JSON.parse(e.data);
    setStatus(event.status, event.message, event.output);
    if (event.status !== "running" && event.status !== "queued") source.close();
  });
}

main();
