// 1D views: the two cross-sections through a clicked point (along x at β = y0, along y at
// α = x0), the primary metric (loss) solid on the left axis and the others dashed on a right axis.

import { scaleLinear, scaleLog, type ScaleContinuousNumeric } from "d3-scale";
import { finiteRange } from "./colormap";
import { FONT_FAMILY, FRAME, INK, INK_SOFT, axisLabel, fitLabel, type Rect } from "./contour";
import type { Cross } from "./protocol";
import { formatCoord, formatTick, tickSpacing, ticks } from "./ticks";

export interface Series {
  name: string;
  values: Float32Array;
}

/** One 1D plot: metrics along one axis with the picked position marked. */
export interface CurvePanel {
  title: string;
  xLabel: string;
  xs: Float32Array;
  series: Series[];
  marker: number;
}

export const SERIES_COLORS = ["#1f4e99", "#c0392b", "#2a8c6e", "#8e44ad"];
export const SERIES_DASH: number[][] = [[], [5, 3], [2, 2], [7, 2, 2, 2]];

/** The metric drawn solid on the left axis: "loss" when present, else the first. */
export function primaryIndex(metrics: readonly string[]): number {
  const k = metrics.findIndex((m) => m.toLowerCase() === "loss");
  return k >= 0 ? k : 0;
}

/** The two panels of a cross-section answer, primary metric first in each. */
export function crossPanels(cross: Cross, xLabel: string, yLabel: string): CurvePanel[] {
  const m = cross.metrics.length;
  const n1 = cross.xs.length;
  const n2 = cross.ys.length;
  const p = primaryIndex(cross.metrics);
  const order = [p, ...Array.from({ length: m }, (_, k) => k).filter((k) => k !== p)];
  const pick = (arr: Float32Array, n: number) =>
    order.map((k) => ({ name: cross.metrics[k], values: arr.subarray(k * n, (k + 1) * n) }));
  return [
    {
      title: `along x at \u03b2 = ${formatCoord(cross.y0)}`,
      xLabel: axisLabel("\u03b1", xLabel),
      xs: cross.xs,
      series: pick(cross.alongX, n1),
      marker: cross.x0,
    },
    {
      title: `along y at \u03b1 = ${formatCoord(cross.x0)}`,
      xLabel: axisLabel("\u03b2", yLabel),
      xs: cross.ys,
      series: pick(cross.alongY, n2),
      marker: cross.y0,
    },
  ];
}

/** Linear interpolation of (xs, ys) at x (NaN outside or next to a non-finite value). */
export function interp1(xs: ArrayLike<number>, ys: ArrayLike<number>, x: number): number {
  const n = xs.length;
  if (n === 0 || !(x >= xs[0] && x <= xs[n - 1])) return NaN;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid;
    else hi = mid;
  }
  if (hi === lo) return ys[lo];
  const t = xs[hi] > xs[lo] ? (x - xs[lo]) / (xs[hi] - xs[lo]) : 0;
  return ys[lo] + (ys[hi] - ys[lo]) * t;
}

/** Range of an axis for some series, padded by 5 % (log: positive values, padded in log). */
export function axisRange(series: readonly Series[], log: boolean): { min: number; max: number } | null {
  let min = Infinity;
  let max = -Infinity;
  for (const s of series) {
    const r = finiteRange(s.values, log);
    if (r) {
      min = Math.min(min, r.min);
      max = Math.max(max, r.max);
    }
  }
  if (!(min <= max)) return null;
  if (log) {
    if (min === max) return { min: min / 1.5, max: max * 1.5 };
    const pad = Math.pow(max / min, 0.05);
    return { min: min / pad, max: max * pad };
  }
  if (min === max) {
    const d = Math.abs(min) * 0.1 || 1;
    return { min: min - d, max: max + d };
  }
  const pad = (max - min) * 0.05;
  return { min: min - pad, max: max + pad };
}

/** A y axis: its range and its scale to pixels in `r` (bottom = min). */
interface Axis {
  min: number;
  max: number;
  log: boolean;
  pix: ScaleContinuousNumeric<number, number>;
}

function yAxisOf(range: { min: number; max: number } | null, log: boolean, r: Rect): Axis | null {
  if (!range) return null;
  const pix = (log ? scaleLog() : scaleLinear()).domain([range.min, range.max]).range([r.y + r.h, r.y]);
  return { ...range, log, pix };
}

function font(size: number, family: string, weight = 400): string {
  return `${weight} ${size}px ${family}`;
}

export interface CurveOptions {
  /** Log axis for the primary metric (when all its values are positive). */
  log: boolean;
  placeholder?: string;
  fontFamily?: string;
}

/** Draws the panels stacked on a width × height (CSS px) canvas at `dpr`. */
export function drawCurves(
  ctx: CanvasRenderingContext2D,
  panels: CurvePanel[] | null,
  width: number,
  height: number,
  dpr: number,
  opts: CurveOptions,
): void {
  const family = opts.fontFamily || FONT_FAMILY;
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (!panels || panels.length === 0) {
    ctx.fillStyle = "#888888";
    ctx.font = font(12, family);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const lines = (opts.placeholder ?? "").split("\n");
    lines.forEach((line, k) => ctx.fillText(line, width / 2, height / 2 + (k - (lines.length - 1) / 2) * 17));
    ctx.restore();
    return;
  }
  const top = 52;
  const gap = 66;
  const bottom = 40;
  const left = 54;
  const right = 52;
  const h = Math.floor((height - top - bottom - gap * (panels.length - 1)) / panels.length);
  panels.forEach((panel, k) => {
    const r = { x: left, y: top + k * (h + gap), w: width - left - right, h };
    drawPanel(ctx, panel, r, opts, family);
  });
  drawLegend(ctx, panels[0].series, { x: left, y: 0, w: width - left - right, h: 0 }, family);
  ctx.restore();
}

function drawPanel(ctx: CanvasRenderingContext2D, panel: CurvePanel, r: Rect, opts: CurveOptions, family: string): void {
  const n = panel.xs.length;
  const xr = finiteRange(panel.xs);
  if (!xr || n < 1) return;
  const x0 = xr.min;
  const x1 = xr.max > xr.min ? xr.max : xr.min + 1;
  const xPix = scaleLinear().domain([x0, x1]).range([r.x, r.x + r.w]);
  const primary = panel.series.slice(0, 1);
  const others = panel.series.slice(1);
  const logLeft = opts.log && primary.length > 0 && primary[0].values.every((v) => !Number.isFinite(v) || v > 0);
  const leftAxis = yAxisOf(axisRange(primary, logLeft), logLeft, r);
  const rightAxis = yAxisOf(axisRange(others, false), false, r);

  // title
  ctx.fillStyle = INK;
  ctx.font = font(13, family, 600);
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(panel.title, r.x, r.y - 10);

  // frame and x axis
  ctx.strokeStyle = FRAME;
  ctx.lineWidth = 1;
  ctx.strokeRect(r.x - 0.5, r.y - 0.5, r.w + 1, r.h + 1);
  ctx.font = font(11, family);
  ctx.fillStyle = INK;
  const xCount = Math.max(3, Math.round(r.w / 70));
  const xt = ticks(x0, x1, xCount);
  const xStep = tickSpacing(x0, x1, xCount);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.beginPath();
  for (const v of xt) {
    const x = Math.round(xPix(v)) + 0.5;
    ctx.moveTo(x, r.y + r.h + 0.5);
    ctx.lineTo(x, r.y + r.h + 4.5);
    ctx.fillText(formatTick(v, xStep), xPix(v), r.y + r.h + 7);
  }
  ctx.stroke();
  ctx.font = font(12, family);
  ctx.textBaseline = "alphabetic";
  ctx.fillText(fitLabel(ctx, panel.xLabel, r.w + 60), r.x + r.w / 2, r.y + r.h + 34);

  // y axes
  const yAxis = (axis: Axis, side: "left" | "right", color: string) => {
    ctx.font = font(11, family);
    ctx.fillStyle = color;
    ctx.strokeStyle = FRAME;
    const n = Math.max(3, Math.round(r.h / 40));
    const tv = ticks(axis.min, axis.max, n, axis.log);
    const step = tickSpacing(axis.min, axis.max, n, axis.log);
    ctx.textAlign = side === "left" ? "right" : "left";
    ctx.textBaseline = "middle";
    ctx.beginPath();
    for (const v of tv) {
      const y = Math.round(axis.pix(v)) + 0.5;
      if (side === "left") {
        ctx.moveTo(r.x - 0.5, y);
        ctx.lineTo(r.x - 4.5, y);
        ctx.fillText(formatTick(v, step), r.x - 7, y);
      } else {
        ctx.moveTo(r.x + r.w + 0.5, y);
        ctx.lineTo(r.x + r.w + 4.5, y);
        ctx.fillText(formatTick(v, step), r.x + r.w + 7, y);
      }
    }
    ctx.stroke();
  };
  if (leftAxis) yAxis(leftAxis, "left", SERIES_COLORS[0]);
  if (rightAxis) yAxis(rightAxis, "right", SERIES_COLORS[1]);

  // the picked position
  ctx.save();
  ctx.beginPath();
  ctx.rect(r.x, r.y, r.w, r.h);
  ctx.clip();
  if (panel.marker >= x0 && panel.marker <= x1) {
    ctx.strokeStyle = "#9a9a9a";
    ctx.setLineDash([3, 3]);
    ctx.lineWidth = 1;
    ctx.beginPath();
    const mx = Math.round(xPix(panel.marker)) + 0.5;
    ctx.moveTo(mx, r.y);
    ctx.lineTo(mx, r.y + r.h);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  // curves
  panel.series.forEach((s, k) => {
    const axis = k === 0 ? leftAxis : rightAxis;
    if (!axis) return;
    ctx.strokeStyle = SERIES_COLORS[k % SERIES_COLORS.length];
    ctx.setLineDash(SERIES_DASH[k % SERIES_DASH.length]);
    ctx.lineWidth = 1.6;
    ctx.lineJoin = "round";
    ctx.beginPath();
    let pen = false;
    for (let p = 0; p < n; p++) {
      const v = s.values[p];
      if (!Number.isFinite(v) || (axis.log && !(v > 0))) {
        pen = false;
        continue;
      }
      const x = xPix(panel.xs[p]);
      const y = axis.pix(v);
      if (pen) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
    const mv = interp1(panel.xs, s.values, panel.marker);
    if (Number.isFinite(mv) && (!axis.log || mv > 0)) {
      ctx.beginPath();
      ctx.arc(xPix(panel.marker), axis.pix(mv), 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = "#ffffff";
      ctx.fill();
      ctx.lineWidth = 1.4;
      ctx.stroke();
    }
  });
  ctx.restore();
}

function drawLegend(ctx: CanvasRenderingContext2D, series: Series[], r: Rect, family: string): void {
  ctx.save();
  ctx.font = font(11, family);
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  // one line at the top of the panel column, from its left edge
  let x = r.x;
  const y = 14;
  const items = series.map((s, k) => ({ s, k, w: ctx.measureText(s.name).width + 20 }));
  for (const { s, k, w } of items) {
    ctx.strokeStyle = SERIES_COLORS[k % SERIES_COLORS.length];
    ctx.setLineDash(SERIES_DASH[k % SERIES_DASH.length]);
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 16, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = INK_SOFT;
    ctx.fillText(s.name, x + 20, y);
    x += w + 14;
  }
  ctx.restore();
}
