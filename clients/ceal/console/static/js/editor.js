// The viewer/editor of one image: stacked canvases (image, uncertainty heat, mask, polygon draft), a view
// transform (zoom, pan), window/level, and the mask tools with undo/redo. No network: main.js feeds it.
import * as R from "./raster.js";

const MAX_UNDO = 100;

export class Editor {
  constructor(root, onChange) {
    this.root = root;
    this.onChange = onChange;
    this.stage = root.querySelector("#stage");
    this.layers = root.querySelector("#layers");
    this.canvas = {
      image: root.querySelector("[data-testid=image-canvas]"),
      heat: root.querySelector("#heat-canvas"),
      mask: root.querySelector("[data-testid=mask-canvas]"),
      draft: root.querySelector("#draft-canvas"),
    };
    this.tool = "brush";
    this.size = 4;
    this.cls = 1;
    this.opacity = 0.6;
    this.show = { image: true, heat: true, mask: true };
    this.view = { zoom: 1, x: 0, y: 0 };
    this.item = null;
    this.polygon = [];
    this.bindPointer();
  }

  /** Show a new image payload (see ceal.console.payloads.image). */
  load(item) {
    const { width, height } = item;
    this.item = item;
    this.width = width;
    this.height = height;
    for (const c of Object.values(this.canvas)) { c.width = width; c.height = height; }
    this.layers.style.width = `${width}px`;
    this.layers.style.height = `${height}px`;
    if (item.channels === 1) {
      this.pixels = R.floatsOf(item.pixels);
      const [lo, hi] = item.pixel_range;
      this.wl = { level: (lo + hi) / 2, window: Math.max(hi - lo, 1e-6), lo, hi };
    } else {
      this.rgb = R.bytesOf(item.pixels);
      this.wl = null;
    }
    this.proposal = item.proposal ? R.bytesOf(item.proposal) : new Uint8Array(width * height);
    this.uncertainty = item.uncertainty ? R.floatsOf(item.uncertainty) : new Float32Array(width * height);
    const start = item.label ? R.bytesOf(item.label) : this.proposal;
    this.mask = Uint8Array.from(start);
    this.undoStack = [];
    this.redoStack = [];
    this.polygon = [];
    this.fit();
    this.renderImage();
    this.renderHeat();
    this.renderMask();
    this.renderDraft();
  }

  // ── rendering ────────────────────────────────────────────────────────────────────────────────────────

  ctx(name) { return this.canvas[name].getContext("2d", { willReadFrequently: true }); }

  renderImage() {
    const ctx = this.ctx("image"), img = ctx.createImageData(this.width, this.height);
    if (this.wl) R.windowLevel(this.pixels, img, this.wl.level, this.wl.window);
    else R.rgbInto(this.rgb, img);
    ctx.putImageData(img, 0, 0);
    this.canvas.image.hidden = !this.show.image;
  }

  renderHeat() {
    const ctx = this.ctx("heat"), img = ctx.createImageData(this.width, this.height);
    R.heatInto(this.uncertainty, this.item.uncertainty_max, img, this.opacity);
    ctx.putImageData(img, 0, 0);
    this.canvas.heat.hidden = !this.show.heat;
  }

  renderMask() {
    const ctx = this.ctx("mask"), img = ctx.createImageData(this.width, this.height);
    R.maskInto(this.mask, this.width, this.height, img);
    ctx.putImageData(img, 0, 0);
    this.canvas.mask.style.opacity = this.show.mask ? "1" : "0";
    this.canvas.mask.dataset.painted = String(this.mask.reduce((n, v) => n + (v !== 0), 0));
  }

  renderDraft(cursor) {
    const ctx = this.canvas.draft.getContext("2d");
    ctx.clearRect(0, 0, this.width, this.height);
    if (!this.polygon.length) return;
    ctx.strokeStyle = "#ffe14d";
    ctx.lineWidth = Math.max(0.5, 1.5 / this.view.zoom);
    ctx.beginPath();
    this.polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (cursor) ctx.lineTo(cursor[0], cursor[1]);
    ctx.stroke();
    ctx.fillStyle = "#ffe14d";
    for (const [x, y] of this.polygon) ctx.fillRect(x - 0.75, y - 0.75, 1.5, 1.5);
  }

  applyView() {
    const { zoom, x, y } = this.view;
    this.layers.style.transform = `translate(${x}px, ${y}px) scale(${zoom})`;
    this.onChange?.("view");
  }

  fit() {
    const w = this.stage.clientWidth || 600, h = this.stage.clientHeight || 500;
    const zoom = Math.max(0.05, Math.min(w / this.width, h / this.height) * 0.96);
    this.view = { zoom, x: (w - this.width * zoom) / 2, y: (h - this.height * zoom) / 2 };
    this.applyView();
  }

  zoomBy(factor, cx, cy) {
    const v = this.view, zoom = Math.max(0.05, Math.min(64, v.zoom * factor));
    const f = zoom / v.zoom;
    this.view = { zoom, x: cx - (cx - v.x) * f, y: cy - (cy - v.y) * f };
    this.applyView();
  }

  setWindow(level, window) {
    if (!this.wl) return;
    this.wl.level = level;
    this.wl.window = Math.max(window, 1e-6);
    this.renderImage();
  }

  setOpacity(opacity) { this.opacity = opacity; this.renderHeat(); }

  toggle(layer, on) {
    this.show[layer] = on ?? !this.show[layer];
    if (layer === "mask") this.renderMask(); else if (layer === "heat") this.renderHeat(); else this.renderImage();
    this.onChange?.("layers");
  }

  // ── editing ──────────────────────────────────────────────────────────────────────────────────────────

  checkpoint() {
    this.undoStack.push(Uint8Array.from(this.mask));
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.redoStack = [];
  }

  edit(fn) {
    this.checkpoint();
    if (!fn(this.mask)) this.undoStack.pop(); // nothing changed: nothing to undo
    this.renderMask();
    this.onChange?.("mask");
  }

  undo() {
    if (!this.undoStack.length) return;
    this.redoStack.push(this.mask);
    this.mask = this.undoStack.pop();
    this.renderMask();
    this.onChange?.("mask");
  }

  redo() {
    if (!this.redoStack.length) return;
    this.undoStack.push(this.mask);
    this.mask = this.redoStack.pop();
    this.renderMask();
    this.onChange?.("mask");
  }

  clear() { this.edit((m) => { const n = m.some((v) => v); m.fill(0); return n; }); }
  acceptProposal() { this.edit((m) => { m.set(this.proposal); return true; }); }
  fillHoles() { this.edit((m) => R.fillHoles(m, this.width, this.height, this.cls) > 0); }

  closePolygon() {
    const points = this.polygon;
    this.polygon = [];
    this.renderDraft();
    if (points.length >= 3) this.edit((m) => R.fillPolygon(m, this.width, this.height, points, this.cls) > 0);
  }

  cancelPolygon() { this.polygon = []; this.renderDraft(); }

  // ── pointer ──────────────────────────────────────────────────────────────────────────────────────────

  pixelAt(event) {
    const rect = this.canvas.mask.getBoundingClientRect();
    return [((event.clientX - rect.left) / rect.width) * this.width, ((event.clientY - rect.top) / rect.height) * this.height];
  }

  bindPointer() {
    const target = this.canvas.mask;
    let drag = null;
    target.addEventListener("contextmenu", (e) => e.preventDefault());
    target.addEventListener("pointerdown", (e) => {
      if (!this.item) return;
      target.setPointerCapture?.(e.pointerId);
      const panning = e.button === 1 || e.button === 2 || this.tool === "pan" || this.spaceDown;
      if (panning) {
        drag = { pan: true, x: e.clientX, y: e.clientY, vx: this.view.x, vy: this.view.y };
        return;
      }
      if (this.tool === "polygon") {
        this.polygon.push(this.pixelAt(e));
        this.renderDraft();
        return;
      }
      const [x, y] = this.pixelAt(e), value = this.tool === "eraser" ? 0 : this.cls;
      this.checkpoint();
      const changed = R.stamp(this.mask, this.width, this.height, x, y, this.size, value);
      drag = { x, y, value, changed };
      this.renderMask();
    });
    target.addEventListener("pointermove", (e) => {
      if (this.tool === "polygon" && this.polygon.length) this.renderDraft(this.pixelAt(e));
      if (!drag) return;
      if (drag.pan) {
        this.view.x = drag.vx + e.clientX - drag.x;
        this.view.y = drag.vy + e.clientY - drag.y;
        this.applyView();
        return;
      }
      const [x, y] = this.pixelAt(e);
      drag.changed += R.stroke(this.mask, this.width, this.height, drag.x, drag.y, x, y, this.size, drag.value);
      drag.x = x;
      drag.y = y;
      this.renderMask();
    });
    const end = () => {
      if (drag && !drag.pan) {
        if (!drag.changed) this.undoStack.pop();
        this.onChange?.("mask");
      }
      drag = null;
    };
    target.addEventListener("pointerup", end);
    target.addEventListener("pointercancel", end);
    target.addEventListener("dblclick", (e) => {
      if (this.tool !== "polygon") return;
      e.preventDefault();
      this.polygon.pop(); // the double click's second pointerdown added a duplicate vertex
      this.closePolygon();
    });
    this.stage.addEventListener("wheel", (e) => {
      if (!this.item) return;
      e.preventDefault();
      const rect = this.stage.getBoundingClientRect();
      this.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
  }

  /** The mask as the service wants it: H*W uint8, base64. */
  maskB64() { return R.base64Of(this.mask); }
}
