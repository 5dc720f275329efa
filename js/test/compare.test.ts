// The comparison view end to end on fake models and a minimal DOM: one colour scale for all
// panels, the probe at the same (α, β) on every panel, one pick for all panels.

import { beforeAll, describe, expect, it } from "vitest";
import { CompareView, type CompareModelLike } from "../src/compare";
import type { CompareTraits, Traits } from "../src/protocol";
import { installDom, type FakeElement } from "./dom";
import { FakeModel, linspace, product, tileMsg } from "./helpers";

beforeAll(installDom);

const xs = linspace(-1, 1, 5);
const ALL = [0, 1, 2, 3, 4];

function childTraits(gen: number): Traits {
  return {
    generation: gen,
    grid_x: xs,
    grid_y: xs,
    x_label: "random #0, filter-norm",
    y_label: "random #1, filter-norm",
    metric_names: ["loss", "accuracy"],
    metric: "loss",
    log_scale: false,
    colormap: "viridis",
    n_levels: 12,
    status: {},
    surface: new DataView(new ArrayBuffer(0)),
    surface_info: {},
  };
}

function compareTraits(extra: Partial<CompareTraits> = {}): CompareTraits {
  return {
    panels: ["IPY_MODEL_a", "IPY_MODEL_b"],
    names: ["bs=128", "bs=8192"],
    metric_names: ["loss", "accuracy"],
    metric: "loss",
    log_scale: false,
    colormap: "viridis",
    n_levels: 8,
    scale: {},
    ...extra,
  };
}

/** Every point of generation `gen` at once: loss fn(α, β), accuracy 1 − loss / 10. */
function complete(model: FakeModel, gen: number, fn: (x: number, y: number) => number): void {
  model.custom({ type: "level", gen, level: 0, rows: ALL, cols: ALL });
  const p = product(ALL, ALL);
  const loss = p.rows.map((i, k) => fn(xs[p.cols[k]], xs[i]));
  const [msg, bufs] = tileMsg(gen, 0, p.rows, p.cols, { loss, accuracy: loss.map((v) => 1 - v / 10) });
  model.custom(msg, bufs);
}

function setup(extra: Partial<CompareTraits> = {}) {
  const children = [new FakeModel(childTraits(1)), new FakeModel(childTraits(1))];
  const compare = new FakeModel(compareTraits(extra) as unknown as Traits);
  const el = document.createElement("div") as unknown as FakeElement;
  const view = new CompareView(compare as unknown as CompareModelLike, children, el as unknown as HTMLElement);
  return { children, compare, view, el };
}

const scaleOf = (p: { contour: HTMLCanvasElement }) => JSON.parse((p.contour as unknown as FakeElement).dataset.scale || "null");

/** Client coordinates of data point (a, b) on a panel (its overlay sits at 0, 0 in the fake DOM). */
function client(panel: { contour: HTMLCanvasElement }, a: number, b: number): { clientX: number; clientY: number } {
  const P = JSON.parse(panel.contour.dataset.plot!);
  return {
    clientX: P.x + ((a - P.x0) / (P.x1 - P.x0)) * P.w,
    clientY: P.y + P.h - ((b - P.y0) / (P.y1 - P.y0)) * P.h,
  };
}

describe("comparison view", () => {
  it("lays out one titled panel per model, says ready on each panel's model", () => {
    const { children, view, el } = setup();
    const panels = el.findAll("lsw-compare-panel");
    expect(panels.length).toBe(2);
    expect(el.findAll("lsw-compare-title").map((t) => t.textContent)).toEqual(["bs=128", "bs=8192"]);
    expect(children.map((c) => c.sent.map((m) => m.content))).toEqual([[{ type: "ready" }], [{ type: "ready" }]]);
    view.destroy();
  });

  it("draws every panel on one colour scale and the same isolines", () => {
    const { children, view } = setup();
    complete(children[0], 1, (x, y) => x * x + y * y); // 0 .. 2
    complete(children[1], 1, (x, y) => 2 * (x * x + y * y) + 1); // 1 .. 5
    view.draw();
    const [a, b] = view.panels.map(scaleOf);
    expect(a).toEqual(b);
    expect([a.min, a.max]).toEqual([0, 5]);
    expect(a.levels.length).toBe(8);
    // each panel's own range is narrower: the scale is shared, not each panel's own
    const own = view.panels.map((p) => JSON.parse((p.contour as unknown as FakeElement).dataset.own));
    expect(own).toEqual([
      { min: 0, max: 2 },
      { min: 1, max: 5 },
    ]);
    view.destroy();
  });

  it("widens the scale to the kernel's shared range of the same generation, metric and scale only", () => {
    const { children, compare, view } = setup();
    complete(children[0], 1, (x, y) => x * x + y * y);
    complete(children[1], 1, (x, y) => x * x + y * y);
    compare.sync({ scale: { gen: 1, metric: "loss", log: false, lo: -1, hi: 9 } } as never);
    view.draw();
    expect(view.panels.map((p) => [scaleOf(p).min, scaleOf(p).max])).toEqual([
      [-1, 9],
      [-1, 9],
    ]);
    for (const stale of [{ gen: 0 }, { metric: "accuracy" }, { log: true }]) {
      compare.sync({ scale: { gen: 1, metric: "loss", log: false, lo: -1, hi: 9, ...stale } } as never);
      view.draw();
      expect([scaleOf(view.panels[0]).min, scaleOf(view.panels[1]).max]).toEqual([0, 2]);
    }
    view.destroy();
  });

  it("redraws every panel with the comparison's metric and log scale", () => {
    const { children, compare, view } = setup();
    complete(children[0], 1, (x, y) => x * x + y * y + 0.5);
    complete(children[1], 1, (x, y) => 3 * (x * x + y * y) + 0.5);
    compare.sync({ metric: "accuracy" } as never);
    view.draw();
    const acc = view.panels.map(scaleOf);
    expect(acc[0]).toEqual(acc[1]);
    expect(acc[0].max).toBeCloseTo(1 - 0.5 / 10, 6);
    compare.sync({ metric: "loss", log_scale: true } as never);
    view.draw();
    expect(view.panels.map((p) => scaleOf(p).log)).toEqual([true, true]);
    view.destroy();
  });

  it("shows the probe at the same grid point on every panel, and none after leaving", () => {
    const { children, view } = setup();
    complete(children[0], 1, (x, y) => x * x + y * y);
    complete(children[1], 1, (x, y) => x + y + 3);
    view.draw();
    const overlays = view.panels.map((p) => p.overlay as unknown as FakeElement);
    overlays[1].dispatch("pointermove", client(view.panels[1], 0.45, -0.55)); // nearest: (0.5, -0.5)
    expect(overlays.map((o) => JSON.parse(o.dataset.hover))).toEqual([
      { x: 0.5, y: -0.5 },
      { x: 0.5, y: -0.5 },
    ]);
    // each readout shows its own model's value there
    expect(view.panels[0].readout.textContent).toContain("loss = 0.5");
    expect(view.panels[1].readout.textContent).toContain("loss = 3");
    overlays[0].dispatch("pointerleave");
    expect(overlays.map((o) => o.dataset.hover)).toEqual(["", ""]);
    view.destroy();
  });

  it("sends one pick for all panels, shown pending on each until its sections arrive", () => {
    const { children, compare, view } = setup();
    complete(children[0], 1, (x, y) => x * x + y * y);
    complete(children[1], 1, (x, y) => x * x + y * y);
    view.draw();
    const overlay = view.panels[0].overlay as unknown as FakeElement;
    overlay.dispatch("click", client(view.panels[0], 0.5, 0.25));
    const picks = compare.sent.map((m) => m.content as { type: string; x: number; y: number });
    expect(picks.length).toBe(1);
    expect(picks[0].type).toBe("pick");
    expect(picks[0].x).toBeCloseTo(0.5, 6);
    expect(picks[0].y).toBeCloseTo(0.25, 6);
    // the panels' own models are not asked: the kernel fans the pick out
    expect(children.map((c) => c.sent.length)).toEqual([1, 1]);
    expect(view.sessions.map((s) => s.picked !== null)).toEqual([true, true]);
    view.destroy();
  });

  it("stops listening to every model when destroyed", () => {
    const { children, compare, view, el } = setup();
    view.destroy();
    expect(children.map((c) => c.listenerCount())).toEqual([0, 0]);
    expect(compare.listenerCount()).toBe(0);
    expect(el.children.length).toBe(0);
  });
});
