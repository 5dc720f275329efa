import { describe, expect, it } from "vitest";
import { axisRange, crossPanels, interp1, primaryIndex } from "../src/curve";
import type { Cross } from "../src/protocol";

describe("cross-section panels", () => {
  const cross: Cross = {
    gen: 1,
    x0: 0.5,
    y0: -0.25,
    metrics: ["accuracy", "loss"],
    xs: Float32Array.from([-1, 0, 1]),
    alongX: Float32Array.from([0.2, 0.9, 0.4, 3, 1, 2]),
    ys: Float32Array.from([-1, 1]),
    alongY: Float32Array.from([0.5, 0.6, 7, 8]),
  };

  it("put loss first (left axis), titled by the fixed coordinate", () => {
    expect(primaryIndex(["accuracy", "loss"])).toBe(1);
    expect(primaryIndex(["mse", "r2"])).toBe(0);
    const [px, py] = crossPanels(cross, "random #0", "random #1");
    expect(px.title).toBe("along x at \u03b2 = \u22120.25");
    expect(py.title).toBe("along y at \u03b1 = 0.5");
    expect(px.series.map((s) => s.name)).toEqual(["loss", "accuracy"]);
    expect(Array.from(px.series[0].values)).toEqual([3, 1, 2]);
    expect(Array.from(py.series[1].values)).toEqual([Math.fround(0.5), Math.fround(0.6)]);
    expect(px.marker).toBe(0.5);
    expect(py.marker).toBe(-0.25);
    expect(px.xLabel).toBe("\u03b1 \u00b7 random #0");
  });

  it("interpolate the marked point and pad axis ranges, ignoring NaN", () => {
    expect(interp1([0, 1, 2], [0, 10, 20], 1.5)).toBe(15);
    expect(Number.isNaN(interp1([0, 1], [0, 1], 2))).toBe(true);
    const r = axisRange([{ name: "loss", values: Float32Array.from([1, NaN, 3, Infinity]) }], false)!;
    expect(r.min).toBeCloseTo(0.9);
    expect(r.max).toBeCloseTo(3.1);
    const g = axisRange([{ name: "loss", values: Float32Array.from([0.01, 100]) }], true)!;
    expect(g.min).toBeLessThan(0.01);
    expect(g.max).toBeGreaterThan(100);
    expect(axisRange([{ name: "loss", values: Float32Array.from([NaN]) }], false)).toBeNull();
  });
});
