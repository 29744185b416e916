// CXR triage page: upload X-rays to the v1 API, long-poll each job, draw its 18 scores; plain JS, no build step.
"use strict";

const THRESHOLD = 0.5; // op_norm calibrates every label so that its operating point is 0.5
const LONG_POLL_S = 20; // GET /v1/jobs/{id}?wait=N answers when the job is final or after N s (N <= 20)
const POLL_FIRST_MS = 300; // only for an API that answers a long poll early (one that ignores ?wait)
const POLL_MAX_MS = 2000;
// Lambda takes at most 6 MB of event and a binary body travels base64-encoded in it: larger files go to S3
// through a presigned upload (POST /v1/uploads). Same figure as the CLI's; config.js may override it.
const INLINE_LIMIT_BYTES = (window.CXR_CONFIG && window.CXR_CONFIG.inlineLimitBytes) ||
                           Math.floor((6 * 1024 * 1024 - 64 * 1024) * 3 / 4);
const WAIT_LIMIT_MS = 5 * 60 * 1000;
const HISTORY_KEY = "cxr.history.v1";
const MEDIA_TYPES = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", dcm: "application/dicom", dicom: "application/dicom" };
const STEPS = ["UPLOADING", "QUEUED", "IN_PROGRESS", "COMPLETED"];

const $ = (id) => document.getElementById(id);
const jobs = new Map(); // local key -> job view-model, in submission order
let currentKey = null;

// ---- settings: ?api= beats the Settings panel beats config.js; the key lives in sessionStorage only ----
function apiBase() {
  const fromQuery = new URLSearchParams(location.search).get("api");
  const saved = localStorage.getItem("cxr.apiBase");
  const configured = (window.CXR_CONFIG && window.CXR_CONFIG.apiBase) || "";
  return (fromQuery || saved || configured).replace(/\/+$/, "");
}
function apiHeaders(extra) {
  const headers = Object.assign({}, extra);
  const key = sessionStorage.getItem("cxr.apiKey");
  if (key) headers["x-api-key"] = key;
  return headers;
}
const prettyLabel = (label) => label.replace(/_/g, " "); // "Pleural_Thickening" reads "Pleural Thickening"

class ApiError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}
async function api(path, options) {
  let response;
  try {
    response = await fetch(apiBase() + path, options);
  } catch (error) {
    throw new ApiError(`cannot reach the API at ${apiBase() || location.origin} (${error.message})`, 0, "NETWORK");
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* a non-JSON error page */ }
  return answer(response.status, response.statusText, body);
}
function answer(status, statusText, body) {
  if (status >= 200 && status < 300) return body;
  let message = (body && (body.error || body.message)) || statusText || "request failed";
  if (status === 401 || status === 403) {
    message += ". Open Settings (under the upload box), enter a valid API key and press Save";
    const settings = document.querySelector("details.settings");
    if (settings) settings.open = true;
  }
  throw new ApiError(`${message} (HTTP ${status}${body && body.code ? ", " + body.code : ""})`, status, body && body.code);
}

// A request whose upload progress shows (fetch cannot report it): resolves with the parsed answer.
function send(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => { if (event.lengthComputable && onProgress) onProgress(event.loaded, event.total); };
    const where = new URL(url, location.href).origin === new URL(apiBase() || location.origin, location.href).origin
      ? `the API at ${apiBase() || location.origin}` : `the storage upload URL ${new URL(url).origin} (CORS or network)`;
    request.onerror = () => reject(new ApiError(`cannot reach ${where} (network error)`, 0, "NETWORK"));
    request.onload = () => {
      let parsed = null;
      try { parsed = request.responseText ? JSON.parse(request.responseText) : null; } catch (_) { /* S3 answers XML or nothing */ }
      try { resolve(answer(request.status, request.statusText, parsed)); } catch (error) { reject(error); }
    };
    request.send(body);
  });
}

// Small files inline in POST /v1/jobs; larger ones PUT to S3 first, then POST /v1/jobs {"upload_id"}.
// The model picker's choice (GET /v1/models) travels as ?model=; the default model when nothing is picked.
function jobsPath() {
  const model = $("model-picker").value;
  return "/v1/jobs" + (model ? `?model=${encodeURIComponent(model)}` : "");
}
async function upload(file, type, onProgress) {
  if (file.size <= INLINE_LIMIT_BYTES) {
    return send("POST", apiBase() + jobsPath(), file, apiHeaders({ "Content-Type": type }), onProgress);
  }
  // size and SHA-256 are signed into the URL: S3 refuses a body of another length or other bytes
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
  const sha256 = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
  const grant = await api("/v1/uploads", { method: "POST",
                                           body: JSON.stringify({ content_type: type, size: file.size, sha256 }),
                                           headers: apiHeaders({ "Content-Type": "application/json" }) });
  await send(grant.method || "PUT", grant.url, file, grant.headers || { "Content-Type": type }, onProgress);
  return api(jobsPath(), { method: "POST", body: JSON.stringify({ upload_id: grant.upload_id }),
                           headers: apiHeaders({ "Content-Type": "application/json" }) });
}

// ---- files ----
// { type, sniffed }: sniffed is true when the bytes say so; the extension only vouches otherwise (the server
// decides from the bytes), and only sniffed PNG/JPEG are previewed (a text file named scan.png is not).
async function mediaType(file) {
  const head = new Uint8Array(await file.slice(0, 132).arrayBuffer());
  const starts = (...bytes) => bytes.every((b, i) => head[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return { type: "image/png", sniffed: true };
  if (starts(0xff, 0xd8, 0xff)) return { type: "image/jpeg", sniffed: true };
  if (head.length >= 132 && String.fromCharCode(...head.slice(128, 132)) === "DICM") {
    return { type: "application/dicom", sniffed: true };
  }
  const extension = file.name.split(".").pop().toLowerCase();
  return MEDIA_TYPES[extension] ? { type: MEDIA_TYPES[extension], sniffed: false } : null;
}

async function submitFiles(fileList) {
  for (const file of Array.from(fileList)) {
    // one at a time keeps the status line readable; the server works on earlier jobs meanwhile
    await submitFile(file);
  }
}

async function submitFile(file) {
  const key = `local-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  const job = { key, file: file.name, size: file.size, status: "UPLOADING", submittedAt: new Date().toISOString(),
                previewUrl: null, isDicom: false, id: null, result: null, error: null, cached: false };
  jobs.set(key, job);
  select(key);
  const media = await mediaType(file);
  if (!media) {
    return update(job, { status: "ERROR", error: `${file.name} is not a PNG, JPEG or DICOM file` });
  }
  job.isDicom = media.type === "application/dicom";
  if (!job.isDicom && media.sniffed) job.previewUrl = URL.createObjectURL(file);
  update(job, {});
  try {
    const body = await upload(file, media.type, (sent, total) => update(job, { sent, total }));
    update(job, { id: body.id, status: body.status, cached: Boolean(body.cached), result: body.result || null });
    if (!$("model-picker").dataset.loaded) loadModels(); // the API took a job: it will list its models too
    if (job.status !== "COMPLETED" || !job.result) await follow(job);
    if (!$("server-jobs").hidden) loadServerJobs(false); // the listing shows the new job too
  } catch (error) {
    update(job, { status: "ERROR", error: error.message });
  }
}

async function follow(job) {
  const started = Date.now();
  let interval = POLL_FIRST_MS;
  for (;;) {
    const asked = Date.now();
    const body = await api(`/v1/jobs/${encodeURIComponent(job.id)}?wait=${LONG_POLL_S}`, { headers: apiHeaders() });
    if (body.status === "FAILED") return update(job, { status: "FAILED", error: body.error || "the job failed" });
    if (body.status === "COMPLETED") {
      const result = await api(`/v1/jobs/${encodeURIComponent(job.id)}/result`, { headers: apiHeaders() });
      return update(job, { status: "COMPLETED", result, finishedMs: Date.now() - started });
    }
    if (body.status !== job.status) update(job, { status: body.status });
    if (Date.now() - started > WAIT_LIMIT_MS) {
      return update(job, { status: "ERROR", error: `still ${body.status} after ${WAIT_LIMIT_MS / 60000} minutes` });
    }
    if (Date.now() - asked < LONG_POLL_S * 1000 - 500) { // answered early: not a long-polling API
      await new Promise((resolve) => setTimeout(resolve, interval));
      interval = Math.min(interval * 1.5, POLL_MAX_MS);
    }
  }
}

// ---- state -> page ----
function update(job, changes) {
  Object.assign(job, changes);
  saveHistory();
  renderHistory();
  if (job.key === currentKey) renderJob(job);
}

function select(key) {
  currentKey = key;
  renderHistory();
  renderJob(jobs.get(key));
}

function statusText(job) {
  const name = job.file;
  switch (job.status) {
    case "UPLOADING":
      return `Uploading ${name}…` + (job.total ? ` ${(job.sent / 1e6).toFixed(1)} of ${(job.total / 1e6).toFixed(1)} MB` : "");
    case "LOADING": return `${name}: loading its result…`;
    case "QUEUED": return `${name}: queued, waiting for a worker…`;
    case "IN_PROGRESS": return `${name}: the model is reading the image…`;
    case "COMPLETED":
      return `${name}: completed${job.cached ? " (same image seen before: cached result)" : ""}` +
             `${job.finishedMs ? ` in ${(job.finishedMs / 1000).toFixed(1)} s` : ""}. Top finding: ${prettyLabel(job.result.top_label)}.`;
    case "FAILED": return `${name}: the job failed: ${job.error}`;
    default: return `${name}: ${job.error || "error"}`;
  }
}

function renderJob(job) {
  const status = $("status");
  status.textContent = statusText(job);
  status.classList.toggle("error", job.status === "FAILED" || job.status === "ERROR");
  renderSteps(job);
  renderProgress(job);
  renderPreview(job);
  renderResult(job);
}

function renderProgress(job) {
  const bar = $("upload-progress");
  bar.hidden = job.status !== "UPLOADING" || !job.total;
  if (!bar.hidden) {
    bar.max = job.total;
    bar.value = job.sent;
    bar.textContent = `${Math.round(100 * job.sent / job.total)}%`;
  }
}

function renderSteps(job) {
  const reached = STEPS.indexOf(job.status);
  for (const item of $("steps").children) {
    const index = STEPS.indexOf(item.dataset.step);
    const broken = (job.status === "FAILED" || job.status === "ERROR");
    item.classList.toggle("done", reached >= 0 && index < reached || job.status === "COMPLETED");
    item.classList.toggle("failed", broken && index === (job.id ? 2 : 0));
    if (index === reached && job.status !== "COMPLETED") item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

function renderPreview(job) {
  const image = $("preview-image"), placeholder = $("preview-placeholder");
  const sizeKb = job.size ? ` (${Math.round(job.size / 1024)} KB)` : "";
  if (job.previewUrl && job.status === "ERROR") { // the server could not read it either: no broken image
    URL.revokeObjectURL(job.previewUrl);
    job.previewUrl = null;
  }
  if (job.previewUrl) {
    image.src = job.previewUrl;
    image.alt = `Uploaded X-ray ${job.file}`;
    image.hidden = false;
    placeholder.hidden = true;
    $("preview-caption").textContent = `${job.file}${sizeKb}`;
  } else {
    image.hidden = true;
    image.removeAttribute("src");
    placeholder.hidden = false;
    placeholder.textContent = job.isDicom ? `DICOM file ${job.file}: browsers cannot display DICOM; scores below`
                                          : `${job.file}: preview not available`;
    $("preview-caption").textContent = `${job.file}${sizeKb}`;
  }
}

function renderResult(job) {
  const result = job.result;
  const section = $("result");
  const banner = $("model-banner");
  if (!result) {
    section.hidden = true;
    $("heatmap").hidden = true;
    $("heatmap-label").dataset.job = "";
    return;
  }
  const model = result.model || {};
  showModelBanner(model);
  // highest first, ties by label in code-point order: the API's top_label rule (and the CLI's), so row 1 is the top label
  const rows = Object.entries(result.output).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const positives = rows.filter(([, score]) => score >= THRESHOLD).length;
  $("result-summary").textContent =
    `Top finding: ${prettyLabel(result.top_label)}. ${positives} of ${rows.length} findings at or above the calibrated threshold ${THRESHOLD}.`;
  const body = $("chart-body");
  body.replaceChildren(...rows.map(([label, score], index) => chartRow(label, score, index === 0)));
  renderHeatmap(job, rows);
  $("model-info").textContent = `Model ${model.name || "?"}, weights ${model.weights || "?"}, engine ${model.engine || "?"}` +
    `${model.precision && model.precision !== "fp32" ? `, reduced precision ${model.precision}` : ""}` +
    `${model.weights_sha256 ? `, weights SHA-256 ${model.weights_sha256.slice(0, 12)}…` : ""}; job ${job.id}.`;
  section.hidden = false;
}

function chartRow(label, score, isTop) {
  const positive = score >= THRESHOLD;
  const row = document.createElement("tr");
  if (isTop) row.className = "top";
  const name = document.createElement("th");
  name.scope = "row";
  name.textContent = prettyLabel(label);
  const value = document.createElement("td");
  value.className = "value";
  value.textContent = score.toFixed(3);
  const barCell = document.createElement("td");
  barCell.className = "bar-cell";
  barCell.setAttribute("aria-hidden", "true"); // the score and decision cells carry the same facts as text
  const track = document.createElement("div");
  track.className = "score-track";
  const bar = document.createElement("div");
  bar.className = `bar ${positive ? "positive" : "negative"}`;
  bar.style.width = `${(Math.min(Math.max(score, 0), 1) * 100).toFixed(1)}%`;
  bar.dataset.label = label;
  bar.dataset.score = String(score);
  const mark = document.createElement("div");
  mark.className = "threshold";
  mark.title = `calibrated threshold ${THRESHOLD}`;
  track.append(bar, mark);
  barCell.append(track);
  const decision = document.createElement("td");
  decision.className = `decision ${positive ? "positive" : "negative"}`;
  decision.textContent = positive ? "positive" : "negative";
  row.append(name, value, barCell, decision);
  return row;
}

function renderHistory() {
  const body = $("history-body");
  const focusedKey = body.contains(document.activeElement) ? document.activeElement.closest("tr").dataset.key : null;
  const items = Array.from(jobs.values()).reverse(); // newest first
  $("history").hidden = items.length === 0;
  $("history-empty").hidden = items.length > 0;
  body.replaceChildren(...items.map((job) => {
    const row = document.createElement("tr");
    row.dataset.key = job.key;
    if (job.key === currentKey) row.setAttribute("aria-current", "true");
    const cells = [job.file, job.status + (job.cached ? " (cached)" : ""),
                   job.result ? `${prettyLabel(job.result.top_label)} ${job.result.output[job.result.top_label].toFixed(3)}` : "-",
                   new Date(job.submittedAt).toLocaleTimeString()];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    const action = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary";
    button.textContent = "Show";
    button.setAttribute("aria-label", `Show job for ${job.file}`);
    button.addEventListener("click", () => select(job.key));
    action.append(button);
    row.append(action);
    return row;
  }));
  if (focusedKey) { // rebuilding the rows must not throw a keyboard user's focus back to the top of the page
    const again = body.querySelector(`tr[data-key="${focusedKey}"] button`);
    if (again) again.focus();
  }
}

// ---- session history survives a reload of this tab (previews do not: object URLs die with the page) ----
function saveHistory() {
  const plain = Array.from(jobs.values()).map(({ previewUrl, ...rest }) => rest);
  try { sessionStorage.setItem(HISTORY_KEY, JSON.stringify(plain)); } catch (_) { /* storage full or disabled */ }
}
function loadHistory() {
  let saved = [];
  try { saved = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]"); } catch (_) { saved = []; }
  for (const job of saved) {
    jobs.set(job.key, Object.assign(job, { previewUrl: null }));
    if (job.id && (job.status === "QUEUED" || job.status === "IN_PROGRESS")) {
      follow(job).catch((error) => update(job, { status: "ERROR", error: error.message }));
    }
  }
  renderHistory();
}

// ---- "Your jobs": GET /v1/jobs (this key's own, newest first, a page at a time) and DELETE /v1/jobs/{id} ----
let serverCursor = null;
const SERVER_PAGE = 20;

async function loadServerJobs(more) {
  const status = $("server-jobs-status");
  const query = `?limit=${SERVER_PAGE}` + (more && serverCursor ? `&cursor=${encodeURIComponent(serverCursor)}` : "");
  status.textContent = "Loading…";
  let page;
  try {
    page = await api(`/v1/jobs${query}`, { headers: apiHeaders() });
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  const body = $("server-jobs-body");
  if (!more) body.replaceChildren();
  body.append(...page.jobs.map(serverJobRow));
  serverCursor = page.next_cursor;
  $("server-jobs-more").hidden = !serverCursor;
  $("server-jobs").hidden = body.children.length === 0;
  status.textContent = body.children.length ? `${body.children.length} job(s) shown.` : "No jobs yet.";
}

function serverJobRow(listed) {
  const row = document.createElement("tr");
  row.dataset.id = listed.id;
  const cells = [listed.id, listed.status + (listed.cached ? " (cached)" : ""),
                 new Date(listed.created_at).toLocaleString()];
  for (const text of cells) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  const actions = document.createElement("td");
  const show = document.createElement("button");
  show.type = "button";
  show.className = "button secondary";
  show.textContent = "Show";
  show.setAttribute("aria-label", `Show job ${listed.id}`);
  show.addEventListener("click", () => showServerJob(listed));
  const erase = document.createElement("button");
  erase.type = "button";
  erase.className = "button secondary";
  erase.textContent = "Delete";
  erase.setAttribute("aria-label", `Delete job ${listed.id}`);
  erase.addEventListener("click", () => deleteServerJob(listed.id, row));
  actions.append(show, erase);
  row.append(actions);
  return row;
}

function showServerJob(listed) {
  const key = `server-${listed.id}`;
  // a completed job's scores are fetched first (LOADING): the page draws a COMPLETED job with its result only
  const job = jobs.get(key) || { key, file: `job ${listed.id.slice(0, 8)}`, id: listed.id,
                                 status: listed.status === "COMPLETED" ? "LOADING" : listed.status,
                                 submittedAt: listed.created_at, previewUrl: null, isDicom: false, result: null,
                                 error: listed.error || null, cached: Boolean(listed.cached) };
  jobs.set(key, job);
  select(key);
  if (job.status !== "FAILED" && !job.result) {
    follow(job).catch((error) => update(job, { status: "ERROR", error: error.message }));
  }
}

async function deleteServerJob(id, row) {
  if (!window.confirm(`Delete job ${id}? Its result is erased for good.`)) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE", headers: apiHeaders() });
  } catch (error) {
    $("server-jobs-status").textContent = error.message;
    return;
  }
  row.remove();
  for (const [key, job] of jobs) if (job.id === id) jobs.delete(key);
  saveHistory();
  renderHistory();
  $("server-jobs-status").textContent = `Deleted job ${id}.`;
  $("server-jobs").hidden = $("server-jobs-body").children.length === 0;
}

// ---- wiring ----
function wireUpload() {
  const zone = $("drop-zone"), input = $("file-input");
  input.addEventListener("change", () => {
    const files = Array.from(input.files);
    input.value = ""; // choosing the same file again should submit again
    submitFiles(files);
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) submitFiles(event.dataTransfer.files);
  });
  // a file dropped beside the zone must not make the browser navigate away from the page
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

function wireSettings() {
  $("api-base").value = localStorage.getItem("cxr.apiBase") || "";
  $("api-base").placeholder = (window.CXR_CONFIG && window.CXR_CONFIG.apiBase) || "same origin";
  $("api-key").value = sessionStorage.getItem("cxr.apiKey") || "";
  const save = () => {
    const base = $("api-base").value.trim(), key = $("api-key").value;
    if (base) localStorage.setItem("cxr.apiBase", base); else localStorage.removeItem("cxr.apiBase");
    if (key) sessionStorage.setItem("cxr.apiKey", key); else sessionStorage.removeItem("cxr.apiKey");
  };
  // what is typed counts at once: a key entered without pressing Save is not silently ignored
  $("api-key").addEventListener("input", save);
  $("api-base").addEventListener("change", () => { save(); checkModel(); });
  $("settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save();
    $("status").textContent = `Settings saved. API: ${apiBase() || "same origin"}.`;
    checkModel();
  });
}

// ---- heatmaps: the model input (opacity 0) under one finding's map alone (opacity 1); the slider blends them ----
const heatmapImages = new Map(); // "job|label|opacity" -> object URL, so switching back costs no request
async function heatmapImage(jobId, label, opacity) {
  const key = `${jobId}|${label}|${opacity}`;
  if (!heatmapImages.has(key)) {
    const query = new URLSearchParams({ opacity: String(opacity) });
    if (label) query.set("label", label);
    const response = await fetch(`${apiBase()}/v1/jobs/${encodeURIComponent(jobId)}/heatmap?${query}`,
                                 { headers: apiHeaders() });
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { /* not JSON */ }
      answer(response.status, response.statusText, body); // throws the API's own error
    }
    heatmapImages.set(key, URL.createObjectURL(await response.blob()));
  }
  return heatmapImages.get(key);
}

function renderHeatmap(job, rows) {
  const picker = $("heatmap-label");
  if (picker.dataset.job !== job.id) { // a new result: its findings, highest score first, the top one picked
    picker.dataset.job = job.id;
    picker.replaceChildren(...rows.map(([label, score]) => {
      const option = document.createElement("option");
      option.value = label;
      option.textContent = `${prettyLabel(label)} (${score.toFixed(3)})`;
      return option;
    }));
    picker.value = job.result.top_label;
    drawHeatmap(job.id);
  }
}

async function drawHeatmap(jobId) {
  const figure = $("heatmap");
  const label = $("heatmap-label").value;
  try {
    const [base, overlay] = await Promise.all([heatmapImage(jobId, null, 0), heatmapImage(jobId, label, 1)]);
    if ($("heatmap-label").dataset.job !== jobId || $("heatmap-label").value !== label) return; // moved on meanwhile
    $("heatmap-base").src = base;
    $("heatmap-overlay").src = overlay;
    $("heatmap-overlay").alt = `Heatmap of ${prettyLabel(label)}`;
    figure.hidden = false;
  } catch (_) {
    figure.hidden = true; // a result computed without heatmaps, or an API without the route: the chart stands alone
  }
}

function wireHeatmap() {
  const opacity = () => { $("heatmap-overlay").style.opacity = String($("heatmap-opacity").value / 100); };
  $("heatmap-opacity").addEventListener("input", opacity);
  $("heatmap-label").addEventListener("change", () => drawHeatmap($("heatmap-label").dataset.job));
  opacity();
}

function showModelBanner(model) {
  $("model-banner").hidden = model.weights !== "random-init";
  // the service words its intended use once (cxr_model.notice); the page shows that text, never its own
  if (model.intended_use) {
    $("intended-use").textContent = model.intended_use;
    $("intended-use").hidden = false;
  }
  if (model.warning) $("model-banner-detail").textContent = `The model says: ${model.warning}.`;
}

// GET /v1/ops/health needs no key and names the served model: warn before the first result, not after it
async function checkModel() {
  try {
    const health = await api("/v1/ops/health", { headers: apiHeaders() });
    if (health && health.model) showModelBanner(health.model);
  } catch (_) { /* unreachable or old API: the first result's model still shows the banner */ }
  if (apiHeaders()["x-api-key"]) loadModels(); // without a key it waits for the first accepted job (no 401s)
}

// GET /v1/models: a picker when the deployment serves more than one model (each lists the findings it reports)
async function loadModels() {
  const picker = $("model-picker");
  let listing = null;
  try { // not through api(): a 401 before the key is typed must not open Settings by itself
    const response = await fetch(`${apiBase()}/v1/models`, { headers: apiHeaders() });
    if (response.ok) listing = await response.json();
  } catch (_) { /* unreachable: the default model is used */ }
  const models = (listing && listing.models) || [];
  if (listing) picker.dataset.loaded = "1";
  const chosen = picker.value;
  picker.replaceChildren(...models.map((model) => {
    const option = document.createElement("option");
    option.value = model.default ? "" : model.name;
    option.textContent = `${model.name}${model.default ? " (default)" : ""}: ${model.findings.length} findings, ` +
                         `weights ${model.weights}`;
    return option;
  }));
  if (models.some((model) => !model.default && model.name === chosen)) picker.value = chosen;
  $("model-choice").hidden = models.length < 2;
}

wireUpload();
wireSettings();
wireHeatmap();
loadHistory();
checkModel();
$("server-jobs-refresh").addEventListener("click", () => loadServerJobs(false));
$("server-jobs-more").addEventListener("click", () => loadServerJobs(true));
if (sessionStorage.getItem("cxr.apiKey")) loadServerJobs(false); // without a key it would only ask for one
else $("server-jobs-status").textContent = "Not loaded: this list needs your key (see above), then Refresh.";
