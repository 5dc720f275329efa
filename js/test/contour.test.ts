import { describe, expect, it } from "vitest";
import { ColorScale, NONFINITE_RGBA, colorTable, finiteRange } from "../src/colormap";
import {
  axisLabel,
  computeIsolines,
  contourLayout,
  contourLevels,
  coordAt,
  dataToPixel,
  fitLabel,
  fitText,
  pixelToData,
  rasterize,
} from "../src/contour";

describe("contour levels", () => {
  it("are n evenly spaced values strictly inside the range", () => {
    const L = contourLevels(1, 13, 5);
    expect(L.length).toBe(5);
    expect(L).toEqual([3, 5, 7, 9, 11]);
    const M = contourLevels(-0.3, 2.7, 12);
    expect(M.length).toBe(12);
    const d = M.slice(1).map((v, k) => v - M[k]);
    for (const x of d) expect(x).toBeCloseTo(d[0], 12);
    for (const v of M) expect(v > -0.3 && v < 2.7).toBe(true);
  });

  it("are geometric on a log scale", () => {
    const L = contourLevels(0.01, 100, 3, true);
    expect(L.length).toBe(3);
    expect(L[0]).toBeCloseTo(0.1, 12);
    expect(L[1]).toBeCloseTo(1, 12);
    expect(L[2]).toBeCloseTo(10, 12);
    const M = contourLevels(0.5, 40, 7, true);
    const r = M.slice(1).map((v, k) => v / M[k]);
    for (const x of r) expect(x).toBeCloseTo(r[0], 12);
    for (const v of M) expect(v > 0.5 && v < 40).toBe(true);
  });

  it("are empty for no levels, an empty or degenerate range, or log of a non-positive range", () => {
    expect(contourLevels(0, 1, 0)).toEqual([]);
    expect(contourLevels(1, 1, 5)).toEqual([]);
    expect(contourLevels(NaN, 1, 5)).toEqual([]);
    expect(contourLevels(0, 1, 5, true)).toEqual([]);
  });

  it("come from the finite range only", () => {
    const field = [NaN, 1, 2, Infinity, 3, -Infinity, 4, 5, 6];
    const r = finiteRange(field)!;
    expect(r).toEqual({ min: 1, max: 6 });
    const L = contourLevels(r.min, r.max, 4);
    expect(L.length).toBe(4);
    for (const v of L) expect(Number.isFinite(v) && v > 1 && v < 6).toBe(true);
  });
});

describe("isolines", () => {
  const nx = 6;
  const ny = 5;
  const ramp = (fn: (i: number, j: number) => number) =>
    Float32Array.from({ length: nx * ny }, (_, k) => fn(Math.floor(k / nx), k % nx));

  it("of f = column index are vertical lines at that column, inside the grid", () => {
    const iso = computeIsolines(ramp((_, j) => j), nx, ny, [2.5]);
    expect(iso.length).toBe(1);
    const pts = iso[0].lines.flat();
    expect(pts.length).toBeGreaterThan(0);
    for (let k = 0; k < pts.length; k += 2) {
      expect(pts[k]).toBeCloseTo(2.5, 9);
      expect(pts[k + 1]).toBeGreaterThanOrEqual(0);
      expect(pts[k + 1]).toBeLessThanOrEqual(ny - 1);
    }
    // spans the whole height, no border closing segments
    const vs = pts.filter((_, k) => k % 2 === 1);
    expect(Math.min(...vs)).toBeCloseTo(0, 9);
    expect(Math.max(...vs)).toBeCloseTo(ny - 1, 9);
  });

  it("give one isoline per level", () => {
    const iso = computeIsolines(ramp((i, j) => i * i + j * j), nx, ny, contourLevels(0, 41, 6));
    expect(iso.length).toBe(6);
    expect(iso.every((l) => l.lines.length > 0)).toBe(true);
  });

  it("leave out every cell that touches a non-finite value", () => {
    const f = ramp((_, j) => j);
    f[2 * nx + 3] = NaN; // row 2, column 3
    const iso = computeIsolines(f, nx, ny, [2.5, 3.5]);
    for (const line of iso) {
      for (const pts of line.lines) {
        for (let k = 0; k + 3 < pts.length; k += 2) {
          const mu = (pts[k] + pts[k + 2]) / 2;
          const mv = (pts[k + 1] + pts[k + 3]) / 2;
          const inBadCell = mu > 2 && mu < 4 && mv > 1 && mv < 3; // the 4 cells around (2, 3)
          expect(inBadCell).toBe(false);
        }
      }
    }
    // the rest of the lines are still there
    expect(iso[0].lines.flat().length).toBeGreaterThan(0);
  });

  it("are empty for a field without finite values", () => {
    expect(computeIsolines(new Float32Array(nx * ny).fill(NaN), nx, ny, [1])).toEqual([]);
  });

  it("map fractional indices to coordinates", () => {
    const xs = [-1, 0, 2];
    expect(coordAt(xs, 0.5)).toBe(-0.5);
    expect(coordAt(xs, 1.25)).toBe(0.5);
    expect(coordAt(xs, -3)).toBe(-1);
    expect(coordAt(xs, 9)).toBe(2);
  });
});

describe("raster", () => {
  const table = colorTable("viridis");

  it("interpolates values, not colours", () => {
    // 2 × 2 grid 0 | 1 in x; the middle pixel of a 3-pixel row sits at x = 0.5
    const px = rasterize([0, 1, 0, 1], [0, 1], [0, 1], 3, 1, new ColorScale(0, 1), table);
    const mid = Array.from(px.subarray(4, 8));
    expect(mid).toEqual(Array.from(table.subarray(4 * 128, 4 * 128 + 4)));
  });

  it("puts the largest y on the top row", () => {
    const px = rasterize([0, 0, 1, 1], [0, 1], [0, 1], 1, 2, new ColorScale(0, 1), table, 0);
    // top pixel centre at y = 0.75, bottom at 0.25
    expect(Array.from(px.subarray(0, 4))).toEqual(Array.from(table.subarray(4 * 191, 4 * 191 + 4)));
    expect(Array.from(px.subarray(4, 8))).toEqual(Array.from(table.subarray(4 * 64, 4 * 64 + 4)));
  });

  it("draws non-finite points in the non-finite colour", () => {
    const px = rasterize([NaN, NaN, NaN, NaN], [0, 1], [0, 1], 2, 2, new ColorScale(0, 1), table, 0);
    for (let k = 0; k < 4; k++) expect(Array.from(px.subarray(4 * k, 4 * k + 4))).toEqual([...NONFINITE_RGBA]);
  });
});

describe("layout", () => {
  it("keeps the plot and colorbar inside the canvas and round-trips pixels", () => {
    const L = contourLayout(480, 400, -1, 1, -0.5, 0.5);
    expect(L.plot.x).toBeGreaterThan(0);
    expect(L.bar.x + L.bar.w).toBeLessThan(480);
    expect(L.plot.y + L.plot.h).toBeLessThan(400);
    expect(L.plot.w / L.plot.h).toBeCloseTo(2, 1);
    const [px, py] = dataToPixel(L, 0.3, -0.2);
    const back = pixelToData(L, px, py)!;
    expect(back[0]).toBeCloseTo(0.3, 9);
    expect(back[1]).toBeCloseTo(-0.2, 9);
    expect(pixelToData(L, 1, 1)).toBeNull();
    const [ox, oy] = dataToPixel(L, -1, 0.5);
    expect([ox, oy]).toEqual([L.plot.x, L.plot.y]);
  });
});

describe("axis labels", () => {
  // 6 px per character, as draw.test.ts measures text.
  const ctx = { measureText: (s: string) => ({ width: 6 * s.length }) } as unknown as CanvasRenderingContext2D;
  const scoped = axisLabel("\u03b1", "mix(random #0, filter-norm \u2192 random #2, filter-norm, t=0.50) \u00b7 trainable (1.2 k of 3.4 k params)");

  it("are unchanged when they fit", () => {
    expect(fitLabel(ctx, scoped, 6 * scoped.length)).toBe(scoped);
    expect(fitText(ctx, "\u03b1 \u00b7 random #0", 600)).toBe("\u03b1 \u00b7 random #0");
  });

  it("keep the parameter scope whole and shorten the direction before it", () => {
    const out = fitLabel(ctx, scoped, 6 * 60);
    expect(out.length).toBeLessThanOrEqual(60);
    expect(out.endsWith("\u2026 \u00b7 trainable (1.2 k of 3.4 k params)")).toBe(true);
    expect(out.startsWith("\u03b1 \u00b7 mix(random #0")).toBe(true);
    // fitText alone would cut the scope off.
    expect(fitText(ctx, scoped, 6 * 60)).not.toContain("params");
  });

  it("shorten the end when there is no scope, or no room to keep it", () => {
    const plain = axisLabel("\u03b2", "random #1, filter-norm, a long description of it");
    expect(fitLabel(ctx, plain, 6 * 20)).toBe(fitText(ctx, plain, 6 * 20));
    expect(fitLabel(ctx, scoped, 6 * 30)).toBe(fitText(ctx, scoped, 6 * 30));
    expect(fitLabel(ctx, scoped, 6 * 30).length).toBeLessThanOrEqual(30);
  });
});
