// One landscape panel: the contour view (with its hover probe, picked point and trajectory), the
// cross-sections, the readout and the progress line of one Session. The single view (index.ts)
// shows one; a comparison (compare.ts) shows several side by side, on one colour scale.

import { finiteRange } from "./colormap";
import { FONT_FAMILY, dataToPixel, drawContour, pixelToData, type ContourLayout } from "./contour";
import { crossPanels, drawCurves } from "./curve";
import { Grid } from "./grid";
import { drawPath, drawSnapshotRing, nearestSnapshot, pathPixels, snapshotText } from "./path";
import type { Range } from "./scale";
import type { Session } from "./session";
import { formatValue } from "./ticks";

/** A size in CSS px. */
export interface Size {
  width: number;
  height: number;
}

/** How the figure is drawn: the view's (or the comparison's) drawing settings. */
export interface PanelStyle {
  metric: string;
  log: boolean;
  colormap: string;
  nLevels: number;
}

export interface PanelOptions {
  contour: Size;
  curves: Size;
  /** Draw a colorbar beside the contour (default true). */
  colorbar?: boolean;
  /** The readout's text while nothing is hovered. */
  hint?: string;
}

export const HINT = "hover for values \u00b7 click for cross-sections";

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, parent?: HTMLElement): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

function sizeCanvas(canvas: HTMLCanvasElement, s: Size, dpr: number): void {
  canvas.style.width = `${s.width}px`;
  canvas.style.height = `${s.height}px`;
  const bw = Math.round(s.width * dpr);
  const bh = Math.round(s.height * dpr);
  if (canvas.width !== bw) canvas.width = bw;
  if (canvas.height !== bh) canvas.height = bh;
}

/** The device pixel ratio to draw at (1 to 4). */
export function devicePixelRatio(): number {
  return Math.max(1, Math.min(4, (typeof window !== "undefined" && window.devicePixelRatio) || 1));
}

/** A grid point in data coordinates. */
export interface Point {
  x: number;
  y: number;
}

/** The elements and drawings of one panel; the caller places the elements and schedules. */
export class PanelView {
  /** Progress meter and text. */
  readonly progress: HTMLDivElement;
  readonly stage: HTMLDivElement;
  readonly contour: HTMLCanvasElement;
  readonly overlay: HTMLCanvasElement;
  readonly readout: HTMLDivElement;
  readonly curves: HTMLCanvasElement;
  /** The layout of the last drawing (for hit tests), null before the first. */
  layout: ContourLayout | null = null;
  /** The grid drawn, when it has a picture. */
  drawnGrid: Grid | null = null;
  /** The probe: the grid point under the pointer (here or on a linked panel). */
  hover: Point | null = null;
  /** The trajectory's snapshot under the pointer, -1 when none. */
  hoverSnapshot = -1;
  private readonly meter: HTMLDivElement;
  private readonly meterFill: HTMLDivElement;
  private readonly progressText: HTMLSpanElement;
  private readonly errorBox: HTMLDivElement;
  private dpr = 0;
  private style: PanelStyle | null = null;

  constructor(
    readonly session: Session,
    readonly opts: PanelOptions,
  ) {
    this.progress = h("div", "lsw-progress");
    this.meter = h("div", "lsw-meter", this.progress);
    this.meterFill = h("div", "lsw-meter-fill", this.meter);
    this.progressText = h("span", "lsw-progress-text", this.progress);
    this.stage = h("div", "lsw-stage");
    this.stage.style.width = `${opts.contour.width}px`;
    this.stage.style.height = `${opts.contour.height}px`;
    this.contour = h("canvas", "lsw-contour", this.stage);
    this.contour.setAttribute("role", "img");
    this.contour.setAttribute("aria-label", "loss landscape: contour view");
    this.overlay = h("canvas", "lsw-overlay", this.stage);
    this.errorBox = h("div", "lsw-error", this.stage);
    this.errorBox.hidden = true;
    this.errorBox.setAttribute("role", "alert");
    this.readout = h("div", "lsw-readout");
    this.readout.textContent = opts.hint ?? HINT;
    this.curves = h("canvas", "lsw-curves");
    this.curves.setAttribute("role", "img");
    this.curves.setAttribute("aria-label", "cross-sections through the picked point");
  }

  /** Sizes the canvases for `dpr` device pixels per CSS pixel; true when they changed. */
  resize(dpr: number): boolean {
    if (dpr === this.dpr) return false;
    this.dpr = dpr;
    sizeCanvas(this.contour, this.opts.contour, dpr);
    sizeCanvas(this.overlay, this.opts.contour, dpr);
    sizeCanvas(this.curves, this.opts.curves, dpr);
    return true;
  }

  /** The finite range of what the panel shows of `style.metric` (positive values on a log scale). */
  ownRange(style: PanelStyle): Range | null {
    const g = this.session.shownGrid();
    if (!g || !g.drawable) return null;
    const field = g.display(this.session.metricOf(g, style.metric));
    return field ? finiteRange(field, style.log) : null;
  }

  /** Draws the contour figure; `range` is the colour scale shared with other panels, if any. */
  drawFigure(style: PanelStyle, range?: Range | null): void {
    this.style = style;
    const session = this.session;
    const ctx = this.contour.getContext("2d");
    const g = session.shownGrid();
    this.drawnGrid = g && g.drawable ? g : null;
    if (!ctx) return;
    const metric = g ? session.metricOf(g, style.metric) : style.metric;
    const current = g === session.grid;
    const { width, height } = this.opts.contour;
    const drawn = drawContour(
      ctx,
      {
        xs: g ? g.xs : [],
        ys: g ? g.ys : [],
        field: this.drawnGrid ? this.drawnGrid.display(metric) : null,
        metric,
        xLabel: current ? session.trait("x_label") : (g?.xLabel ?? ""),
        yLabel: current ? session.trait("y_label") : (g?.yLabel ?? ""),
        log: style.log,
        colormap: style.colormap,
        nLevels: style.nLevels,
        placeholder: g && g.size > 0 ? "computing\u2026" : "waiting for the kernel\u2026",
        fontFamily: FONT_FAMILY,
        range,
        colorbar: this.opts.colorbar,
      },
      width,
      height,
      this.dpr || 1,
    );
    const L = drawn.layout;
    this.layout = L;
    const path = this.drawnGrid?.path ?? null;
    if (path) {
      ctx.save();
      ctx.setTransform(this.dpr || 1, 0, 0, this.dpr || 1, 0, 0);
      ctx.beginPath();
      ctx.rect(L.plot.x, L.plot.y, L.plot.w, L.plot.h);
      ctx.clip();
      drawPath(ctx, L, path);
      ctx.restore();
    }
    const attrs = session.dataAttributes();
    const data = this.contour.dataset;
    data.gen = attrs.gen;
    data.complete = attrs.complete;
    data.level = attrs.level;
    // the plot area in CSS px and its data range, the colour scale and isolines drawn and the
    // trajectory's snapshots: for browser tests that click, hover or read pixels
    data.plot = JSON.stringify({ x: L.plot.x, y: L.plot.y, w: L.plot.w, h: L.plot.h, x0: L.x0, x1: L.x1, y0: L.y0, y1: L.y1 });
    data.scale = drawn.scale ? JSON.stringify({ min: drawn.scale.min, max: drawn.scale.max, log: drawn.scale.log, levels: drawn.levels }) : "";
    data.path = path ? String(path.count) : "";
    this.stage.classList.toggle("lsw-stale", session.showingStale);
  }

  /** Draws the cross-sections (or the hint to click). */
  drawSide(style: PanelStyle): void {
    const ctx = this.curves.getContext("2d");
    if (!ctx) return;
    const session = this.session;
    const c = session.cross;
    const panels = c ? crossPanels(c, session.trait("x_label"), session.trait("y_label")) : null;
    const waiting = session.picked ? "computing cross-sections\u2026" : "Click the contour to see the two\ncross-sections through a point.";
    const { width, height } = this.opts.curves;
    drawCurves(ctx, panels, width, height, this.dpr || 1, { log: style.log, placeholder: waiting, fontFamily: FONT_FAMILY });
  }

  /** The progress line and the error box. */
  drawStatus(): void {
    const session = this.session;
    const st = session.status();
    const g = session.grid;
    const err = session.errorText();
    this.progressText.textContent = session.progressText();
    const computing = !err && !!g && g.size > 0 && !g.complete && (g.knownCount > 0 || st?.state === "computing");
    this.progress.classList.toggle("lsw-busy", computing);
    const frac = g && g.complete ? 1 : g ? g.fraction : 0;
    this.meterFill.style.width = `${Math.round(frac * 100)}%`;
    this.meter.hidden = !computing;
    this.errorBox.hidden = !err;
    this.errorBox.textContent = err ?? "";
  }

  /** The overlay: the picked point with its section lines, the probe, the hovered snapshot. */
  drawOverlay(): void {
    const ctx = this.overlay.getContext("2d");
    if (!ctx) return;
    const dpr = this.dpr || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    this.overlay.dataset.hover = this.hover ? JSON.stringify(this.hover) : "";
    const L = this.layout;
    if (!L) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(L.plot.x, L.plot.y, L.plot.w, L.plot.h);
    ctx.clip();
    const session = this.session;
    const p = session.cross && session.cross.gen === session.generation ? { x: session.cross.x0, y: session.cross.y0 } : session.picked;
    if (p && this.drawnGrid === session.grid) drawPick(ctx, L, p);
    const path = this.drawnGrid?.path;
    if (path && this.hoverSnapshot >= 0) drawSnapshotRing(ctx, L, path, this.hoverSnapshot);
    else if (this.hover && this.drawnGrid) drawProbe(ctx, L, this.hover);
    ctx.restore();
  }

  /** The CSS pixel of a pointer event on the overlay and the data point under it (null outside). */
  eventPoint(ev: MouseEvent): { pixel: [number, number]; data: [number, number] | null } | null {
    if (!this.layout) return null;
    const rect = this.overlay.getBoundingClientRect();
    const { width, height } = this.opts.contour;
    const sx = rect.width ? width / rect.width : 1;
    const sy = rect.height ? height / rect.height : 1;
    const pixel: [number, number] = [(ev.clientX - rect.left) * sx, (ev.clientY - rect.top) * sy];
    return { pixel, data: pixelToData(this.layout, pixel[0], pixel[1]) };
  }

  /**
   * Shows the probe at the grid point nearest to data point `pt` (null: none) with the values
   * there; `pixel`, the pointer's CSS pixel on this panel, also finds a trajectory snapshot
   * under it, whose step and loss are shown instead.
   */
  probe(pt: [number, number] | null, pixel?: [number, number]): void {
    const g = this.drawnGrid;
    const hint = this.opts.hint ?? HINT;
    this.hoverSnapshot = -1;
    const path = g?.path;
    if (path && pixel && this.layout) {
      this.hoverSnapshot = nearestSnapshot(this.layout, pathPixels(this.layout, path), pixel[0], pixel[1]);
    }
    if (!pt || !g) {
      this.hover = null;
      this.readout.textContent = hint;
      this.readout.classList.remove("lsw-readout-active");
      this.drawOverlay();
      return;
    }
    const j = Grid.nearest(g.xs, pt[0]);
    const i = Grid.nearest(g.ys, pt[1]);
    this.hover = { x: g.xs[j], y: g.ys[i] };
    if (path && this.hoverSnapshot >= 0) {
      const k = this.hoverSnapshot;
      this.readout.textContent = `${snapshotText(path, k)}   \u03b1 = ${formatValue(path.alpha[k])}   \u03b2 = ${formatValue(path.beta[k])}`;
    } else {
      const k = i * g.nx + j;
      const parts = [`\u03b1 = ${formatValue(g.xs[j])}`, `\u03b2 = ${formatValue(g.ys[i])}`];
      const exact = g.known[k] === 2;
      for (const m of g.metrics) {
        const field = g.display(m);
        if (!field) continue;
        parts.push(`${m} = ${exact ? "" : "\u2248"}${formatValue(field[k])}`);
      }
      this.readout.textContent = parts.join("   ");
    }
    this.readout.classList.add("lsw-readout-active");
    this.drawOverlay();
  }

  /** Whether a click may pick here: on the current generation's picture, not an older one. */
  get pickable(): boolean {
    return !!this.session.grid && this.drawnGrid === this.session.grid;
  }

  /** The style last drawn with (null before the first drawing). */
  get drawnStyle(): PanelStyle | null {
    return this.style;
  }
}

/** The picked point: a ring, and dashed lines along which its cross-sections run. */
function drawPick(ctx: CanvasRenderingContext2D, L: ContourLayout, p: Point): void {
  const [px, py] = dataToPixel(L, p.x, p.y);
  ctx.setLineDash([4, 4]);
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(255,255,255,0.85)";
  const gap = 9; // the lines stop short of the ring
  ctx.beginPath();
  ctx.moveTo(L.plot.x, py);
  ctx.lineTo(px - gap, py);
  ctx.moveTo(px + gap, py);
  ctx.lineTo(L.plot.x + L.plot.w, py);
  ctx.moveTo(px, L.plot.y);
  ctx.lineTo(px, py - gap);
  ctx.moveTo(px, py + gap);
  ctx.lineTo(px, L.plot.y + L.plot.h);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.beginPath();
  ctx.arc(px, py, 5, 0, 2 * Math.PI);
  ctx.lineWidth = 3;
  ctx.strokeStyle = "#1a1a1a";
  ctx.stroke();
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#ffffff";
  ctx.stroke();
}

/** The probe: a white dot with a dark ring. */
function drawProbe(ctx: CanvasRenderingContext2D, L: ContourLayout, p: Point): void {
  const [px, py] = dataToPixel(L, p.x, p.y);
  ctx.beginPath();
  ctx.arc(px, py, 3.5, 0, 2 * Math.PI);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "rgba(0,0,0,0.8)";
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(px, py, 2, 0, 2 * Math.PI);
  ctx.fillStyle = "#ffffff";
  ctx.fill();
}
