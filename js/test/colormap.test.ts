import { interpolateMagma, interpolateTurbo, interpolateViridis } from "d3-scale-chromatic";
import { describe, expect, it } from "vitest";
import {
  COLORMAPS,
  ColorScale,
  NONFINITE_RGBA,
  colorTable,
  colormapName,
  finiteRange,
  hasNonFinite,
  rgba,
  rgbaOf,
  tableCss,
} from "../src/colormap";

const entry = (table: Uint8ClampedArray, k: number) => Array.from(table.subarray(4 * k, 4 * k + 4));

describe("colour tables", () => {
  it("have 256 RGBA entries for every colormap", () => {
    for (const name of Object.keys(COLORMAPS)) {
      const t = colorTable(name);
      expect(t.length).toBe(256 * 4);
      for (let k = 0; k < 256; k++) expect(t[4 * k + 3]).toBe(255);
    }
    expect(Object.keys(COLORMAPS).sort()).toEqual(["cividis", "inferno", "magma", "plasma", "turbo", "viridis"]);
  });

  it("match d3's interpolators at the endpoints (viridis: #440154 → #fde725)", () => {
    const v = colorTable("viridis");
    expect(entry(v, 0)).toEqual([...rgba(interpolateViridis(0))]);
    expect(entry(v, 255)).toEqual([...rgba(interpolateViridis(1))]);
    expect(entry(v, 0)).toEqual([0x44, 0x01, 0x54, 255]);
    expect(entry(v, 255)).toEqual([0xfd, 0xe7, 0x25, 255]);
    expect(entry(v, 128)).toEqual([...rgba(interpolateViridis(128 / 255))]);
    expect(entry(colorTable("magma"), 255)).toEqual([...rgba(interpolateMagma(1))]);
    // turbo is a formula that d3 writes as "rgb(r, g, b)"
    expect(interpolateTurbo(0)).toMatch(/^rgb\(/);
    expect(entry(colorTable("turbo"), 0)).toEqual([...rgba(interpolateTurbo(0))]);
    expect(tableCss(v, 0)).toBe("rgb(68, 1, 84)");
    expect(tableCss(v, 255)).toBe("rgb(253, 231, 37)");
  });

  it("fall back to viridis for unknown names and reverse with _r", () => {
    expect(colormapName("Nope")).toBe("viridis");
    expect(colormapName("MAGMA")).toBe("magma");
    expect(colorTable("nope")).toEqual(colorTable("viridis"));
    expect(entry(colorTable("viridis_r"), 0)).toEqual(entry(colorTable("viridis"), 255));
  });

  it("parse both colour forms d3 writes (and any CSS colour), rejecting garbage", () => {
    expect(rgba("#0a0b0c")).toEqual([10, 11, 12, 255]);
    expect(rgba("rgb(1, 2, 3)")).toEqual([1, 2, 3, 255]);
    expect(rgba("rgba(1, 2, 3, 0.5)")).toEqual([1, 2, 3, 128]);
    expect(rgba("red")).toEqual([255, 0, 0, 255]);
    expect(() => rgba("nope")).toThrow();
    expect(() => rgba("")).toThrow();
  });
});

describe("colour scale", () => {
  it("maps linearly with clamping", () => {
    const s = new ColorScale(2, 6);
    expect(s.t(2)).toBe(0);
    expect(s.t(4)).toBe(0.5);
    expect(s.t(6)).toBe(1);
    expect(s.t(100)).toBe(1);
    expect(s.t(-100)).toBe(0);
    expect(s.index(4)).toBe(128);
    expect(s.value(0.25)).toBe(3);
  });

  it("maps logarithmically: the geometric mean is the middle", () => {
    const s = new ColorScale(0.01, 100, true);
    expect(s.t(0.01)).toBeCloseTo(0, 12);
    expect(s.t(1)).toBeCloseTo(0.5, 12);
    expect(s.t(10)).toBeCloseTo(0.75, 12);
    expect(s.t(0)).toBe(0); // non-positive values clamp to the bottom
    expect(s.t(-3)).toBe(0);
    expect(s.value(0.5)).toBeCloseTo(1, 12);
  });

  it("gives non-finite values the non-finite colour", () => {
    const s = new ColorScale(0, 1);
    const table = colorTable("viridis");
    const out = new Uint8ClampedArray(4);
    for (const v of [NaN, Infinity, -Infinity]) {
      expect(Number.isNaN(s.t(v))).toBe(true);
      expect(s.index(v)).toBe(-1);
      rgbaOf(v, s, table, out, 0);
      expect(Array.from(out)).toEqual([...NONFINITE_RGBA]);
    }
    expect([...NONFINITE_RGBA]).toEqual([208, 208, 208, 255]);
    rgbaOf(1, s, table, out, 0);
    expect(Array.from(out)).toEqual(entry(table, 255));
    // the non-finite colour is not in the table
    for (let k = 0; k < 256; k++) expect(entry(table, k)).not.toEqual([...NONFINITE_RGBA]);
  });

  it("handles a constant field", () => {
    const s = new ColorScale(3, 3);
    expect(s.t(3)).toBe(0.5);
  });
});

describe("NaN handling", () => {
  it("excludes NaN and ±Inf from the range (and non-positive values on a log scale)", () => {
    const v = [NaN, 2, Infinity, -1, -Infinity, 5, 0];
    expect(finiteRange(v)).toEqual({ min: -1, max: 5 });
    expect(finiteRange(v, true)).toEqual({ min: 2, max: 5 });
    expect(finiteRange([NaN, Infinity])).toBeNull();
    expect(hasNonFinite(v)).toBe(true);
    expect(hasNonFinite([1, 2])).toBe(false);
  });
});
