// The console page: sign-in, worklist, editor wiring, submit/skip, dashboard tab, keyboard shortcuts.
import { get, post, query, setCsrf } from "./api.js";
import { Editor } from "./editor.js";
import { renderDashboard } from "./dashboard.js";
import { RAMP } from "./raster.js";

const $ = (sel) => document.querySelector(sel);
const state = { me: null, items: [], current: null, cache: new Map(), busy: false, visibleMs: 0, visibleSince: null, key: "", timings: [] };
window.cealTimings = state.timings; // submit → next image drawn, in ms (read by the latency measurement)

// ── messages ───────────────────────────────────────────────────────────────────────────────────────────
function showError(err) {
  const box = $("[data-testid=error-message]");
  box.textContent = err ? (err.message || String(err)) : "";
  box.hidden = !err;
}
function notice(text) { $("#notice").textContent = text || ""; }

// ── sign-in ────────────────────────────────────────────────────────────────────────────────────────────
async function boot() {
  try {
    const config = await get("/api/config");
    $("#server-name").textContent = config.server;
    $("#no-auth").hidden = config.authentication;
    $("#annotator-row").hidden = config.authentication;
  } catch (err) { showError(err); }
  try { signedIn(await get("/api/me")); } catch { $("#login").hidden = false; }
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(null);
  try {
    signedIn(await post("/api/login", { token: $("[data-testid=login-token]").value, annotator: $("#login-annotator").value }));
  } catch (err) { showError(err); }
});

function signedIn(me) {
  state.me = me;
  setCsrf(me.csrf);
  $("[data-testid=login-token]").value = "";
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#who").textContent = me.authentication ? `${me.name}` : `${me.annotator} (no token)`;
  $("#role").textContent = me.authentication ? me.role : "open server";
  $("#role").dataset.role = me.role;
  $("#auth-note").hidden = me.authentication;
  $("#viewer-note").hidden = me.can_label;
  $("[data-testid=submit-label]").disabled = !me.can_label;
  loadPools();
}

$("#logout").addEventListener("click", async () => {
  try { await post("/api/logout"); } catch { /* signed out either way */ }
  location.reload();
});

// ── worklist ───────────────────────────────────────────────────────────────────────────────────────────
async function loadPools() {
  try {
    const { pools, strategies } = await get("/api/pools");
    const select = $("[data-testid=pool-select]");
    select.replaceChildren(...(pools.length ? pools : ["default"]).map((p) => new Option(p, p)));
    const strategy = $("#strategy-select");
    strategy.replaceChildren(...strategies.map((s) => new Option(s.replace("_", " "), s, s === "ceal", s === "ceal")));
    await loadWorklist();
  } catch (err) { showError(err); }
}

const pool = () => $("[data-testid=pool-select]").value;

let worklistRequest = 0;
async function loadWorklist() {
  showError(null);
  state.cache.clear();
  const ticket = ++worklistRequest; // a later request (another pool, strategy) wins over this one
  try {
    const list = await get(`/api/worklist?${query({ pool: pool(), strategy: $("#strategy-select").value, k: $("#k-input").value })}`);
    if (ticket !== worklistRequest) return;
    state.items = list.items;
    $("#worklist-meta").textContent = `${list.items.length} image(s) leased to you · ${list.model}` + (list.unscored ? ` · ${list.unscored} unscored` : "");
    renderWorklist();
    if (state.items.length) await open(state.items[0].image_id);
    else { state.current = null; notice("Nothing left to label in this pool with this strategy."); $("#editor").classList.add("empty"); }
  } catch (err) {
    if (ticket !== worklistRequest) return;
    state.items = [];
    renderWorklist();
    showError(err);
  }
}

function leaseText(item) {
  if (!item.lease_expires_at) return "not leased";
  const left = (Date.parse(item.lease_expires_at) - Date.now()) / 1000;
  if (left <= 0) return "lease expired — reload the list";
  return left > 90 ? `lease ${Math.round(left / 60)} min left` : `lease ${Math.round(left)} s left`;
}

function renderWorklist() {
  const list = $("#worklist");
  list.replaceChildren(...state.items.map((item) => {
    const li = document.createElement("li");
    li.dataset.testid = "worklist-item";
    li.setAttribute("data-testid", "worklist-item");
    li.dataset.imageId = item.image_id;
    li.className = item.image_id === state.current?.image_id ? "active" : "";
    const expired = item.lease_expires_at && Date.parse(item.lease_expires_at) <= Date.now();
    li.innerHTML = `<div class="row"><span class="rank">#${item.rank}</span><span class="name"></span><span class="lease ${expired ? "expired" : ""}"></span></div><div class="reason"><span class="score" title="the value the strategy ranked by">${item.score.toFixed(4)}</span> <span class="why"></span></div>`;
    li.querySelector(".name").textContent = item.name || "";
    li.querySelector(".lease").textContent = leaseText(item);
    li.querySelector(".why").textContent = item.reason;
    li.addEventListener("click", () => open(item.image_id));
    return li;
  }));
}
setInterval(() => state.items.length && renderWorklist(), 15000);

$("[data-testid=pool-select]").addEventListener("change", () => { loadWorklist(); if (!$("#dashboard-view").hidden) showDashboard(); });
$("#strategy-select").addEventListener("change", loadWorklist);
$("#reload").addEventListener("click", loadWorklist);

// ── one image ──────────────────────────────────────────────────────────────────────────────────────────
const editor = new Editor($("#editor"), (what) => what === "mask" && updateStatus());

function fetchImage(id) {
  const key = `${pool()}/${id}`;
  if (!state.cache.has(key)) {
    const pending = get(`/api/image/${encodeURIComponent(id)}?${query({ pool: pool() })}`);
    pending.catch(() => state.cache.delete(key));
    state.cache.set(key, pending);
  }
  return state.cache.get(key);
}

function prefetchAfter(id) {
  const i = state.items.findIndex((x) => x.image_id === id);
  if (i >= 0 && i + 1 < state.items.length) fetchImage(state.items[i + 1].image_id).catch(() => {});
}

function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

async function open(id) {
  showError(null);
  const from = pool(), ticket = worklistRequest;
  try {
    const item = await fetchImage(id);
    if (ticket !== worklistRequest || from !== pool()) return; // the list changed while this image loaded
    editor.load(item);
    state.current = item;
    state.key = newKey(); // one key per image view: a double click or a retry stores one label
    state.visibleMs = 0;
    state.visibleSince = document.visibilityState === "visible" ? performance.now() : null;
    $("#editor").classList.remove("empty");
    $("[data-testid=image-canvas]").dataset.imageId = id;
    $("[data-testid=image-canvas]").dataset.pool = from;
    $("#image-title").textContent = `${item.name || `image ${id.slice(0, 12)}…`} · proposal by ${item.model} · mean mutual information ${item.score.toFixed(4)} nats`;
    $("#wl-controls").hidden = item.channels !== 1;
    if (item.channels === 1) setWindowSliders(item);
    renderClasses(item.classes);
    $("#scale-max").textContent = `${item.uncertainty_max.toFixed(2)} ${item.uncertainty_unit}`;
    $("#scale-mid").textContent = (item.uncertainty_max / 2).toFixed(2);
    notice(item.label_version ? `Shown: the ${item.label_source} label v${item.label_version}; submitting stores v${item.label_version + 1}.` : "Shown: the model's proposal (editable). Correct it, then submit.");
    renderWorklist();
    updateStatus();
    prefetchAfter(id);
    if (state.submittedAt != null) {
      requestAnimationFrame(() => {
        state.timings.push(performance.now() - state.submittedAt);
        state.submittedAt = null;
      });
    }
  } catch (err) { showError(err); }
}

function secondsSpent() {
  const running = state.visibleSince != null ? performance.now() - state.visibleSince : 0;
  return (state.visibleMs + running) / 1000;
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") state.visibleSince = performance.now();
  else if (state.visibleSince != null) { state.visibleMs += performance.now() - state.visibleSince; state.visibleSince = null; }
});
setInterval(() => { if (state.current) $("#timer").textContent = `${Math.round(secondsSpent())} s on this image`; }, 1000);

function updateStatus() {
  $("[data-testid=undo]").disabled = !editor.undoStack?.length;
  $("#redo").disabled = !editor.redoStack?.length;
  const painted = editor.mask ? editor.mask.reduce((n, v) => n + (v !== 0), 0) : 0;
  $("#mask-info").textContent = editor.mask ? `${painted} px labelled` : "";
}

async function submit() {
  if (!state.current || state.busy || !state.me?.can_label) return;
  state.busy = true;
  const button = $("[data-testid=submit-label]");
  button.disabled = true;
  const item = state.current;
  try {
    state.submittedAt = performance.now();
    await post("/api/label", {
      pool: pool(), image_id: item.image_id, height: item.height, width: item.width,
      mask: editor.maskB64(), seconds: secondsSpent(), idempotency_key: state.key,
    });
    notice(`Label stored for ${item.image_id.slice(0, 12)}….`);
    await next(item.image_id);
  } catch (err) { state.submittedAt = null; showError(err); }
  finally { state.busy = false; button.disabled = !state.me?.can_label; }
}

async function next(doneId) {
  const i = state.items.findIndex((x) => x.image_id === doneId);
  if (i >= 0) state.items.splice(i, 1);
  state.cache.delete(`${pool()}/${doneId}`);
  if (state.items.length) await open(state.items[Math.min(i, state.items.length - 1)].image_id);
  else await loadWorklist();
}

async function skip() {
  if (!state.current || state.busy) return;
  state.busy = true;
  const id = state.current.image_id;
  try {
    const r = await post("/api/skip", { pool: pool(), image_id: id });
    notice(r.released ? "Skipped: the image goes back to the pool." : "Skipped (its lease had already ended).");
    await next(id);
  } catch (err) { showError(err); }
  finally { state.busy = false; }
}

// ── tools ──────────────────────────────────────────────────────────────────────────────────────────────
function setTool(tool) {
  editor.tool = tool;
  if (tool !== "polygon") editor.cancelPolygon();
  document.querySelectorAll("[data-tool]").forEach((b) => b.classList.toggle("on", b.dataset.tool === tool));
  $("#stage").dataset.tool = tool;
}
document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));

function setSize(size) {
  editor.size = Math.max(1, Math.min(64, size));
  $("#size").value = String(editor.size);
  $("#size-value").textContent = `${editor.size} px`;
}
$("#size").addEventListener("input", (e) => setSize(Number(e.target.value)));

function renderClasses(classes) {
  const box = $("#classes");
  box.replaceChildren(...classes.slice(1).map((name, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${i + 1} ${name}`;
    b.className = `class-btn c${(i + 1) % 7}` + (editor.cls === i + 1 ? " on" : "");
    b.addEventListener("click", () => setClass(i + 1));
    return b;
  }));
  if (editor.cls >= classes.length) setClass(1);
}
function setClass(k) {
  editor.cls = k;
  document.querySelectorAll(".class-btn").forEach((b, i) => b.classList.toggle("on", i + 1 === k));
}

function setWindowSliders(item) {
  const [lo, hi] = item.pixel_range, span = Math.max(hi - lo, 1e-6);
  const level = $("#level"), width = $("#window");
  level.min = String(lo); level.max = String(hi); level.step = String(span / 255); level.value = String((lo + hi) / 2);
  width.min = String(span / 255); width.max = String(span * 2); width.step = String(span / 255); width.value = String(span);
  $("#wl-value").textContent = `L ${Number(level.value).toPrecision(4)} · W ${Number(width.value).toPrecision(4)}`;
}
const applyWindow = () => {
  editor.setWindow(Number($("#level").value), Number($("#window").value));
  $("#wl-value").textContent = `L ${Number($("#level").value).toPrecision(4)} · W ${Number($("#window").value).toPrecision(4)}`;
};
$("#level").addEventListener("input", applyWindow);
$("#window").addEventListener("input", applyWindow);
$("#wl-reset").addEventListener("click", () => { if (state.current) { setWindowSliders(state.current); applyWindow(); } });

$("#opacity").addEventListener("input", (e) => { editor.setOpacity(Number(e.target.value) / 100); $("#opacity-value").textContent = `${e.target.value} %`; });
for (const layer of ["image", "heat", "mask"]) {
  $(`#show-${layer}`).addEventListener("change", (e) => editor.toggle(layer, e.target.checked));
}
const toggleLayer = (layer) => { const box = $(`#show-${layer}`); box.checked = !box.checked; editor.toggle(layer, box.checked); };

$("[data-testid=undo]").addEventListener("click", () => editor.undo());
$("#redo").addEventListener("click", () => editor.redo());
$("#clear").addEventListener("click", () => editor.clear());
$("#fill-holes").addEventListener("click", () => editor.fillHoles());
$("#accept").addEventListener("click", () => editor.acceptProposal());
$("#close-polygon").addEventListener("click", () => editor.closePolygon());
$("#fit").addEventListener("click", () => editor.fit());
$("#zoom-in").addEventListener("click", () => editor.zoomBy(1.25, $("#stage").clientWidth / 2, $("#stage").clientHeight / 2));
$("#zoom-out").addEventListener("click", () => editor.zoomBy(0.8, $("#stage").clientWidth / 2, $("#stage").clientHeight / 2));
$("[data-testid=submit-label]").addEventListener("click", submit);
$("[data-testid=skip]").addEventListener("click", skip);

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea") || $("#app").hidden) return;
  const k = e.key.toLowerCase(), mod = e.ctrlKey || e.metaKey;
  if (mod && k === "z") { e.preventDefault(); e.shiftKey ? editor.redo() : editor.undo(); return; }
  if (mod && k === "y") { e.preventDefault(); editor.redo(); return; }
  if (mod) return;
  const keys = {
    b: () => setTool("brush"), e: () => setTool("eraser"), p: () => setTool("polygon"), v: () => setTool("pan"),
    "[": () => setSize(editor.size - 1), "]": () => setSize(editor.size + 1), f: () => editor.fillHoles(),
    a: () => editor.acceptProposal(), u: () => toggleLayer("heat"), m: () => toggleLayer("mask"), i: () => toggleLayer("image"),
    0: () => editor.fit(), "+": () => $("#zoom-in").click(), "-": () => $("#zoom-out").click(),
    enter: () => (editor.tool === "polygon" && editor.polygon.length ? editor.closePolygon() : submit()),
    escape: () => editor.cancelPolygon(), s: skip, delete: () => editor.clear(),
  };
  if (/^[1-9]$/.test(k) && state.current && Number(k) < state.current.classes.length) { setClass(Number(k)); return; }
  if (k === " ") { editor.spaceDown = true; e.preventDefault(); return; }
  if (keys[k]) { e.preventDefault(); keys[k](); }
});
document.addEventListener("keyup", (e) => { if (e.key === " ") editor.spaceDown = false; });

// ── tabs ───────────────────────────────────────────────────────────────────────────────────────────────
async function showDashboard() {
  $("#label-view").hidden = true;
  $("#dashboard-view").hidden = false;
  $("#tab-dashboard").classList.add("on");
  $("#tab-label").classList.remove("on");
  try { await renderDashboard($("[data-testid=dashboard]"), pool()); } catch (err) { showError(err); }
}
$("#tab-dashboard").addEventListener("click", showDashboard);
// While the dashboard is open it follows the pool (rescoring progress, new labels, new versions).
setInterval(() => {
  if (!$("#dashboard-view").hidden && document.visibilityState === "visible") {
    renderDashboard($("[data-testid=dashboard]"), pool()).catch(showError);
  }
}, 5000);
$("#tab-label").addEventListener("click", () => {
  $("#label-view").hidden = false;
  $("#dashboard-view").hidden = true;
  $("#tab-label").classList.add("on");
  $("#tab-dashboard").classList.remove("on");
});

// The colour bar: the same ramp as the overlay, on the absolute scale (0 … log C nats).
$("#colour-bar").style.background = `linear-gradient(to right, ${RAMP.map(([t, c]) => `rgb(${c.join(",")}) ${t * 100}%`).join(", ")})`;

setSize(4);
setTool("brush");
boot();
