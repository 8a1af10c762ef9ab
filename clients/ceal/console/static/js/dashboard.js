// The dashboard: pool counts, rescoring progress, model versions with Dice, labels per annotator, and the
// learning curve (validation Dice against human labels, one point per version) as an inline SVG.
import { get, query } from "./api.js";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
};

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, text) => {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
};

function stat(label, value, testid) {
  const box = el("div", { class: "stat" }, el("div", { class: "stat-value", text: String(value) }), el("div", { class: "stat-label", text: label }));
  if (testid) box.firstChild.setAttribute("data-testid", testid);
  return box;
}

/** The learning curve: x = human labels the version could train on, y = validation Dice (0-1). */
export function curveSvg(points) {
  const W = 460, H = 240, L = 48, B = 36, T = 14, Rt = 16;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "learning curve" });
  const xmax = Math.max(10, ...points.map((p) => p.human_labels)) * 1.05;
  const px = (x) => L + (x / xmax) * (W - L - Rt), py = (y) => H - B - y * (H - B - T);
  for (let y = 0; y <= 1.0001; y += 0.25) {
    root.append(svg("line", { x1: L, x2: W - Rt, y1: py(y), y2: py(y), class: "grid" }));
    root.append(svg("text", { x: L - 6, y: py(y) + 4, "text-anchor": "end", class: "tick" }, y.toFixed(2)));
  }
  const step = Math.max(1, Math.ceil(xmax / 5 / 5) * 5);
  for (let x = 0; x <= xmax; x += step) {
    root.append(svg("text", { x: px(x), y: H - B + 16, "text-anchor": "middle", class: "tick" }, String(x)));
  }
  root.append(svg("text", { x: (L + W - Rt) / 2, y: H - 4, "text-anchor": "middle", class: "axis" }, "human labels available when the version was made"));
  root.append(svg("text", { x: 12, y: (T + H - B) / 2, transform: `rotate(-90 12 ${(T + H - B) / 2})`, "text-anchor": "middle", class: "axis" }, "validation Dice"));
  if (!points.length) {
    root.append(svg("text", { x: (L + W) / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no version has a validation Dice yet"));
    return root;
  }
  const sorted = [...points].sort((a, b) => a.human_labels - b.human_labels || a.version - b.version);
  root.append(svg("polyline", { points: sorted.map((p) => `${px(p.human_labels)},${py(p.dice)}`).join(" "), class: "curve" }));
  for (const p of sorted) {
    const dot = svg("circle", { cx: px(p.human_labels), cy: py(p.dice), r: 4, class: "dot" });
    dot.append(svg("title", {}, `v${p.version}: Dice ${p.dice.toFixed(3)} with ${p.human_labels} human labels`));
    root.append(dot, svg("text", { x: px(p.human_labels), y: py(p.dice) - 8, "text-anchor": "middle", class: "tick" }, `v${p.version}`));
  }
  return root;
}

export async function renderDashboard(root, pool) {
  const d = await get(`/api/dashboard?${query({ pool })}`);
  const c = d.counts;
  const pct = d.rescoring.total ? Math.round((100 * d.rescoring.done) / d.rescoring.total) : 100;
  const bar = el("div", { class: "progress-bar" });
  bar.style.width = `${pct}%`;
  const models = el("table", { class: "table" }, el("tr", {}, ...["model", "version", "validation Dice", "created", ""].map((h) => el("th", { text: h }))));
  for (const m of d.models) {
    models.append(el("tr", {}, el("td", { text: m.name }), el("td", { text: `v${m.version}` }),
      el("td", { text: m.dice == null ? "—" : m.dice.toFixed(3) }),
      el("td", { text: m.created_at ? m.created_at.slice(0, 16).replace("T", " ") : "—" }),
      el("td", { text: m.latest ? "serving" : "" })));
  }
  const people = el("table", { class: "table" }, el("tr", {}, ...["annotator", "human labels", "time spent"].map((h) => el("th", { text: h }))));
  for (const a of d.annotators) {
    people.append(el("tr", {}, el("td", { text: a.name }), el("td", { text: String(a.labels) }), el("td", { text: `${Math.round(a.seconds / 60)} min` })));
  }
  if (!d.annotators.length) people.append(el("tr", {}, el("td", { colspan: "3", text: "no human labels yet" })));
  root.replaceChildren(
    el("h2", { text: `Pool “${d.pool}” — scored with ${d.model}` }),
    el("div", { class: "stats" },
      stat("images", c.images), stat("series", c.series), stat("human labels", c.labelled_human, "stat-human-labels"),
      stat("pseudo labels", c.labelled_pseudo), stat("leased now", c.leased), stat("scores fresh", c.scored_fresh),
      stat("scores stale", c.scored_stale)),
    el("section", { class: "panel" }, el("h3", { text: "Rescoring with the serving version" }),
      el("div", { class: "progress", role: "progressbar", "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100" },
        bar),
      el("p", { class: "muted", text: `${d.rescoring.done} of ${d.rescoring.total} images scored by ${d.model} (${pct} %)` })),
    el("div", { class: "columns" },
      el("section", { class: "panel" }, el("h3", { text: "Learning curve" }), curveSvg(d.learning_curve)),
      el("section", { class: "panel" }, el("h3", { text: "Model versions" }), models,
        el("h3", { text: "Labels per annotator" }), people)),
  );
}
