// The contour view: colour raster, isolines (d3-contour), colorbar and axes on a canvas.
//
// Pure functions (levels, isolines, raster, layout) are separated from the canvas calls so that
// they can be unit-tested without a browser.

import { contours } from "d3-contour";
import {
  ColorScale,
  NONFINITE_CSS,
  NONFINITE_HATCH_CSS,
  NONFINITE_HATCH_RGBA,
  NONFINITE_RGBA,
  TABLE_SIZE,
  colorTable,
  finiteRange,
  hasNonFinite,
  tableCss,
} from "./colormap";
import { bilinear, brackets } from "./grid";
import { formatTick, tickSpacing, ticks } from "./ticks";

// ---- pure parts ----------------------------------------------------------------------------

/**
 * `n` isoline thresholds strictly inside [min, max]: evenly spaced, or geometric when `log`
 * (then min must be > 0). Empty when the range is empty or degenerate.
 */
export function contourLevels(min: number, max: number, n: number, log = false): number[] {
  n = Math.max(0, Math.floor(n));
  if (!(n > 0) || !Number.isFinite(min) || !Number.isFinite(max) || !(max > min)) return [];
  const out: number[] = [];
  if (log) {
    if (!(min > 0)) return [];
    const r = Math.log(max / min);
    for (let k = 1; k <= n; k++) out.push(min * Math.exp((r * k) / (n + 1)));
  } else {
    for (let k = 1; k <= n; k++) out.push(min + ((max - min) * k) / (n + 1));
  }
  return out;
}

/** An isoline: polylines as flat [u0, v0, u1, v1, ...] in fractional grid indices (column, row). */
export interface Isoline {
  value: number;
  lines: number[][];
}

/**
 * Isolines of `field` (ny × nx, row-major) at `levels`, in fractional grid index coordinates
 * (u = column in [0, nx-1], v = row in [0, ny-1]). Non-finite points take no part: the segments
 * of any grid cell touching one are left out, and so are d3-contour's closing segments along the
 * border of the grid.
 */
export function computeIsolines(field: ArrayLike<number>, nx: number, ny: number, levels: readonly number[]): Isoline[] {
  if (nx < 2 || ny < 2 || levels.length === 0) return [];
  const range = finiteRange(field);
  if (!range) return [];
  const bad = new Uint8Array(nx * ny);
  const filled = new Float64Array(nx * ny);
  const above = range.max + (range.max - range.min + 1); // above every level: lines hug the region, then get masked
  let anyBad = false;
  for (let k = 0; k < nx * ny; k++) {
    const v = field[k];
    if (Number.isFinite(v)) filled[k] = v;
    else {
      filled[k] = above;
      bad[k] = 1;
      anyBad = true;
    }
  }
  // a cell (between grid points) is masked when any of its corners is non-finite
  const cellBad = (u: number, v: number): boolean => {
    if (!anyBad) return false;
    const j = Math.min(nx - 2, Math.max(0, Math.floor(u)));
    const i = Math.min(ny - 2, Math.max(0, Math.floor(v)));
    return !!(bad[i * nx + j] || bad[i * nx + j + 1] || bad[(i + 1) * nx + j] || bad[(i + 1) * nx + j + 1]);
  };
  const gen = contours().size([nx, ny]).thresholds(levels.slice() as number[]);
  const out: Isoline[] = [];
  for (const level of levels) {
    const mp = gen.contour(filled as unknown as number[], level);
    const lines: number[][] = [];
    for (const polygon of mp.coordinates) {
      for (const ring of polygon) {
        let cur: number[] = [];
        for (let k = 0; k + 1 < ring.length; k++) {
          const [ax, ay] = ring[k];
          const [bx, by] = ring[k + 1];
          // d3-contour puts value k at coordinate k + 0.5 and closes rings along 0 and n
          const border = ax <= 0 || ax >= nx || ay <= 0 || ay >= ny || bx <= 0 || bx >= nx || by <= 0 || by >= ny;
          const u0 = ax - 0.5;
          const v0 = ay - 0.5;
          const u1 = bx - 0.5;
          const v1 = by - 0.5;
          if (border || cellBad((u0 + u1) / 2, (v0 + v1) / 2)) {
            if (cur.length >= 4) lines.push(cur);
            cur = [];
            continue;
          }
          if (cur.length === 0) cur.push(u0, v0);
          cur.push(u1, v1);
        }
        if (cur.length >= 4) lines.push(cur);
      }
    }
    out.push({ value: level, lines });
  }
  return out;
}

/** Coordinate at fractional index f along a sorted axis (linear between grid points, clamped). */
export function coordAt(coords: ArrayLike<number>, f: number): number {
  const n = coords.length;
  if (n === 0) return NaN;
  if (f <= 0) return coords[0];
  if (f >= n - 1) return coords[n - 1];
  const k = Math.floor(f);
  return coords[k] + (coords[k + 1] - coords[k]) * (f - k);
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface ContourLayout {
  width: number;
  height: number;
  plot: Rect;
  bar: Rect;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

export const MARGIN = { top: 34, left: 58, bottom: 46, right: 88, barGap: 14, barWidth: 13 };

/**
 * Where things go on a width × height (CSS px) canvas showing [x0, x1] × [y0, y1]: the plot
 * area (as square in data units as the room allows, within an aspect of 1:2..2:1) and the
 * colorbar on its right. Integer CSS pixels so the raster aligns with the device pixels.
 */
export function contourLayout(width: number, height: number, x0: number, x1: number, y0: number, y1: number): ContourLayout {
  const availW = Math.max(40, width - MARGIN.left - MARGIN.right);
  const availH = Math.max(40, height - MARGIN.top - MARGIN.bottom);
  const spanX = Math.abs(x1 - x0) || 1;
  const spanY = Math.abs(y1 - y0) || 1;
  const aspect = Math.min(2, Math.max(0.5, spanX / spanY));
  let w = availW;
  let h = w / aspect;
  if (h > availH) {
    h = availH;
    w = h * aspect;
  }
  w = Math.round(w);
  h = Math.round(h);
  const extra = availW - w;
  const plot = { x: MARGIN.left + Math.round(extra / 2), y: MARGIN.top + Math.round((availH - h) / 2), w, h };
  const bar = { x: plot.x + w + MARGIN.barGap, y: plot.y, w: MARGIN.barWidth, h };
  return { width, height, plot, bar, x0, x1, y0, y1 };
}

/** CSS pixel of a data point. */
export function dataToPixel(L: ContourLayout, x: number, y: number): [number, number] {
  const px = L.plot.x + ((x - L.x0) / (L.x1 - L.x0 || 1)) * L.plot.w;
  const py = L.plot.y + L.plot.h - ((y - L.y0) / (L.y1 - L.y0 || 1)) * L.plot.h;
  return [px, py];
}

/** Data point under a CSS pixel, or null outside the plot area. */
export function pixelToData(L: ContourLayout, px: number, py: number): [number, number] | null {
  const fx = (px - L.plot.x) / L.plot.w;
  const fy = (L.plot.y + L.plot.h - py) / L.plot.h;
  if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return null;
  return [L.x0 + fx * (L.x1 - L.x0), L.y0 + fy * (L.y1 - L.y0)];
}

/**
 * RGBA pixels (w × h, top row = largest y) of `field` bilinearly interpolated in value at the
 * pixel centres over [x0, x1] × [y0, y1], coloured through `table`. Non-finite samples get the
 * non-finite colour with a light diagonal hatch of period `hatch` pixels (0: no hatch).
 */
export function rasterize(
  field: ArrayLike<number>,
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  w: number,
  h: number,
  scale: ColorScale,
  table: Uint8ClampedArray,
  hatch = 0,
): Uint8ClampedArray<ArrayBuffer> {
  const nx = xs.length;
  const ny = ys.length;
  const x0 = xs[0];
  const x1 = xs[nx - 1];
  const y0 = ys[0];
  const y1 = ys[ny - 1];
  const px = new Float64Array(w);
  const py = new Float64Array(h);
  for (let q = 0; q < w; q++) px[q] = x0 + ((q + 0.5) / w) * (x1 - x0);
  for (let p = 0; p < h; p++) py[p] = y1 - ((p + 0.5) / h) * (y1 - y0);
  const all = (n: number) => Int32Array.from({ length: n }, (_, k) => k);
  const cb = brackets(xs, all(nx), px);
  const rb = brackets(ys, all(ny), py);
  const vals = bilinear(field, nx, rb, cb);
  const out = new Uint8ClampedArray(w * h * 4);
  const lineW = Math.max(1, Math.round(hatch / 6));
  for (let p = 0; p < h; p++) {
    for (let q = 0; q < w; q++) {
      const k = p * w + q;
      const idx = scale.index(vals[k]);
      const o = 4 * k;
      if (idx >= 0) {
        const s = 4 * idx;
        out[o] = table[s];
        out[o + 1] = table[s + 1];
        out[o + 2] = table[s + 2];
        out[o + 3] = 255;
      } else {
        const c = hatch > 0 && (p + q) % hatch < lineW ? NONFINITE_HATCH_RGBA : NONFINITE_RGBA;
        out[o] = c[0];
        out[o + 1] = c[1];
        out[o + 2] = c[2];
        out[o + 3] = 255;
      }
    }
  }
  return out;
}

// ---- drawing -------------------------------------------------------------------------------

export const FONT_FAMILY =
  'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans", sans-serif';

export const INK = "#222222";
export const INK_SOFT = "#555555";
export const FRAME = "#444444";

export interface ContourFigure {
  xs: ArrayLike<number>;
  ys: ArrayLike<number>;
  /** ny × nx values of the metric drawn, or null when nothing is known yet. */
  field: Float32Array | null;
  metric: string;
  xLabel: string;
  yLabel: string;
  log: boolean;
  colormap: string;
  nLevels: number;
  /** Shown in the plot area when there is no field. */
  placeholder?: string;
  fontFamily?: string;
  /** The colour scale's range when it is shared with other views (default: the field's own). */
  range?: { min: number; max: number } | null;
  /** Draw the colorbar (default true; panels of a comparison draw one for all). */
  colorbar?: boolean;
}

/** What a drawing produced: its layout (for hit tests) and the scale and levels it used. */
export interface ContourDrawn {
  layout: ContourLayout;
  scale: ColorScale | null;
  levels: number[];
}

function font(size: number, family: string, weight = 400): string {
  return `${weight} ${size}px ${family}`;
}

/** The axis label: "α · random #0, filter-norm" (or just α / β without provenance). */
export function axisLabel(symbol: string, label: string): string {
  const l = (label ?? "").trim();
  return l ? `${symbol} \u00b7 ${l}` : symbol;
}

/**
 * Draws the whole contour figure on `ctx` (whose canvas is width × height CSS px at `dpr`
 * device pixels per CSS pixel). Returns the layout for hit testing.
 */
export function drawContour(ctx: CanvasRenderingContext2D, fig: ContourFigure, width: number, height: number, dpr: number): ContourDrawn {
  const family = fig.fontFamily || FONT_FAMILY;
  const nx = fig.xs.length;
  const ny = fig.ys.length;
  const x0 = nx ? fig.xs[0] : -1;
  const x1 = nx ? fig.xs[nx - 1] : 1;
  const y0 = ny ? fig.ys[0] : -1;
  const y1 = ny ? fig.ys[ny - 1] : 1;
  const L = contourLayout(width, height, x0, x1 === x0 ? x0 + 1 : x1, y0, y1 === y0 ? y0 + 1 : y1);
  const { plot, bar } = L;

  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);

  const field = fig.field && nx >= 1 && ny >= 1 && fig.field.length === nx * ny ? fig.field : null;
  const range = field ? (fig.range ?? finiteRange(field, fig.log)) : null;
  const scale = range ? new ColorScale(range.min, range.max, fig.log) : null;
  const table = colorTable(fig.colormap);
  let levels: number[] = [];

  // raster
  if (field && scale) {
    const pw = Math.max(1, Math.round(plot.w * dpr));
    const ph = Math.max(1, Math.round(plot.h * dpr));
    const xs = nx >= 2 ? fig.xs : [x0, x0 + 1];
    const ys = ny >= 2 ? fig.ys : [y0, y0 + 1];
    const f = nx >= 2 && ny >= 2 ? field : expandDegenerate(field, nx, ny);
    const rgba = rasterize(f, xs, ys, pw, ph, scale, table, Math.round(7 * dpr));
    const img = new ImageData(rgba, pw, ph);
    ctx.putImageData(img, Math.round(plot.x * dpr), Math.round(plot.y * dpr));
  } else {
    ctx.fillStyle = field ? NONFINITE_CSS : "#f4f4f4";
    ctx.fillRect(plot.x, plot.y, plot.w, plot.h);
  }

  // isolines
  if (field && scale && nx >= 2 && ny >= 2) {
    levels = contourLevels(scale.min, scale.max, fig.nLevels, fig.log);
    const iso = computeIsolines(field, nx, ny, levels);
    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x, plot.y, plot.w, plot.h);
    ctx.clip();
    ctx.strokeStyle = "rgba(25, 25, 25, 0.62)";
    ctx.lineWidth = 0.8;
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    ctx.beginPath();
    for (const line of iso) {
      for (const pts of line.lines) {
        for (let k = 0; k < pts.length; k += 2) {
          const [px, py] = dataToPixel(L, coordAt(fig.xs, pts[k]), coordAt(fig.ys, pts[k + 1]));
          if (k === 0) ctx.moveTo(px, py);
          else ctx.lineTo(px, py);
        }
      }
    }
    ctx.stroke();
    ctx.restore();
  }

  if (!field && fig.placeholder) {
    ctx.fillStyle = "#888888";
    ctx.font = font(12, family);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(fig.placeholder, plot.x + plot.w / 2, plot.y + plot.h / 2);
  }

  // the model at the origin
  if (field && x0 <= 0 && 0 <= x1 && y0 <= 0 && 0 <= y1) {
    const [ox, oy] = dataToPixel(L, 0, 0);
    drawStar(ctx, ox, oy, 7.5);
  }

  drawAxes(ctx, L, fig, family);
  if (fig.colorbar !== false) drawColorbar(ctx, bar, scale, table, levels, field ? hasNonFinite(field) : false, family);

  // title
  ctx.fillStyle = INK;
  ctx.font = font(14, family, 600);
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  const title = fig.metric || "";
  ctx.fillText(title, plot.x, plot.y - 12);
  if (fig.log && title) {
    const w = ctx.measureText(title).width;
    ctx.font = font(11, family);
    ctx.fillStyle = INK_SOFT;
    ctx.fillText("log scale", plot.x + w + 8, plot.y - 12);
  }
  ctx.restore();
  return { layout: L, scale, levels };
}

function expandDegenerate(field: Float32Array, nx: number, ny: number): Float32Array {
  // a 1-wide grid drawn as a 2-wide one (same values on both sides)
  const NX = Math.max(2, nx);
  const NY = Math.max(2, ny);
  const out = new Float32Array(NX * NY);
  for (let i = 0; i < NY; i++) for (let j = 0; j < NX; j++) out[i * NX + j] = field[Math.min(i, ny - 1) * nx + Math.min(j, nx - 1)];
  return out;
}

/** A white five-pointed star with a dark outline: the trained model. */
export function drawStar(ctx: CanvasRenderingContext2D, cx: number, cy: number, r: number): void {
  ctx.save();
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const rad = k % 2 === 0 ? r : r * 0.45;
    const a = -Math.PI / 2 + (k * Math.PI) / 5;
    const x = cx + rad * Math.cos(a);
    const y = cy + rad * Math.sin(a);
    if (k === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.closePath();
  ctx.fillStyle = "#ffffff";
  ctx.strokeStyle = "#1a1a1a";
  ctx.lineWidth = 1.3;
  ctx.lineJoin = "miter";
  ctx.fill();
  ctx.stroke();
  ctx.restore();
}

function drawAxes(ctx: CanvasRenderingContext2D, L: ContourLayout, fig: ContourFigure, family: string): void {
  const { plot } = L;
  ctx.save();
  ctx.strokeStyle = FRAME;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.x - 0.5, plot.y - 0.5, plot.w + 1, plot.h + 1);
  ctx.fillStyle = INK;
  ctx.font = font(11, family);
  const tickLen = 4;
  const xCount = Math.max(3, Math.round(plot.w / 70));
  const xt = ticks(L.x0, L.x1, xCount);
  const xStep = tickSpacing(L.x0, L.x1, xCount);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.beginPath();
  for (const v of xt) {
    const [px] = dataToPixel(L, v, L.y0);
    const x = Math.round(px) + 0.5;
    ctx.moveTo(x, plot.y + plot.h + 0.5);
    ctx.lineTo(x, plot.y + plot.h + 0.5 + tickLen);
    ctx.fillText(formatTick(v, xStep), px, plot.y + plot.h + tickLen + 3);
  }
  const yCount = Math.max(3, Math.round(plot.h / 60));
  const yt = ticks(L.y0, L.y1, yCount);
  const yStep = tickSpacing(L.y0, L.y1, yCount);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of yt) {
    const [, py] = dataToPixel(L, L.x0, v);
    const y = Math.round(py) + 0.5;
    ctx.moveTo(plot.x - 0.5, y);
    ctx.lineTo(plot.x - 0.5 - tickLen, y);
    ctx.fillText(formatTick(v, yStep), plot.x - tickLen - 4, py);
  }
  ctx.stroke();

  ctx.font = font(12, family);
  ctx.fillStyle = INK;
  ctx.textAlign = "center";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(fitLabel(ctx, axisLabel("\u03b1", fig.xLabel), plot.w + 40), plot.x + plot.w / 2, plot.y + plot.h + 38);
  ctx.save();
  ctx.translate(plot.x - 42, plot.y + plot.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "alphabetic";
  ctx.fillText(fitLabel(ctx, axisLabel("\u03b2", fig.yLabel), plot.h + 20), 0, 0);
  ctx.restore();
  ctx.restore();
}

/** Separator before the last part of an axis label: its parameter scope, as in
 * "α · random #0, filter-norm · trainable (1.2 k of 3.4 k params)". */
const LABEL_SEP = " \u00b7 ";

/**
 * An axis label shortened to fit `maxWidth`: as `fitText`, except that a last part after
 * " · " (beyond the symbol's, e.g. which parameters move) is kept whole and what comes before
 * it is shortened, when there is room for both.
 */
export function fitLabel(ctx: CanvasRenderingContext2D, text: string, maxWidth: number): string {
  if (ctx.measureText(text).width <= maxWidth) return text;
  const first = text.indexOf(LABEL_SEP);
  const last = text.lastIndexOf(LABEL_SEP);
  if (first < 0 || last === first) return fitText(ctx, text, maxWidth);
  const tail = text.slice(last);
  const room = maxWidth - ctx.measureText(tail).width;
  const head = text.slice(0, first + LABEL_SEP.length);  // "α · ", kept before the ellipsis
  if (room < ctx.measureText(head + "\u2026").width) return fitText(ctx, text, maxWidth);
  return fitText(ctx, text.slice(0, last), room) + tail;
}

/** `text` shortened with an ellipsis to fit `maxWidth` in the current font. */
export function fitText(ctx: CanvasRenderingContext2D, text: string, maxWidth: number): string {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(text.slice(0, mid) + "\u2026").width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + "\u2026";
}

function drawColorbar(
  ctx: CanvasRenderingContext2D,
  bar: Rect,
  scale: ColorScale | null,
  table: Uint8ClampedArray,
  levels: number[],
  nonFinite: boolean,
  family: string,
): void {
  ctx.save();
  const swatch = nonFinite ? 14 : 0;
  const barH = bar.h - (swatch ? swatch + 10 : 0);
  if (scale) {
    // gradient, top = max
    for (let k = 0; k < barH; k++) {
      const t = 1 - (k + 0.5) / barH;
      ctx.fillStyle = tableCss(table, Math.round(t * (TABLE_SIZE - 1)));
      ctx.fillRect(bar.x, bar.y + k, bar.w, 1.2);
    }
    // isoline levels across the bar
    ctx.strokeStyle = "rgba(25, 25, 25, 0.62)";
    ctx.lineWidth = 0.8;
    ctx.beginPath();
    for (const v of levels) {
      const y = bar.y + (1 - scale.t(v)) * barH;
      ctx.moveTo(bar.x, y);
      ctx.lineTo(bar.x + bar.w, y);
    }
    ctx.stroke();
  } else {
    ctx.fillStyle = "#f4f4f4";
    ctx.fillRect(bar.x, bar.y, bar.w, barH);
  }
  ctx.strokeStyle = FRAME;
  ctx.lineWidth = 1;
  ctx.strokeRect(bar.x - 0.5, bar.y - 0.5, bar.w + 1, barH + 1);

  ctx.fillStyle = INK;
  ctx.font = font(11, family);
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  if (scale) {
    const n = Math.max(3, Math.round(barH / 55));
    let tv = ticks(scale.min, scale.max, n, scale.log);
    if (tv.length < 2) tv = [scale.min, scale.max];
    const step = tickSpacing(scale.min, scale.max, n, scale.log);
    ctx.beginPath();
    for (const v of tv) {
      const y = bar.y + (1 - scale.t(v)) * barH;
      ctx.moveTo(bar.x + bar.w + 0.5, Math.round(y) + 0.5);
      ctx.lineTo(bar.x + bar.w + 4.5, Math.round(y) + 0.5);
      ctx.fillText(formatTick(v, step), bar.x + bar.w + 7, y);
    }
    ctx.strokeStyle = FRAME;
    ctx.stroke();
  }
  if (swatch) {
    const sy = bar.y + barH + 10;
    ctx.fillStyle = NONFINITE_CSS;
    ctx.fillRect(bar.x, sy, bar.w, swatch);
    ctx.strokeStyle = NONFINITE_HATCH_CSS;
    ctx.save();
    ctx.beginPath();
    ctx.rect(bar.x, sy, bar.w, swatch);
    ctx.clip();
    ctx.beginPath();
    for (let d = -swatch; d < bar.w + swatch; d += 7) {
      ctx.moveTo(bar.x + d, sy + swatch);
      ctx.lineTo(bar.x + d + swatch, sy);
    }
    ctx.stroke();
    ctx.restore();
    ctx.strokeStyle = FRAME;
    ctx.strokeRect(bar.x - 0.5, sy - 0.5, bar.w + 1, swatch + 1);
    ctx.fillStyle = INK;
    ctx.fillText("NaN/\u221e", bar.x + bar.w + 7, sy + swatch / 2);
  }
  ctx.restore();
}
