import { describe, expect, it } from "vitest";
import { formatCoord, formatTick, formatValue, linearTicks, logTicks, tickSpacing, ticks } from "../src/ticks";

/** A deterministic spread of ranges: tiny, huge, negative, straddling zero, off-grid ends. */
function ranges(): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let k = 0; k < 120; k++) {
    const scale = Math.pow(10, Math.floor(rnd() * 14) - 7);
    const lo = (rnd() * 2 - 1) * scale * 10;
    out.push([lo, lo + (0.01 + rnd() * 20) * scale]);
  }
  return out;
}

const isNice = (step: number) => {
  const m = step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
  return [1, 2, 5, 10].some((n) => Math.abs(m - n) < 1e-9 * n);
};

describe("ticks", () => {
  it("are nice linear values inside the range", () => {
    expect(linearTicks(-1, 1, 4)).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(linearTicks(0.13, 3.41, 5)).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    expect(linearTicks(2, 2)).toEqual([2]);
    expect(linearTicks(1, -1, 4)).toEqual([-1, -0.5, 0, 0.5, 1]); // ascending whatever the order
    expect(linearTicks(NaN, 1)).toEqual([]);
    // d3 alone would leave one tick (−5e−7) here: twice the count is asked for then
    expect(linearTicks(-9.96e-7, -4.66e-8, 3)).toEqual([-8e-7, -6e-7, -4e-7, -2e-7]);
    expect(tickSpacing(-9.96e-7, -4.66e-8, 3)).toBe(2e-7);
  });

  it("are evenly spaced by a 1, 2 or 5 × 10^k step and cover the range (no gap wider than a step at the ends)", () => {
    for (const [lo, hi] of ranges()) {
      for (const count of [3, 5, 8]) {
        const t = linearTicks(lo, hi, count);
        const step = tickSpacing(lo, hi, count);
        expect(isNice(step)).toBe(true);
        expect(t.length).toBeGreaterThanOrEqual(2);
        expect(t.length).toBeLessThanOrEqual(2 * count + 1);
        expect(t[0]).toBeGreaterThanOrEqual(lo);
        expect(t[t.length - 1]).toBeLessThanOrEqual(hi);
        expect(t[0] - lo).toBeLessThan(step * (1 + 1e-9));
        expect(hi - t[t.length - 1]).toBeLessThan(step * (1 + 1e-9));
        for (let k = 1; k < t.length; k++) expect(t[k] - t[k - 1]).toBeCloseTo(step, 12 - Math.floor(Math.log10(step)));
        for (const v of t) expect(Number.isInteger(Number((v / step).toFixed(6)))).toBe(true); // multiples of it
      }
    }
  });

  it("are powers of ten (and 2, 5 multiples) on a log axis", () => {
    expect(logTicks(0.01, 100)).toEqual([0.01, 0.1, 1, 10, 100]);
    expect(logTicks(0.15, 9)).toEqual([0.2, 0.5, 1, 2, 5]);
    expect(logTicks(2, 900, 4)).toEqual([3, 10, 30, 100, 300]);
    expect(logTicks(1.5, 9, 4)).toEqual([2, 4, 6, 8]); // less than a decade: linear ticks
    expect(logTicks(-1, 10)).toEqual([]);
    const wide = logTicks(1e-10, 1e10, 5);
    expect(wide.length).toBeGreaterThanOrEqual(3);
    expect(wide.length).toBeLessThanOrEqual(8);
    expect(wide).toContain(1);
    for (const v of wide) expect(Math.log10(v)).toBeCloseTo(Math.round(Math.log10(v)), 9);
    expect(ticks(0.01, 100, 5, true)).toEqual(logTicks(0.01, 100, 5));
    expect(tickSpacing(0.01, 100, 5, true)).toBe(0);
  });

  it("format compactly with a real minus sign", () => {
    expect(formatTick(-0.5, 0.5)).toBe("\u22120.5");
    expect(formatTick(1, 0.5)).toBe("1.0");
    expect(formatTick(2, 1)).toBe("2");
    expect(formatTick(0, 0.5)).toBe("0");
    expect(formatTick(0.25)).toBe("0.25");
    expect(formatTick(0.0001)).toBe("1e\u22124");
    expect(formatTick(-2.5e-4)).toBe("\u22122.5e\u22124");
    expect(formatTick(123456)).toBe("1.235e5");
    expect(formatValue(1.23456)).toBe("1.235");
    expect(formatValue(-1.5e-5)).toBe("\u22121.500e\u22125");
    expect(formatValue(12345.6)).toBe("12350");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(Infinity)).toBe("+\u221e");
    expect(formatValue(-Infinity)).toBe("\u2212\u221e");
    expect(formatCoord(-0.2)).toBe("\u22120.2");
    expect(formatCoord(0.4031)).toBe("0.403");
    expect(formatCoord(2e-4)).toBe("2e\u22124");
  });

  it("label ticks with the decimals of their spacing, free of rounding error", () => {
    const t = ticks(0, 1, 10);
    expect(t.map((v) => formatTick(v, tickSpacing(0, 1, 10)))).toEqual(["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"]);
    expect(ticks(-0.3, 0.3, 6).map((v) => formatTick(v, tickSpacing(-0.3, 0.3, 6)))).toEqual(["\u22120.3", "\u22120.2", "\u22120.1", "0", "0.1", "0.2", "0.3"]);
    expect(ticks(0, 2000, 4).map((v) => formatTick(v, tickSpacing(0, 2000, 4)))).toEqual(["0", "500", "1000", "1500", "2000"]);
  });
});
