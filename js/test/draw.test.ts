// The canvas drawings run end to end on a recording 2D context (no browser): labels, colours.

import { beforeAll, describe, expect, it } from "vitest";
import { colorTable, tableCss } from "../src/colormap";
import { drawContour } from "../src/contour";
import { crossPanels, drawCurves } from "../src/curve";
import type { Cross } from "../src/protocol";
import { linspace } from "./helpers";

/** A CanvasRenderingContext2D that records the text drawn and every fillStyle set. */
function recordingContext() {
  const texts: string[] = [];
  const fills: string[] = [];
  const canvas = { width: 960, height: 800 };
  const state: Record<string | symbol, unknown> = {
    canvas,
    measureText: (s: string) => ({ width: 6 * s.length }),
    fillText: (s: string) => texts.push(s),
  };
  const ctx = new Proxy(state, {
    get: (t, k) => (k in t ? t[k] : () => {}),
    set: (t, k, v) => {
      if (k === "fillStyle") fills.push(String(v));
      t[k] = v;
      return true;
    },
  }) as unknown as CanvasRenderingContext2D;
  return { ctx, texts, fills };
}

beforeAll(() => {
  // node has no ImageData; the raster only needs a holder of its pixels
  globalThis.ImageData ??= class {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  } as unknown as typeof ImageData;
});

describe("drawings", () => {
  const xs = linspace(-1, 1, 9);
  const ys = linspace(-0.5, 0.5, 5);
  const field = Float32Array.from({ length: 45 }, (_, k) => 0.2 + xs[k % 9] ** 2 + ys[Math.floor(k / 9)] ** 2);
  field[44] = NaN;

  it("label the contour's axes and colorbar with nice ticks and colour the bar from the table", () => {
    const { ctx, texts, fills } = recordingContext();
    const fig = { xs, ys, field, metric: "loss", xLabel: "random #0", yLabel: "random #1", log: false, colormap: "magma", nLevels: 8 };
    const drawn = drawContour(ctx, fig, 480, 400, 2);
    expect(drawn.levels.length).toBe(8);
    expect(texts).toEqual(expect.arrayContaining(["\u22121.0", "\u22120.5", "0", "0.5", "1.0", "loss", "NaN/\u221e"]));
    expect(texts).toEqual(expect.arrayContaining(["\u03b1 \u00b7 random #0", "\u03b2 \u00b7 random #1"]));
    // the bar, top (maximum) to bottom, in the table's colours
    const magma = colorTable("magma");
    const index = new Map(Array.from({ length: 256 }, (_, k) => [tableCss(magma, k), k]));
    const bar = fills.filter((f) => index.has(f)).map((f) => index.get(f)!);
    expect(bar.length).toBeGreaterThan(100);
    expect(bar[0]).toBeGreaterThan(250);
    expect(bar.at(-1)).toBeLessThan(5);
    for (let k = 1; k < bar.length; k++) expect(bar[k]).toBeLessThanOrEqual(bar[k - 1]);
    const log = recordingContext();
    drawContour(log.ctx, { ...fig, log: true }, 480, 400, 1);
    expect(log.texts).toContain("log scale");
  });

  it("label the cross-sections' axes, linear and log", () => {
    const cross: Cross = {
      gen: 1,
      x0: 0.25,
      y0: -0.5,
      metrics: ["loss", "accuracy"],
      xs: Float32Array.from(linspace(-1, 1, 21)),
      alongX: Float32Array.from([...linspace(0.01, 100, 21), ...linspace(0.2, 0.9, 21)]),
      ys: Float32Array.from(linspace(-1, 1, 11)),
      alongY: Float32Array.from([...linspace(1, 3, 11), ...linspace(0.5, 0.6, 11)]),
    };
    for (const log of [false, true]) {
      const { ctx, texts } = recordingContext();
      drawCurves(ctx, crossPanels(cross, "a", "b"), 330, 400, 2, { log });
      expect(texts).toEqual(expect.arrayContaining(["along x at \u03b2 = \u22120.5", "along y at \u03b1 = 0.25", "loss", "accuracy"]));
      expect(texts).toEqual(expect.arrayContaining(["\u22121.0", "0", "1.0"]));
      // loss along x spans 0.01..100: a log axis labels decades, a linear one round numbers
      expect(texts).toEqual(expect.arrayContaining(log ? ["0.01", "1", "100"] : ["0", "50", "100"]));
      expect(texts).toEqual(expect.arrayContaining(["0.50", "0.55", "0.60"])); // accuracy along y, right axis
    }
  });

  it("draw the placeholder without data", () => {
    const { ctx, texts } = recordingContext();
    drawCurves(ctx, null, 330, 400, 1, { log: false, placeholder: "Click the contour" });
    expect(texts).toEqual(["Click the contour"]);
  });
});
