// A training trajectory over the contour: geometry, hit tests, drawing, the session keeping it
// with its generation, and the hover text of a snapshot.

import { beforeAll, describe, expect, it } from "vitest";
import { contourLayout } from "../src/contour";
import { PanelView } from "../src/panel";
import { drawPath, nearestSnapshot, pathPixels, snapshotText } from "../src/path";
import type { TrajectoryPath, Traits } from "../src/protocol";
import { Session } from "../src/session";
import { installDom } from "./dom";
import { FakeModel, f32le, i32le, linspace, product, tileMsg } from "./helpers";

beforeAll(installDom);

const L = contourLayout(400, 340, -1, 1, -1, 1);

function path(alpha: number[], beta: number[], labels?: string[]): TrajectoryPath {
  const n = alpha.length;
  return {
    gen: 1,
    count: n,
    labels: labels ?? alpha.map((_, k) => `step ${10 * k} \u00b7 loss ${(2 - k / 2).toFixed(2)}`),
    alpha: Float32Array.from(alpha),
    beta: Float32Array.from(beta),
    steps: Int32Array.from(alpha.map((_, k) => 10 * k)),
    loss: Float32Array.from(alpha.map((_, k) => 2 - k / 2)),
  };
}

/** A context that records the path-building calls. */
function recording() {
  const calls: string[] = [];
  const ctx = new Proxy({} as Record<string | symbol, unknown>, {
    get: (t, k) => (k in t ? t[k] : (...args: number[]) => calls.push(`${String(k)}(${args.map((a) => Math.round(a)).join(",")})`)),
    set: (t, k, v) => ((t[k] = v), true),
  }) as unknown as CanvasRenderingContext2D;
  return { ctx, calls };
}

describe("trajectory geometry", () => {
  const p = path([-0.8, -0.3, 0], [0.6, 0.2, 0]);

  it("puts each snapshot at its pixel, and finds the one under the pointer", () => {
    const px = pathPixels(L, p);
    const [x1, y1] = px[1]!;
    expect(nearestSnapshot(L, px, x1 + 3, y1 - 2)).toBe(1);
    expect(nearestSnapshot(L, px, x1 + 30, y1)).toBe(-1); // farther than the radius
    const [x2, y2] = px[2]!;
    expect(nearestSnapshot(L, px, x2, y2)).toBe(2);
  });

  it("ignores snapshots outside the plot area or without coordinates", () => {
    const q = path([-3, NaN, 0.5], [0, 0, 0.5]);
    const px = pathPixels(L, q);
    expect(px[1]).toBeNull();
    expect(nearestSnapshot(L, px, px[0]![0], px[0]![1])).toBe(-1); // α = −3: off the plot
    expect(nearestSnapshot(L, px, px[2]![0], px[2]![1])).toBe(2);
  });

  it("of snapshots on one spot, the later (drawn on top) wins", () => {
    const q = path([0.2, 0.2], [0.1, 0.1]);
    const px = pathPixels(L, q);
    expect(nearestSnapshot(L, px, px[0]![0], px[0]![1])).toBe(1);
  });

  it("says the snapshot's label, else its step", () => {
    expect(snapshotText(p, 1)).toBe("step 10 \u00b7 loss 1.50");
    expect(snapshotText(path([0, 1], [0, 1], ["", " "]), 1)).toBe("step 10");
  });

  it("draws one line through the snapshots, broken where one has no coordinates", () => {
    const { ctx, calls } = recording();
    drawPath(ctx, L, path([-0.5, -0.25, 0], [0.5, 0.25, 0]));
    // the halo and the line: one moveTo each, then lineTo the other snapshots
    expect(calls.filter((c) => c.startsWith("moveTo")).length).toBe(2);
    expect(calls.filter((c) => c.startsWith("lineTo")).length).toBe(4);
    expect(calls.some((c) => c.startsWith("fillRect"))).toBe(true); // the end marker
    const broken = recording();
    drawPath(broken.ctx, L, path([-0.5, NaN, 0, 0.2], [0.5, 0, 0, 0.1]));
    expect(broken.calls.filter((c) => c.startsWith("moveTo")).length).toBe(4);
  });
});

const xs = linspace(-1, 1, 5);

function traits(gen: number): Traits {
  return {
    generation: gen,
    grid_x: xs,
    grid_y: xs,
    x_label: "PC1 \u00b7 83.2 %",
    y_label: "PC2 \u00b7 9.1 %",
    metric_names: ["loss"],
    metric: "loss",
    log_scale: false,
    colormap: "viridis",
    n_levels: 8,
    status: {},
    surface: new DataView(new ArrayBuffer(0)),
    surface_info: {},
  };
}

function pathMsg(gen: number): [Record<string, unknown>, DataView[]] {
  return [
    { type: "path", gen, count: 3, labels: ["step 0 \u00b7 loss 2.30", "step 50 \u00b7 loss 0.90", "step 100 \u00b7 loss 0.41"] },
    [new DataView(f32le([-0.75, -0.25, 0])), new DataView(f32le([0.5, 0.25, 0])), new DataView(i32le([0, 50, 100])), new DataView(f32le([2.3, 0.9, 0.41]))],
  ];
}

function fill(model: FakeModel, gen: number): void {
  const all = [0, 1, 2, 3, 4];
  model.custom({ type: "level", gen, level: 0, rows: all, cols: all });
  const p = product(all, all);
  const [msg, bufs] = tileMsg(gen, 0, p.rows, p.cols, { loss: p.rows.map((i, k) => xs[i] ** 2 + xs[p.cols[k]] ** 2) });
  model.custom(msg, bufs);
}

describe("trajectory in a view", () => {
  it("is kept with its generation's grid: an older one is dropped, a newer one waits", () => {
    const model = new FakeModel(traits(2));
    const s = new Session(model);
    s.start();
    model.custom(...pathMsg(1));
    expect(s.grid!.path).toBeNull();
    model.custom(...pathMsg(3));
    expect(s.grid!.path).toBeNull();
    model.sync({ generation: 3 });
    expect(s.grid!.gen).toBe(3);
    expect(Array.from(s.grid!.path!.steps)).toEqual([0, 50, 100]);
  });

  it("is drawn over the contour and a hovered snapshot shows its step and loss", () => {
    const model = new FakeModel(traits(1));
    const s = new Session(model);
    s.start();
    fill(model, 1);
    model.custom(...pathMsg(1));
    const panel = new PanelView(s, { contour: { width: 400, height: 340 }, curves: { width: 300, height: 300 } });
    panel.resize(1);
    const style = { metric: "loss", log: false, colormap: "viridis", nLevels: 8 };
    panel.drawFigure(style);
    expect(panel.contour.dataset.path).toBe("3");
    const at = pathPixels(panel.layout!, s.grid!.path!)[1]!;
    panel.probe([-0.25, 0.25], [at[0] + 2, at[1]]);
    expect(panel.hoverSnapshot).toBe(1);
    expect(panel.readout.textContent).toMatch(/^step 50 \u00b7 loss 0\.90 {3}\u03b1 = \u22120\.25/);
    panel.probe([0.5, -0.5], [at[0] + 150, at[1] + 120]); // away from the path: the grid's values
    expect(panel.hoverSnapshot).toBe(-1);
    expect(panel.readout.textContent).toBe("\u03b1 = 0.5000   \u03b2 = \u22120.5000   loss = 0.5000");
  });
});
