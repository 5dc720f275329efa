import { describe, expect, it } from "vitest";
import { formatCoord, formatTick, formatValue, linearTicks, logTicks } from "../src/ticks";

describe("ticks", () => {
  it("are nice linear values inside the range", () => {
    expect(linearTicks(-1, 1, 4)).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(linearTicks(0.13, 3.41, 5)).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    expect(linearTicks(2, 2)).toEqual([2]);
  });

  it("are powers of ten (and 2, 5 multiples) on a log axis", () => {
    expect(logTicks(0.01, 100)).toEqual([0.01, 0.1, 1, 10, 100]);
    expect(logTicks(0.15, 9)).toEqual([0.2, 0.5, 1, 2, 5]);
    expect(logTicks(-1, 10)).toEqual([]);
  });

  it("format compactly with a real minus sign", () => {
    expect(formatTick(-0.5, 0.5)).toBe("\u22120.5");
    expect(formatTick(1, 0.5)).toBe("1.0");
    expect(formatTick(2, 1)).toBe("2");
    expect(formatTick(0.0001)).toBe("1e\u22124");
    expect(formatTick(-2.5e-4)).toBe("\u22122.5e\u22124");
    expect(formatValue(1.23456)).toBe("1.235");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(Infinity)).toBe("+\u221e");
    expect(formatCoord(-0.2)).toBe("\u22120.2");
    expect(formatCoord(0.4031)).toBe("0.403");
  });
});
