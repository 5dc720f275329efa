// anywidget entry of the comparison view: 2–4 models' panels side by side (one PanelView and one
// Session per model, each on its own kernel-side LandscapeWidget), linked:
// - one colour scale and the same isolines on every panel: the union of what the panels show
//   and of the kernel's shared range (the `scale` trait), recomputed at every redraw;
// - one probe: hovering a panel shows the same (α, β) with its values on every panel;
// - one click: every panel shows the pending pick, and one "pick" to the kernel asks every
//   panel for its cross-sections through that point.

import type { Render } from "@anywidget/types";
import { FONT_FAMILY } from "./contour";
import { PanelView, devicePixelRatio, h, type PanelStyle } from "./panel";
import {
  decodeColorRange,
  modelId,
  readCompareTrait,
  type CompareModel,
  type CompareTraits,
  type ModelLike,
  type Traits,
} from "./protocol";
import { sharedRange, type Range } from "./scale";
import { Scheduler } from "./schedule";
import { Session, type Dirty } from "./session";
import "./widget.css";
import "./compare.css";

/** CSS size of each panel's contour view and curves. */
export const PANEL_CONTOUR = { width: 400, height: 340 };
export const PANEL_CURVES = { width: 400, height: 330 };

const HINT = "hover: values on every panel \u00b7 click: sections on every panel";
const STYLE_TRAITS: ReadonlyArray<keyof CompareTraits> = ["metric", "log_scale", "colormap", "n_levels", "scale"];

/** The part of the compare model the view touches (what a test fake implements). */
export type CompareModelLike = Pick<CompareModel, "get" | "on" | "off" | "send">;

/** The comparison's panels and their links, drawn into `el`. */
export class CompareView {
  readonly root: HTMLDivElement;
  readonly sessions: Session[];
  readonly panels: PanelView[];
  /** The colour scale of the last drawing (null before anything is known). */
  range: Range | null = null;
  private readonly dirty: Array<Set<Dirty>>;
  private readonly scheduler: Scheduler;
  private readonly cleanup: Array<() => void> = [];

  constructor(
    readonly model: CompareModelLike,
    children: ReadonlyArray<ModelLike>,
    el: HTMLElement,
  ) {
    this.root = h("div", "lsw-compare-root");
    this.root.style.fontFamily = FONT_FAMILY;
    this.scheduler = new Scheduler(() => this.draw());
    const names = readCompareTrait(model, "names");
    this.dirty = children.map(() => new Set<Dirty>(["figure", "curves", "status"]));
    this.sessions = children.map(
      (child, k) =>
        new Session(child, (what) => {
          // a change of any panel may move the shared scale: every figure is redrawn
          if (what.has("figure")) this.dirty.forEach((d) => d.add("figure"));
          what.forEach((w) => this.dirty[k].add(w));
          this.scheduler.schedule();
        }),
    );
    this.panels = this.sessions.map(
      (s, k) => new PanelView(s, { contour: PANEL_CONTOUR, curves: PANEL_CURVES, colorbar: k === children.length - 1, hint: HINT }),
    );
    this.panels.forEach((panel, k) => {
      const column = h("div", "lsw-compare-panel", this.root);
      const head = h("div", "lsw-toolbar", column);
      const title = h("div", "lsw-compare-title", head);
      title.textContent = names[k] ?? `model ${k + 1}`;
      head.appendChild(panel.progress);
      column.append(panel.stage, panel.readout, panel.curves);
      this.listen(panel, k);
    });
    for (const t of STYLE_TRAITS) {
      const redraw = () => this.invalidate();
      model.on(`change:${t}`, redraw);
      this.cleanup.push(() => model.off(`change:${t}`, redraw));
    }
    el.appendChild(this.root);
    this.draw();
    for (const s of this.sessions) s.start();
  }

  /** The drawing settings of every panel: the compare widget's traits. */
  style(): PanelStyle {
    return {
      metric: readCompareTrait(this.model, "metric"),
      log: readCompareTrait(this.model, "log_scale"),
      colormap: readCompareTrait(this.model, "colormap"),
      nLevels: readCompareTrait(this.model, "n_levels"),
    };
  }

  /** The range every panel draws with now (see scale.sharedRange). */
  sharedRange(style: PanelStyle = this.style()): Range | null {
    const gens = new Set(this.sessions.map((s) => s.generation));
    const gen = gens.size === 1 ? this.sessions[0].generation : -1;
    const kernel = decodeColorRange(readCompareTrait(this.model, "scale"));
    return sharedRange(
      this.panels.map((p) => p.ownRange(style)),
      kernel,
      { gen, metric: style.metric, log: style.log },
    );
  }

  /** Redraws every panel on the next frame. */
  invalidate(): void {
    this.dirty.forEach((d) => d.add("figure").add("curves"));
    this.scheduler.schedule();
  }

  draw(): void {
    const dpr = devicePixelRatio();
    this.panels.forEach((p, k) => {
      if (p.resize(dpr)) this.dirty[k].add("figure").add("curves");
    });
    const style = this.style();
    const range = this.sharedRange(style);
    this.range = range;
    this.root.dataset.scale = range ? JSON.stringify(range) : "";
    this.panels.forEach((p, k) => {
      const dirty = this.dirty[k];
      if (dirty.has("figure")) {
        p.drawFigure(style, range);
        const own = p.ownRange(style);
        p.contour.dataset.own = own ? JSON.stringify(own) : "";
      }
      if (dirty.has("curves")) p.drawSide(style);
      p.drawStatus();
      p.drawOverlay();
      dirty.clear();
    });
  }

  /** The probe at data point `pt` on every panel (null: none); `from` is the panel under the pointer. */
  probe(pt: [number, number] | null, from = -1, pixel?: [number, number]): void {
    this.panels.forEach((p, k) => p.probe(pt, k === from ? pixel : undefined));
  }

  /** A click at data point (x, y): pending on every panel, one pick to the kernel for all. */
  pick(x: number, y: number): void {
    for (const s of this.sessions) s.pick(x, y, false);
    this.model.send({ type: "pick", x, y });
  }

  private listen(panel: PanelView, k: number): void {
    const onMove = (ev: PointerEvent) => {
      const at = panel.eventPoint(ev);
      this.probe(at?.data ?? null, k, at?.pixel);
    };
    const onLeave = () => this.probe(null);
    const onClick = (ev: MouseEvent) => {
      const pt = panel.eventPoint(ev)?.data;
      // picks are in the current plane: not while an older picture is still on screen
      if (pt && panel.pickable) this.pick(pt[0], pt[1]);
    };
    panel.overlay.addEventListener("pointermove", onMove);
    panel.overlay.addEventListener("pointerleave", onLeave);
    panel.overlay.addEventListener("click", onClick);
    this.cleanup.push(() => {
      panel.overlay.removeEventListener("pointermove", onMove);
      panel.overlay.removeEventListener("pointerleave", onLeave);
      panel.overlay.removeEventListener("click", onClick);
    });
  }

  /** Stops listening and removes the view. */
  destroy(): void {
    this.scheduler.stop();
    for (const s of this.sessions) s.stop();
    for (const off of this.cleanup) off();
    this.cleanup.length = 0;
    this.root.remove();
  }
}

const render: Render<CompareTraits> = async ({ model, el }) => {
  const refs = readCompareTrait(model, "panels");
  const children = await Promise.all(refs.map((ref) => model.widget_manager.get_model<Traits>(modelId(ref))));
  const view = new CompareView(model, children, el);
  return () => view.destroy();
};

export default { render };
