import { describe, expect, it } from "vitest";
import {
  ProtocolError,
  decodeCross,
  decodeFloat32,
  decodeInt32,
  decodeLevel,
  decodeSurface,
  decodeTile,
} from "../src/protocol";
import { f32le, i32le } from "./helpers";

describe("binary decoding", () => {
  it("reads little-endian float32, NaN and ±Inf included", () => {
    const vals = [1.5, -2.25, NaN, Infinity, -Infinity, 3.4e38, 1e-40];
    const out = decodeFloat32(new DataView(f32le(vals)));
    expect(out).toBeInstanceOf(Float32Array);
    expect(out[0]).toBe(1.5);
    expect(out[1]).toBe(-2.25);
    expect(Number.isNaN(out[2])).toBe(true);
    expect(out[3]).toBe(Infinity);
    expect(out[4]).toBe(-Infinity);
    expect(out[5]).toBe(Math.fround(3.4e38));
    expect(out[6]).toBe(Math.fround(1e-40));
  });

  it("is little-endian whatever the host, and not big-endian", () => {
    const bytes = new Uint8Array([0x00, 0x00, 0x80, 0x3f]); // 1.0f little-endian
    expect(decodeFloat32(bytes)[0]).toBe(1);
    const be = new ArrayBuffer(4);
    new DataView(be).setFloat32(0, 1, false);
    expect(decodeFloat32(be)[0]).not.toBe(1);
    expect(decodeInt32(new Uint8Array([0xff, 0xff, 0xff, 0xff]))[0]).toBe(-1);
    expect(decodeInt32(new Uint8Array([0x01, 0x02, 0x00, 0x00]))[0]).toBe(513);
  });

  it("reads views at unaligned byte offsets (DataView, typed array, ArrayBuffer)", () => {
    const raw = new Uint8Array(1 + 8);
    raw.set(new Uint8Array(f32le([0.5, -7])), 1);
    expect(Array.from(decodeFloat32(new DataView(raw.buffer, 1, 8)))).toEqual([0.5, -7]);
    expect(Array.from(decodeFloat32(raw.subarray(1)))).toEqual([0.5, -7]);
    expect(Array.from(decodeInt32(i32le([3, -4, 5])))).toEqual([3, -4, 5]);
  });

  it("checks lengths", () => {
    expect(() => decodeFloat32(new Uint8Array(6))).toThrow(ProtocolError);
    expect(() => decodeFloat32(f32le([1, 2]), 3)).toThrow(ProtocolError);
    expect(() => decodeInt32(i32le([1, 2]), 3)).toThrow(/expected 12 bytes/);
  });
});

describe("messages", () => {
  it("decodes a tile: rows, cols and metric-major values", () => {
    const msg = { type: "tile", gen: 3, level: 1, count: 2, metrics: ["loss", "accuracy"], exact: true };
    const tile = decodeTile(msg, [
      new DataView(i32le([0, 4])),
      new DataView(i32le([2, 1])),
      new DataView(f32le([0.25, NaN, 0.75, 0.5])),
    ]);
    expect(tile.gen).toBe(3);
    expect(tile.level).toBe(1);
    expect(Array.from(tile.rows)).toEqual([0, 4]);
    expect(Array.from(tile.cols)).toEqual([2, 1]);
    expect(tile.values[0]).toBe(0.25); // loss at point 0
    expect(Number.isNaN(tile.values[1])).toBe(true); // loss at point 1
    expect(tile.values[2]).toBe(0.75); // accuracy at point 0
    expect(tile.exact).toBe(true);
  });

  it("rejects a tile whose buffers disagree with its header", () => {
    const msg = { type: "tile", gen: 0, level: 0, count: 2, metrics: ["loss"] };
    expect(() => decodeTile(msg, [i32le([0, 1]), i32le([0, 1])])).toThrow(ProtocolError);
    expect(() => decodeTile(msg, [i32le([0, 1]), i32le([0, 1]), f32le([1, 2, 3])])).toThrow(ProtocolError);
    expect(() => decodeTile({ ...msg, count: 3 }, [i32le([0, 1]), i32le([0, 1]), f32le([1, 2])])).toThrow(ProtocolError);
  });

  it("defaults exact to true", () => {
    const t = decodeTile({ type: "tile", gen: 0, level: 0, count: 1, metrics: ["loss"] }, [i32le([0]), i32le([0]), f32le([1])]);
    expect(t.exact).toBe(true);
    const u = decodeTile({ type: "tile", gen: 0, level: 0, count: 1, metrics: ["loss"], exact: false }, [i32le([0]), i32le([0]), f32le([1])]);
    expect(u.exact).toBe(false);
  });

  it("decodes a level announcement", () => {
    const lv = decodeLevel({ type: "level", gen: 2, level: 0, rows: [0, 4, 8], cols: [0, 8] });
    expect(lv).toEqual({ type: "level", gen: 2, level: 0, rows: [0, 4, 8], cols: [0, 8] });
    expect(() => decodeLevel({ type: "level", gen: 2, level: 0, rows: "x", cols: [] })).toThrow(ProtocolError);
  });

  it("decodes a cross-section answer", () => {
    const c = decodeCross({ type: "cross", gen: 1, x0: 0.5, y0: -0.25, metrics: ["loss", "accuracy"], nx: 3, ny: 2 }, [
      f32le([-1, 0, 1]),
      f32le([3, 2, 3, 0.1, 0.2, 0.3]),
      f32le([-1, 1]),
      f32le([5, 6, 0.7, 0.8]),
    ]);
    expect(Array.from(c.xs)).toEqual([-1, 0, 1]);
    expect(Array.from(c.alongX.subarray(0, 3))).toEqual([3, 2, 3]);
    expect(c.alongY.length).toBe(4);
    expect(c.x0).toBe(0.5);
    expect(c.y0).toBe(-0.25);
    expect(() => decodeCross({ type: "cross", gen: 1, x0: 0, y0: 0, metrics: ["loss"], nx: 3, ny: 2 }, [f32le([1, 2, 3])])).toThrow(ProtocolError);
  });
});

describe("surface trait", () => {
  const info = { gen: 4, nx: 3, ny: 2, x: [-1, 0, 1], y: [-1, 1], metrics: ["loss", "accuracy"], x_label: "a", y_label: "b" };

  it("splits metric × ny × nx into one row-major array per metric", () => {
    const loss = [1, 2, 3, 4, 5, 6];
    const acc = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    const out = decodeSurface(new DataView(f32le([...loss, ...acc])), info)!;
    expect(out.info.gen).toBe(4);
    expect(Array.from(out.values.get("loss")!)).toEqual(loss);
    expect(out.values.get("accuracy")![4]).toBeCloseTo(0.5, 6); // row 1, column 1
  });

  it("is null when empty or inconsistent", () => {
    expect(decodeSurface(new DataView(new ArrayBuffer(0)), info)).toBeNull();
    expect(decodeSurface(null, info)).toBeNull();
    expect(decodeSurface(f32le([1, 2, 3]), info)).toBeNull();
    expect(decodeSurface(f32le([1, 2, 3, 4, 5, 6]), {})).toBeNull();
  });
});
