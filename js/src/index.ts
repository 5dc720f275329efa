// anywidget entry: builds the view, wires the model to a Session, redraws on animation frames.

import type { Initialize, Render } from "@anywidget/types";
import { FONT_FAMILY, dataToPixel, drawContour, pixelToData, type ContourLayout } from "./contour";
import { crossPanels, drawCurves } from "./curve";
import { canvasPngBytes, savePng } from "./export";
import { Grid } from "./grid";
import type { Model, Traits } from "./protocol";
import { Session, type Dirty } from "./session";
import { formatValue } from "./ticks";
import "./widget.css";

/** CSS size of the contour view and of the curves panel. */
export const CONTOUR_SIZE = { width: 480, height: 400 };
export const CURVES_SIZE = { width: 330, height: 400 };

const HINT = "hover for values \u00b7 click for cross-sections";

function h<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, parent?: HTMLElement): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

function sizeCanvas(canvas: HTMLCanvasElement, w: number, h: number, dpr: number): void {
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const bw = Math.round(w * dpr);
  const bh = Math.round(h * dpr);
  if (canvas.width !== bw) canvas.width = bw;
  if (canvas.height !== bh) canvas.height = bh;
}

/** Renders one view of the widget into `el`; returns its cleanup. */
export function renderView(model: Model, el: HTMLElement): () => void {
  const root = h("div", "lsw-root");
  root.style.fontFamily = FONT_FAMILY;
  const main = h("div", "lsw-main", root);
  const bar = h("div", "lsw-toolbar", main);
  const progress = h("div", "lsw-progress", bar);
  const meter = h("div", "lsw-meter", progress);
  const meterFill = h("div", "lsw-meter-fill", meter);
  const progressText = h("span", "lsw-progress-text", progress);
  const save = h("button", "lsw-save", bar);
  save.type = "button";
  save.textContent = "Save PNG";
  save.title = "Download the contour view as landscape.png, exactly as drawn";
  const stage = h("div", "lsw-stage", main);
  stage.style.width = `${CONTOUR_SIZE.width}px`;
  stage.style.height = `${CONTOUR_SIZE.height}px`;
  const contour = h("canvas", "lsw-contour", stage);
  contour.setAttribute("role", "img");
  contour.setAttribute("aria-label", "loss landscape: contour view");
  const overlay = h("canvas", "lsw-overlay", stage);
  const errorBox = h("div", "lsw-error", stage);
  errorBox.hidden = true;
  errorBox.setAttribute("role", "alert");
  const readout = h("div", "lsw-readout", main);
  readout.textContent = HINT;
  const side = h("div", "lsw-side", root);
  const curves = h("canvas", "lsw-curves", side);
  curves.setAttribute("role", "img");
  curves.setAttribute("aria-label", "cross-sections through the picked point");
  el.appendChild(root);

  let dpr = 0;
  let layout: ContourLayout | null = null;
  let drawnGrid: Grid | null = null;
  let hover: { x: number; y: number } | null = null;
  const dirty = new Set<Dirty>(["figure", "curves", "status"]);
  let raf = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let alive = true;

  const session = new Session(model, (what) => {
    what.forEach((w) => dirty.add(w));
    schedule();
  });

  function schedule(): void {
    if (!alive || raf || timer) return;
    // animation frames throttle redraws; the timer keeps hidden tabs (no frames) up to date
    if (typeof requestAnimationFrame === "function") raf = requestAnimationFrame(frame);
    timer = setTimeout(frame, 120);
  }

  function frame(): void {
    if (raf && typeof cancelAnimationFrame === "function") cancelAnimationFrame(raf);
    if (timer) clearTimeout(timer);
    raf = 0;
    timer = null;
    if (!alive) return;
    draw();
  }

  function draw(): void {
    const ratio = Math.max(1, Math.min(4, (typeof window !== "undefined" && window.devicePixelRatio) || 1));
    if (ratio !== dpr) {
      dpr = ratio;
      sizeCanvas(contour, CONTOUR_SIZE.width, CONTOUR_SIZE.height, dpr);
      sizeCanvas(overlay, CONTOUR_SIZE.width, CONTOUR_SIZE.height, dpr);
      sizeCanvas(curves, CURVES_SIZE.width, CURVES_SIZE.height, dpr);
      dirty.add("figure").add("curves");
    }
    if (dirty.has("figure")) drawFigure();
    if (dirty.has("curves")) drawSide();
    drawStatus();
    drawOverlay();
    dirty.clear();
  }

  function drawFigure(): void {
    const ctx = contour.getContext("2d");
    const g = session.shownGrid();
    drawnGrid = g && g.drawable ? g : null;
    if (!ctx) return;
    const metric = g ? session.metricOf(g) : session.trait("metric");
    const current = g === session.grid;
    const drawn = drawContour(
      ctx,
      {
        xs: g ? g.xs : [],
        ys: g ? g.ys : [],
        field: drawnGrid ? drawnGrid.display(metric) : null,
        metric,
        xLabel: current ? session.trait("x_label") : (g?.xLabel ?? ""),
        yLabel: current ? session.trait("y_label") : (g?.yLabel ?? ""),
        log: session.trait("log_scale"),
        colormap: session.trait("colormap"),
        nLevels: session.trait("n_levels"),
        placeholder: g && g.size > 0 ? "computing\u2026" : "waiting for the kernel\u2026",
        fontFamily: FONT_FAMILY,
      },
      CONTOUR_SIZE.width,
      CONTOUR_SIZE.height,
      dpr,
    );
    layout = drawn.layout;
    const attrs = session.dataAttributes();
    contour.dataset.gen = attrs.gen;
    contour.dataset.complete = attrs.complete;
    contour.dataset.level = attrs.level;
    const P = layout.plot;
    // the plot area in CSS px and its data range, for browser tests that click or read pixels
    contour.dataset.plot = JSON.stringify({ x: P.x, y: P.y, w: P.w, h: P.h, x0: layout.x0, x1: layout.x1, y0: layout.y0, y1: layout.y1 });
    stage.classList.toggle("lsw-stale", session.showingStale);
    maybeSnapshot();
  }

  /** After a "done" of the current generation is drawn, send the kernel a PNG of it. */
  function maybeSnapshot(): void {
    const due = session.snapshotDue;
    const g = session.grid;
    if (due === null || !g || drawnGrid !== g || g.gen !== due || !g.complete) return;
    session.snapshotDue = null;
    canvasPngBytes(contour)
      .then((png) => {
        if (alive && session.generation === due) session.send({ type: "snapshot", gen: due }, [png]);
      })
      .catch((e) => console.warn("ls-widget: snapshot failed", e));
  }

  function drawSide(): void {
    const ctx = curves.getContext("2d");
    if (!ctx) return;
    const c = session.cross;
    const panels = c ? crossPanels(c, session.trait("x_label"), session.trait("y_label")) : null;
    const waiting = session.picked ? "computing cross-sections\u2026" : "Click the contour to see the two\ncross-sections through a point.";
    drawCurves(ctx, panels, CURVES_SIZE.width, CURVES_SIZE.height, dpr, {
      log: session.trait("log_scale"),
      placeholder: waiting,
      fontFamily: FONT_FAMILY,
    });
  }

  function drawStatus(): void {
    const st = session.status();
    const g = session.grid;
    const err = session.errorText();
    const text = session.progressText();
    progressText.textContent = text;
    const computing = !err && !!g && g.size > 0 && !g.complete && (g.knownCount > 0 || st?.state === "computing");
    progress.classList.toggle("lsw-busy", computing);
    const frac = g && g.complete ? 1 : g ? g.fraction : 0;
    meterFill.style.width = `${Math.round(frac * 100)}%`;
    meter.hidden = !computing;
    if (err) {
      errorBox.hidden = false;
      errorBox.textContent = err;
    } else {
      errorBox.hidden = true;
      errorBox.textContent = "";
    }
  }

  function drawOverlay(): void {
    const ctx = overlay.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    if (!layout) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const L = layout;
    ctx.save();
    ctx.beginPath();
    ctx.rect(L.plot.x, L.plot.y, L.plot.w, L.plot.h);
    ctx.clip();
    // the picked point and the two lines its cross-sections follow
    const p = session.cross && session.cross.gen === session.generation ? { x: session.cross.x0, y: session.cross.y0 } : session.picked;
    if (p && drawnGrid === session.grid) {
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
      ring(ctx, px, py, 5);
    }
    if (hover && drawnGrid) {
      const [px, py] = dataToPixel(L, hover.x, hover.y);
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
    ctx.restore();
  }

  function ring(ctx: CanvasRenderingContext2D, x: number, y: number, r: number): void {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#1a1a1a";
    ctx.stroke();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
  }

  function eventPoint(ev: MouseEvent): [number, number] | null {
    if (!layout) return null;
    const rect = overlay.getBoundingClientRect();
    const sx = rect.width ? CONTOUR_SIZE.width / rect.width : 1;
    const sy = rect.height ? CONTOUR_SIZE.height / rect.height : 1;
    return pixelToData(layout, (ev.clientX - rect.left) * sx, (ev.clientY - rect.top) * sy);
  }

  function showReadout(pt: [number, number] | null): void {
    const g = drawnGrid;
    if (!pt || !g) {
      hover = null;
      readout.textContent = HINT;
      readout.classList.remove("lsw-readout-active");
      drawOverlay();
      return;
    }
    const j = Grid.nearest(g.xs, pt[0]);
    const i = Grid.nearest(g.ys, pt[1]);
    hover = { x: g.xs[j], y: g.ys[i] };
    const k = i * g.nx + j;
    const parts = [`\u03b1 = ${formatValue(g.xs[j])}`, `\u03b2 = ${formatValue(g.ys[i])}`];
    const exact = g.known[k] === 2;
    for (const m of g.metrics) {
      const field = g.display(m);
      if (!field) continue;
      parts.push(`${m} = ${exact ? "" : "\u2248"}${formatValue(field[k])}`);
    }
    readout.textContent = parts.join("   ");
    readout.classList.add("lsw-readout-active");
    drawOverlay();
  }

  const onMove = (ev: PointerEvent) => showReadout(eventPoint(ev));
  const onLeave = () => showReadout(null);
  const onClick = (ev: MouseEvent) => {
    const pt = eventPoint(ev);
    // picks are in the current plane: not while an older picture is still on screen
    if (pt && session.grid && drawnGrid === session.grid) session.pick(pt[0], pt[1]);
  };
  const onSave = () => {
    savePng(contour, "landscape.png").catch((e) => console.warn("ls-widget: save failed", e));
  };
  overlay.addEventListener("pointermove", onMove);
  overlay.addEventListener("pointerleave", onLeave);
  overlay.addEventListener("click", onClick);
  save.addEventListener("click", onSave);

  draw();
  session.start();

  return () => {
    alive = false;
    session.stop();
    if (raf && typeof cancelAnimationFrame === "function") cancelAnimationFrame(raf);
    if (timer) clearTimeout(timer);
    overlay.removeEventListener("pointermove", onMove);
    overlay.removeEventListener("pointerleave", onLeave);
    overlay.removeEventListener("click", onClick);
    save.removeEventListener("click", onSave);
    root.remove();
  };
}

const initialize: Initialize<Traits> = () => {
  // all state lives in the views: each view says "ready" and the kernel replays to it
};

const render: Render<Traits> = ({ model, el }) => renderView(model, el);

export default { initialize, render };
