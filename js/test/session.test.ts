import { describe, expect, it } from "vitest";
import type { Traits } from "../src/protocol";
import { Session } from "../src/session";
import { FakeModel, f32le, i32le, linspace, product, tileMsg } from "./helpers";

const xs = linspace(-1, 1, 5);
const L0 = [0, 2, 4];
const ALL = [0, 1, 2, 3, 4];

function traits(gen: number, extra: Partial<Traits> = {}): Traits {
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
    status: { state: "idle", gen, level: 0, levels: 2, fraction: 0, message: "" },
    surface: new DataView(new ArrayBuffer(0)),
    surface_info: {},
    ...extra,
  };
}

const bowl = (x: number, y: number) => x * x + y * y;

function sendLevel(model: FakeModel, gen: number, level: number, idx: number[]) {
  model.custom({ type: "level", gen, level, rows: idx, cols: idx });
}

function sendPoints(model: FakeModel, gen: number, level: number, rows: number[], cols: number[], fn = bowl) {
  const p = product(rows, cols);
  const loss = p.rows.map((i, k) => fn(xs[p.cols[k]], xs[i]));
  const [msg, bufs] = tileMsg(gen, level, p.rows, p.cols, { loss, accuracy: loss.map((v) => 1 - v / 4) });
  model.custom(msg, bufs);
}

function setup(gen = 1, extra: Partial<Traits> = {}) {
  const model = new FakeModel(traits(gen, extra));
  const changes: string[][] = [];
  const warnings: string[] = [];
  const s = new Session(model, (w) => changes.push([...w]), (m) => warnings.push(m));
  s.start();
  return { model, s, changes, warnings };
}

describe("session", () => {
  it("says ready once on start and stops listening on stop", () => {
    const { model, s } = setup();
    expect(model.sent.map((m) => m.content)).toEqual([{ type: "ready" }]);
    expect(model.listenerCount()).toBeGreaterThan(0);
    s.stop();
    expect(model.listenerCount()).toBe(0);
  });

  it("assembles a generation progressively to done, then asks for a snapshot", () => {
    const { model, s } = setup(1);
    sendLevel(model, 1, 0, L0);
    sendLevel(model, 1, 1, ALL);
    expect(s.dataAttributes().complete).toBe("false");
    sendPoints(model, 1, 0, L0, L0);
    expect(s.grid!.finestCompleteLevel()).toBe(0);
    expect(s.dataAttributes()).toEqual({ gen: "1", complete: "false", level: "0" });
    expect(s.progressText()).toMatch(/^level 1\/2 · 36%$/);
    const field = s.grid!.display("loss")!;
    expect(field[1 * 5 + 1]).toBeCloseTo((bowl(-1, -1) + bowl(0, -1) + bowl(-1, 0) + bowl(0, 0)) / 4, 5);
    sendPoints(model, 1, 1, ALL, ALL);
    model.custom({ type: "done", gen: 1 });
    expect(s.dataAttributes()).toEqual({ gen: "1", complete: "true", level: "1" });
    expect(s.snapshotDue).toBe(1);
    expect(s.progressText()).toBe("done · 5×5 points");
  });

  it("drops tiles of older generations and resets the grid on a generation change", () => {
    const { model, s } = setup(1);
    sendLevel(model, 1, 0, L0);
    sendPoints(model, 1, 0, L0, L0);
    const first = s.grid!;
    const ys2 = linspace(-2, 2, 9);
    model.sync({ grid_x: linspace(-3, 3, 7), grid_y: ys2, generation: 2, x_label: "new x" });
    expect(s.generation).toBe(2);
    expect(s.grid!.nx).toBe(7);
    expect(s.grid!.ny).toBe(9);
    expect(s.grid!.knownCount).toBe(0);
    // the old picture stays on screen until the new generation has something to draw
    expect(s.shownGrid()).toBe(first);
    expect(s.showingStale).toBe(true);
    sendPoints(model, 1, 0, [0], [0]); // stale
    model.custom({ type: "done", gen: 1 }); // stale
    expect(s.dropped).toBe(2);
    expect(s.grid!.knownCount).toBe(0);
    expect(s.grid!.done).toBe(false);
    expect(s.snapshotDue).toBeNull();
  });

  it("holds messages of a generation whose trait sync has not arrived yet", () => {
    const { model, s } = setup(1);
    sendLevel(model, 2, 0, L0);
    sendPoints(model, 2, 0, L0, L0);
    expect(s.grid!.knownCount).toBe(0);
    model.sync({ generation: 2 });
    expect(s.grid!.knownCount).toBe(9);
    expect(s.grid!.finestCompleteLevel()).toBe(0);
  });

  it("shows errors of the current generation and keeps the last picture", () => {
    const { model, s } = setup(1);
    sendLevel(model, 1, 0, L0);
    sendPoints(model, 1, 0, L0, L0);
    model.custom({ type: "error", gen: 0, message: "old" });
    expect(s.errorText()).toBeNull();
    model.custom({ type: "error", gen: 1, message: "RuntimeError: shapes" });
    expect(s.errorText()).toBe("RuntimeError: shapes");
    expect(s.shownGrid()!.drawable).toBe(true);
    model.sync({ generation: 2 });
    expect(s.errorText()).toBeNull();
    model.sync({ status: { state: "error", gen: 2, level: 0, levels: 1, fraction: 0, message: "bad loss" } });
    expect(s.errorText()).toBe("bad loss");
    expect(s.progressText()).toBe("error");
    expect(s.shownGrid()!.gen).toBe(1);
  });

  it("draws the saved surface when it mounts without a kernel", () => {
    const loss = Array.from({ length: 25 }, (_, k) => k);
    const acc = loss.map((v) => v / 25);
    const { s, model } = setup(3, {
      surface: new DataView(f32le([...loss, ...acc])),
      surface_info: { gen: 3, nx: 5, ny: 5, x: xs, y: xs, metrics: ["loss", "accuracy"], x_label: "a", y_label: "b" },
    });
    expect(s.dataAttributes()).toEqual({ gen: "3", complete: "true", level: "0" });
    expect(s.grid!.display("loss")![7]).toBe(7);
    expect(s.snapshotDue).toBeNull(); // snapshots follow "done" only
    // a replay of the same generation changes nothing
    sendPoints(model, 3, 0, L0, L0, () => 7);
    expect(s.grid!.complete).toBe(true);
  });

  it("shows an older saved surface as the previous picture, not as complete", () => {
    const { s } = setup(4, {
      surface: new DataView(f32le(Array.from({ length: 50 }, (_, k) => k))),
      surface_info: { gen: 3, nx: 5, ny: 5, x: xs, y: xs, metrics: ["loss", "accuracy"] },
    });
    expect(s.shownGrid()!.gen).toBe(3);
    expect(s.dataAttributes()).toEqual({ gen: "3", complete: "false", level: "0" });
  });

  it("sends picks and decodes cross-sections of the current generation", () => {
    const { model, s } = setup(1);
    s.pick(0.25, -0.5);
    expect(model.sent.at(-1)!.content).toEqual({ type: "pick", x: 0.25, y: -0.5 });
    const bufs = [f32le([-1, 0, 1]), f32le([1, 0, 1, 0.5, 0.9, 0.5]), f32le([-1, 1]), f32le([2, 2, 0.4, 0.4])].map((b) => new DataView(b));
    model.custom({ type: "cross", gen: 0, x0: 0.25, y0: -0.5, metrics: ["loss", "accuracy"], nx: 3, ny: 2 }, bufs);
    expect(s.cross).toBeNull();
    model.custom({ type: "cross", gen: 1, x0: 0.25, y0: -0.5, metrics: ["loss", "accuracy"], nx: 3, ny: 2 }, bufs);
    expect(s.cross!.x0).toBe(0.25);
    expect(Array.from(s.cross!.ys)).toEqual([-1, 1]);
  });

  it("warns about malformed messages and carries on", () => {
    const { model, s, warnings } = setup(1);
    model.custom({ type: "tile", gen: 1, level: 0, count: 2, metrics: ["loss"] }, [new DataView(i32le([0]))]);
    expect(warnings.length).toBe(1);
    sendLevel(model, 1, 0, L0);
    sendPoints(model, 1, 0, L0, L0);
    expect(s.grid!.knownCount).toBe(9);
  });

  it("drops every kind of malformed message with a warning, never throwing", () => {
    const { model, s, warnings } = setup(1);
    const bad: Array<[unknown, DataView[]]> = [
      [null, []],
      [{ type: "tile" }, []],
      [{ type: "levels", gen: 1 }, []],
      [{ type: "done", gen: "1" }, []],
      [{ type: "cross", gen: 1, x0: 0, y0: 0, metrics: ["loss"], nx: 2, ny: 1 }, [new DataView(f32le([0, 1]))]],
      [{ type: "error", gen: 1, message: 42 }, []],
    ];
    for (const [content, buffers] of bad) expect(() => model.custom(content, buffers)).not.toThrow();
    expect(warnings.length).toBe(bad.length);
    expect(s.errorText()).toBeNull();
    expect(s.cross).toBeNull();
    expect(s.grid!.knownCount).toBe(0);
  });

  it("falls back to the first metric when the metric trait names none of the grid's", () => {
    const { model, s } = setup(1, { metric: "perplexity" });
    sendPoints(model, 1, 0, ALL, ALL);
    expect(s.metricOf(s.grid!)).toBe("loss");
    model.sync({ metric: "accuracy" });
    expect(s.metricOf(s.grid!)).toBe("accuracy");
  });
});

describe("snapshots", () => {
  it("are due after done, and again after a view-only change of a complete surface", () => {
    const { model, s } = setup(1);
    model.sync({ colormap: "magma" });
    expect(s.snapshotDue).toBeNull(); // nothing complete yet
    sendPoints(model, 1, 0, ALL, ALL);
    model.custom({ type: "done", gen: 1 });
    expect(s.snapshotDue).toBe(1);
    s.snapshotDue = null; // the view sent it
    model.sync({ log_scale: true });
    expect(s.snapshotDue).toBe(1);
  });
});
