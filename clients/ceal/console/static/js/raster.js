// Pure pixel functions for the editor: no DOM beyond ImageData, no state. Masks are Uint8Array (H*W),
// row-major, 0 = background, k = class k. Exported for the page and small enough to read in one sitting.

/** Bytes of a base64 string. */
export function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A Float32Array view of base64 little-endian float32 data. */
export function floatsOf(b64) {
  const bytes = bytesOf(b64);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Base64 of a Uint8Array (chunked: String.fromCharCode has an argument limit). */
export function base64Of(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Paint a disc of `radius` pixels (centre x, y in pixel units) with `value`. Returns the number changed. */
export function stamp(mask, width, height, x, y, radius, value) {
  let changed = 0;
  const r2 = radius * radius;
  const x0 = Math.max(0, Math.floor(x - radius)), x1 = Math.min(width - 1, Math.ceil(x + radius));
  const y0 = Math.max(0, Math.floor(y - radius)), y1 = Math.min(height - 1, Math.ceil(y + radius));
  for (let py = y0; py <= y1; py++) {
    for (let px = x0; px <= x1; px++) {
      const dx = px + 0.5 - x, dy = py + 0.5 - y;
      if (dx * dx + dy * dy <= r2) {
        const i = py * width + px;
        if (mask[i] !== value) { mask[i] = value; changed++; }
      }
    }
  }
  return changed;
}

/** Paint a stroke segment from (x0, y0) to (x1, y1) with discs every half radius. */
export function stroke(mask, width, height, x0, y0, x1, y1, radius, value) {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / Math.max(0.5, radius / 2)));
  let changed = 0;
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    changed += stamp(mask, width, height, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, radius, value);
  }
  return changed;
}

/** Fill the polygon `points` ([[x, y], ...] in pixel units) with `value`: even-odd rule, pixel centres. */
export function fillPolygon(mask, width, height, points, value) {
  if (points.length < 3) return 0;
  let changed = 0;
  for (let py = 0; py < height; py++) {
    const yc = py + 0.5;
    const xs = [];
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i], [xj, yj] = points[j];
      if ((yi > yc) !== (yj > yc)) xs.push(xi + ((yc - yi) / (yj - yi)) * (xj - xi));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil(xs[k] - 0.5)), to = Math.min(width - 1, Math.floor(xs[k + 1] - 0.5));
      for (let px = from; px <= to; px++) {
        const i = py * width + px;
        if (mask[i] !== value) { mask[i] = value; changed++; }
      }
    }
  }
  return changed;
}

/** Fill the holes of class `value`: background pixels that the image border cannot reach around it. */
export function fillHoles(mask, width, height, value) {
  const outside = new Uint8Array(width * height);
  const queue = new Int32Array(width * height);
  let head = 0, tail = 0;
  const push = (i) => {
    if (!outside[i] && mask[i] !== value) { outside[i] = 1; queue[tail++] = i; }
  };
  for (let x = 0; x < width; x++) { push(x); push((height - 1) * width + x); }
  for (let y = 0; y < height; y++) { push(y * width); push(y * width + width - 1); }
  while (head < tail) {
    const i = queue[head++], x = i % width;
    if (x > 0) push(i - 1);
    if (x < width - 1) push(i + 1);
    if (i >= width) push(i - width);
    if (i < (height - 1) * width) push(i + width);
  }
  let changed = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!outside[i] && mask[i] === 0) { mask[i] = value; changed++; }
  }
  return changed;
}

/** Grayscale pixels (Float32Array) through a window (centre `level`, width `window`) into `image` RGBA. */
export function windowLevel(pixels, image, level, window) {
  const lo = level - window / 2, scale = 255 / Math.max(window, 1e-12), d = image.data;
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    const v = Math.max(0, Math.min(255, (pixels[i] - lo) * scale));
    d[j] = d[j + 1] = d[j + 2] = v;
    d[j + 3] = 255;
  }
}

/** RGB bytes (Uint8Array H*W*3) into `image` RGBA. */
export function rgbInto(rgb, image) {
  const d = image.data;
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    d[j] = rgb[i]; d[j + 1] = rgb[i + 1]; d[j + 2] = rgb[i + 2]; d[j + 3] = 255;
  }
}

// The uncertainty colour ramp (blue → violet → magenta → red), shared with the colour bar and with the PNG
// overlays `ceal predict` writes (ceal.client.overlay uses the same stops). Saturated all the way up: a pale
// top end vanishes on skin and on bright tissue. Low values are also nearly transparent (heatInto).
export const RAMP = [
  [0.0, [35, 70, 210]],
  [0.35, [140, 50, 220]],
  [0.65, [235, 40, 140]],
  [1.0, [255, 30, 30]],
];

/** [r, g, b] of t in [0, 1] on RAMP. */
export function rampColour(t) {
  const u = Math.max(0, Math.min(1, t));
  for (let k = 1; k < RAMP.length; k++) {
    const [t1, c1] = RAMP[k];
    if (u <= t1) {
      const [t0, c0] = RAMP[k - 1], f = (u - t0) / (t1 - t0);
      return [0, 1, 2].map((c) => Math.round(c0[c] + (c1[c] - c0[c]) * f));
    }
  }
  return RAMP[RAMP.length - 1][1];
}

/** The heat overlay: value / vmax on RAMP (absolute scale); alpha rises linearly with it, so calm pixels stay
 * clear and the image still shows through moderate uncertainty. */
export function heatInto(values, vmax, image, opacity) {
  const d = image.data, lut = [];
  for (let k = 0; k < 256; k++) lut.push(rampColour(k / 255));
  for (let i = 0, j = 0; i < values.length; i++, j += 4) {
    const t = Math.max(0, Math.min(1, values[i] / vmax)), c = lut[Math.round(t * 255)];
    d[j] = c[0]; d[j + 1] = c[1]; d[j + 2] = c[2];
    d[j + 3] = Math.round(255 * opacity * t);
  }
}

export const CLASS_COLOURS = [
  [0, 0, 0], [0, 220, 255], [255, 210, 0], [80, 255, 120], [255, 90, 200], [160, 130, 255], [255, 140, 60],
];

/** The mask layer: a light fill of each class and a solid outline (pixels with a differing 4-neighbour). */
export function maskInto(mask, width, height, image) {
  const d = image.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x, j = i * 4, v = mask[i];
      if (v === 0) { d[j + 3] = 0; continue; }
      const c = CLASS_COLOURS[v % CLASS_COLOURS.length];
      const edge = x === 0 || y === 0 || x === width - 1 || y === height - 1 || mask[i - 1] !== v ||
        mask[i + 1] !== v || mask[i - width] !== v || mask[i + width] !== v;
      d[j] = c[0]; d[j + 1] = c[1]; d[j + 2] = c[2];
      d[j + 3] = edge ? 255 : 40;
    }
  }
}
