import { describe, expect, it } from "vitest";
import { Grid, bilinear, brackets, inferSubgrid, upsample } from "../src/grid";
import { linspace, product } from "./helpers";

const f = (x: number, y: number) => 0.5 + 1.5 * x - 0.75 * y + 2 * x * y; // bilinear: reproduced exactly
const g = (x: number, y: number) => x * x + 3 * y * y * y; // not bilinear

function fill(grid: Grid, rows: number[], cols: number[], fn = f, level = 0, exact = true) {
  const p = product(rows, cols);
  return grid.addTile({
    count: p.rows.length,
    metrics: ["loss"],
    rows: p.rows,
    cols: p.cols,
    values: p.rows.map((i, k) => fn(grid.xs[p.cols[k]], grid.ys[i])),
    level,
    exact,
  });
}

describe("tile assembly", () => {
  it("puts values at Z[i, j] = (xs[j], ys[i]), metric-major across metrics", () => {
    const grid = new Grid(1, linspace(-1, 1, 4), linspace(-1, 1, 3), ["loss", "accuracy"]);
    grid.addTile({ count: 2, metrics: ["accuracy", "loss"], rows: [2, 0], cols: [1, 3], values: [0.9, 0.8, 5, 6] });
    expect(grid.raw("loss")![2 * 4 + 1]).toBe(5);
    expect(grid.raw("loss")![0 * 4 + 3]).toBe(6);
    expect(grid.raw("accuracy")![2 * 4 + 1]).toBeCloseTo(0.9);
    expect(grid.knownCount).toBe(2);
    expect(Number.isNaN(grid.raw("loss")![0])).toBe(true);
  });

  it("counts each point once and ignores out-of-range indices", () => {
    const grid = new Grid(1, linspace(0, 1, 3), linspace(0, 1, 3), ["loss"]);
    expect(grid.addTile({ count: 3, metrics: ["loss"], rows: [0, 0, 9], cols: [0, 0, 0], values: [1, 2, 3] })).toBe(1);
    expect(grid.raw("loss")![0]).toBe(2);
    expect(grid.knownCount).toBe(1);
  });

  it("never lets an estimate (exact=false) override an exact value", () => {
    const grid = new Grid(1, [0, 1], [0, 1], ["loss"]);
    grid.addTile({ count: 1, metrics: ["loss"], rows: [0], cols: [0], values: [1], exact: false });
    grid.addTile({ count: 1, metrics: ["loss"], rows: [0], cols: [0], values: [2], exact: true });
    grid.addTile({ count: 1, metrics: ["loss"], rows: [0], cols: [0], values: [3], exact: false });
    expect(grid.raw("loss")![0]).toBe(2);
    expect(grid.knownCount).toBe(1);
  });

  it("detects level completion, announced before or after the tiles", () => {
    const xs = linspace(-1, 1, 9);
    const grid = new Grid(1, xs, xs, ["loss"]);
    const L0 = [0, 4, 8];
    const L1 = [0, 2, 4, 6, 8];
    const L2 = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    grid.announceLevel(0, L0, L0);
    grid.announceLevel(1, L1, L1);
    expect(grid.finestCompleteLevel()).toBe(-1);
    fill(grid, [0, 4], L0);
    expect(grid.finestCompleteLevel()).toBe(-1);
    fill(grid, [8], L0);
    expect(grid.finestCompleteLevel()).toBe(0);
    expect(grid.drawable).toBe(true);
    // level 1's new points, some at a time
    fill(grid, [2, 6], L1, f, 1);
    expect(grid.finestCompleteLevel()).toBe(0);
    fill(grid, [0, 4, 8], [2, 6], f, 1);
    expect(grid.finestCompleteLevel()).toBe(1);
    // announced after all its points arrived
    fill(grid, L2, L2, f, 2);
    grid.announceLevel(2, L2, L2);
    expect(grid.finestCompleteLevel()).toBe(2);
    expect(grid.complete).toBe(true);
    expect(grid.fraction).toBe(1);
    expect(grid.tileLevel).toBe(2);
  });

  it("marks done without every point", () => {
    const grid = new Grid(1, [0, 1, 2], [0, 1, 2], ["loss"]);
    grid.announceLevel(0, [0, 2], [0, 2]);
    grid.announceLevel(1, [0, 1, 2], [0, 1, 2]);
    fill(grid, [0, 2], [0, 2]);
    expect(grid.complete).toBe(false);
    grid.markDone();
    expect(grid.complete).toBe(true);
    expect(grid.finestCompleteLevel()).toBe(1);
  });
});

describe("upsampling", () => {
  it("brackets targets within a subset of an axis", () => {
    const xs = [0, 1, 2, 3, 4];
    const b = brackets(xs, [0, 2, 4], [0, 0.5, 2, 3, 4, 5, -1]);
    expect(Array.from(b.i0)).toEqual([0, 0, 2, 2, 4, 4, 0]);
    expect(Array.from(b.i1)).toEqual([0, 2, 2, 4, 4, 4, 0]);
    expect(Array.from(b.t)).toEqual([0, 0.25, 0, 0.5, 0, 0, 0]);
  });

  it("a complete coarse level equals the analytic bilinear function everywhere", () => {
    const xs = [-1, -0.7, -0.2, 0, 0.1, 0.5, 0.9, 1]; // non-uniform on purpose
    const ys = linspace(-2, 2, 9);
    const grid = new Grid(1, xs, ys, ["loss"]);
    const rows = [0, 4, 8];
    const cols = [0, 3, 7];
    grid.announceLevel(0, rows, cols);
    grid.announceLevel(1, ys.map((_, i) => i), xs.map((_, j) => j));
    fill(grid, rows, cols);
    const field = grid.display("loss")!;
    for (let i = 0; i < ys.length; i++) for (let j = 0; j < xs.length; j++) expect(field[i * xs.length + j]).toBeCloseTo(f(xs[j], ys[i]), 5);
  });

  it("interpolates a non-bilinear function cell by cell, exactly at the level's points", () => {
    const xs = linspace(0, 4, 5);
    const ys = linspace(0, 4, 5);
    const vals = new Float32Array(25).fill(NaN);
    const known = new Uint8Array(25);
    for (const i of [0, 2, 4]) for (const j of [0, 2, 4]) (vals[i * 5 + j] = g(xs[j], ys[i])), (known[i * 5 + j] = 2);
    const out = upsample(xs, ys, vals, known, [0, 2, 4], [0, 2, 4]);
    // (x=1, y=3): between x 0..2 (t=0.5) and y 2..4 (t=0.5)
    const expected = (g(0, 2) + g(2, 2) + g(0, 4) + g(2, 4)) / 4;
    expect(out[3 * 5 + 1]).toBeCloseTo(expected, 4);
    expect(out[2 * 5 + 2]).toBeCloseTo(g(2, 2), 5);
    // (x=3, y=0): on a level row, linear in x only
    expect(out[0 * 5 + 3]).toBeCloseTo((g(2, 0) + g(4, 0)) / 2, 5);
  });

  it("known finer points override the upsampled values", () => {
    const xs = linspace(0, 4, 5);
    const grid = new Grid(1, xs, xs, ["loss"]);
    grid.announceLevel(0, [0, 2, 4], [0, 2, 4]);
    grid.announceLevel(1, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]);
    fill(grid, [0, 2, 4], [0, 2, 4], g);
    const before = grid.display("loss")![3 * 5 + 1];
    grid.addTile({ count: 1, metrics: ["loss"], rows: [3], cols: [1], values: [g(1, 3)], level: 1 });
    const after = grid.display("loss")!;
    expect(after[3 * 5 + 1]).toBeCloseTo(g(1, 3), 5);
    expect(after[3 * 5 + 1]).not.toBeCloseTo(before, 2);
    // its neighbours are still upsampled from level 0
    expect(after[1 * 5 + 1]).toBeCloseTo((g(0, 0) + g(2, 0) + g(0, 2) + g(2, 2)) / 4, 4);
  });

  it("shows nothing before the first level is complete", () => {
    const grid = new Grid(1, [0, 1, 2], [0, 1, 2], ["loss"]);
    grid.announceLevel(0, [0, 2], [0, 2]);
    fill(grid, [0], [0, 2]);
    expect(grid.drawable).toBe(false);
    expect(grid.display("loss")).toBeNull();
    fill(grid, [2], [0, 2]);
    expect(grid.display("loss")).not.toBeNull();
    expect(grid.display("nope")).toBeNull();
  });

  it("infers a complete subgrid when no level was announced", () => {
    const known = new Uint8Array(25);
    for (const i of [0, 2, 4]) for (const j of [0, 2, 4]) known[i * 5 + j] = 2;
    known[1 * 5 + 1] = 2; // a stray finer point
    const sub = inferSubgrid(known, 5, 5)!;
    expect(sub.cols).toEqual([0, 2, 4]);
    expect(sub.rows).toEqual([0, 2, 4]);
    expect(inferSubgrid(new Uint8Array(25), 5, 5)).toBeNull();
  });
});

describe("non-finite values", () => {
  it("never blend into finite samples, and keep their region", () => {
    // 2 × 2 cell with one NaN corner
    const field = [1, 2, NaN, 4];
    const all = [0, 1];
    const xs = [0, 1];
    const rb = brackets(xs, all, [0.1, 0.9]);
    const cb = brackets(xs, all, [0.1, 0.9]);
    const out = bilinear(field, 2, rb, cb);
    expect(Number.isFinite(out[0])).toBe(true); // near v00 = 1
    expect(out[0]).toBeGreaterThanOrEqual(1);
    expect(out[0]).toBeLessThanOrEqual(4);
    expect(Number.isNaN(out[2])).toBe(true); // near the NaN corner (row 1, column 0)
    expect(Number.isFinite(out[3])).toBe(true); // near v11 = 4
  });

  it("upsampled fields keep NaN where the level has it and stay within the finite range elsewhere", () => {
    const xs = linspace(0, 4, 5);
    const grid = new Grid(1, xs, xs, ["loss"]);
    grid.announceLevel(0, [0, 2, 4], [0, 2, 4]);
    const h = (x: number, y: number) => (x === 4 && y === 4 ? NaN : x + y);
    fill(grid, [0, 2, 4], [0, 2, 4], h);
    const d = grid.display("loss")!;
    expect(Number.isNaN(d[24])).toBe(true);
    for (let k = 0; k < 25; k++) if (Number.isFinite(d[k])) expect(d[k]).toBeGreaterThanOrEqual(0), expect(d[k]).toBeLessThanOrEqual(6);
  });
});

describe("loaded surfaces", () => {
  it("are complete at once", () => {
    const grid = new Grid(5, [0, 1], [0, 1], ["loss"]);
    grid.loadComplete(new Map([["loss", Float32Array.from([1, 2, 3, 4])]]));
    expect(grid.complete).toBe(true);
    expect(Array.from(grid.display("loss")!)).toEqual([1, 2, 3, 4]);
    expect(Grid.nearest([0, 1, 2, 3], 1.4)).toBe(1);
    expect(Grid.nearest([0, 1, 2, 3], 1.6)).toBe(2);
    expect(Grid.nearest([0, 1, 2, 3], -9)).toBe(0);
  });
});

describe("non-finite edges", () => {
  it("follow the half-weight line of the finite corners", () => {
    const field = [1, 1, NaN, NaN]; // bottom row finite, top row NaN
    const xs = [0, 1];
    const cb = brackets(xs, [0, 1], [0.5]);
    const rb = brackets(xs, [0, 1], [0.4, 0.6]);
    const out = bilinear(field, 2, rb, cb);
    expect(out[0]).toBe(1);
    expect(Number.isNaN(out[1])).toBe(true);
    const inf = bilinear([1, Infinity, 1, Infinity], 2, brackets(xs, [0, 1], [0.2]), brackets(xs, [0, 1], [0.8]));
    expect(inf[0]).toBe(Infinity);
  });
});
