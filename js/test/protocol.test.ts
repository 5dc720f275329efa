import { describe, expect, it } from "vitest";
import {
  KERNEL_BUFFERS,
  ProtocolError,
  decodeCross,
  decodeFloat32,
  decodeFrontendMsg,
  decodeInt32,
  decodeKernelMsg,
  decodeLevel,
  decodeStatus,
  decodeSurface,
  decodeTile,
  decodeColorRange,
  modelId,
  readCompareTrait,
  readTrait,
  type Traits,
} from "../src/protocol";
import { FakeModel, f32le, i32le } from "./helpers";

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

describe("kernel messages", () => {
  const tile = { type: "tile", gen: 2, level: 0, count: 2, metrics: ["loss"], exact: true };
  const tileBufs = () => [new DataView(i32le([0, 1])), new DataView(i32le([1, 0])), new DataView(f32le([0.5, 0.25]))];
  const cross = { type: "cross", gen: 1, x0: 0.5, y0: -0.25, metrics: ["loss"], nx: 2, ny: 1 };
  const crossBufs = () => [f32le([-1, 1]), f32le([3, 4]), f32le([0]), f32le([5])];
  const path = { type: "path", gen: 1, count: 3, labels: ["step 0 \u00b7 loss 2.3", "step 10", "step 20 \u00b7 loss 0.41"] };
  const pathBufs = () => [f32le([-0.5, -0.2, 0]), f32le([0.3, 0.1, 0]), new DataView(i32le([0, 10, 20])), f32le([2.3, NaN, 0.41])];

  it("decode every type into a discriminated union", () => {
    const kinds = [
      decodeKernelMsg({ type: "level", gen: 1, level: 0, rows: [0, 2], cols: [0, 2] }),
      decodeKernelMsg(tile, tileBufs()),
      decodeKernelMsg({ type: "done", gen: 1 }),
      decodeKernelMsg({ type: "error", gen: 1, message: "RuntimeError: boom" }),
      decodeKernelMsg(cross, crossBufs()),
      decodeKernelMsg(path, pathBufs()),
    ];
    expect(kinds.map((m) => m.type)).toEqual(["level", "tile", "done", "error", "cross", "path"]);
    const p = kinds[5];
    if (p.type !== "path") throw new Error("narrowing");
    expect(Array.from(p.steps)).toEqual([0, 10, 20]);
    expect(Array.from(p.alpha)).toEqual([-0.5, Math.fround(-0.2), 0]);
    expect(Number.isNaN(p.loss[1])).toBe(true);
    expect(p.labels[2]).toBe("step 20 \u00b7 loss 0.41");
    const t = kinds[1];
    if (t.type !== "tile") throw new Error("narrowing");
    expect(Array.from(t.values)).toEqual([0.5, 0.25]);
    const e = kinds[3];
    expect(e.type === "error" && e.message).toBe("RuntimeError: boom");
    expect(Object.keys(KERNEL_BUFFERS).sort()).toEqual(["cross", "done", "error", "level", "path", "tile"]);
  });

  it("ignore fields they do not know (the kernel may add some)", () => {
    const m = decodeKernelMsg({ type: "done", gen: 3, elapsed: 1.5 });
    expect(m).toEqual({ type: "done", gen: 3 });
  });

  it("reject anything malformed with a ProtocolError", () => {
    const bad: Array<[unknown, unknown[]]> = [
      [null, []],
      ["tile", []],
      [{ gen: 1 }, []], // no type
      [{ type: "bogus", gen: 1 }, []],
      [{ type: "done" }, []], // no gen
      [{ type: "done", gen: "1" }, []], // gen as a string
      [{ type: "done", gen: 1.5 }, []],
      [{ type: "done", gen: -1 }, []],
      [{ type: "done", gen: 1 }, [f32le([1])]], // a buffer too many
      [{ type: "error", gen: 1 }, []], // no message
      [{ type: "level", gen: 1, level: 0, rows: [0, -2], cols: [0] }, []],
      [{ type: "level", gen: 1, level: 0, rows: [0, 0.5], cols: [0] }, []],
      [{ ...tile, metrics: [] }, tileBufs()],
      [{ ...tile, metrics: ["loss", 3] }, tileBufs()],
      [{ ...tile, exact: "yes" }, tileBufs()],
      [{ ...tile, level: undefined }, tileBufs()],
      [tile, tileBufs().slice(0, 2)],
      [tile, [...tileBufs(), f32le([1])]],
      [tile, [tileBufs()[0], "AAAA", tileBufs()[2]]], // not binary
      [tile, [tileBufs()[0], tileBufs()[1], f32le([1, 2, 3])]],
      [{ ...cross, x0: NaN }, crossBufs()],
      [{ ...cross, nx: 0 }, crossBufs()],
      [{ ...cross, ny: 2 }, crossBufs()],
      [cross, crossBufs().slice(1)],
      [{ ...path, labels: ["one label for three snapshots"] }, pathBufs()],
      [{ ...path, count: 2 }, pathBufs()],
      [path, pathBufs().slice(0, 3)],
      [path, [...pathBufs().slice(0, 3), f32le([1, 2])]], // a loss short
    ];
    for (const [content, buffers] of bad) {
      expect(() => decodeKernelMsg(content, buffers), JSON.stringify(content)).toThrow(ProtocolError);
    }
  });
});

describe("frontend messages", () => {
  it("decode ready, pick and snapshot (with its one PNG buffer)", () => {
    expect(decodeFrontendMsg({ type: "ready" })).toEqual({ type: "ready" });
    expect(decodeFrontendMsg({ type: "pick", x: 0.25, y: -0.5 })).toEqual({ type: "pick", x: 0.25, y: -0.5 });
    expect(decodeFrontendMsg({ type: "snapshot", gen: 2 }, [new Uint8Array([137, 80])])).toEqual({ type: "snapshot", gen: 2 });
    expect(() => decodeFrontendMsg({ type: "snapshot", gen: 2 })).toThrow(ProtocolError);
    expect(() => decodeFrontendMsg({ type: "pick", x: "0.25", y: 0 })).toThrow(ProtocolError);
    expect(() => decodeFrontendMsg({ type: "tile" })).toThrow(ProtocolError);
  });
});

describe("traits", () => {
  const full: Traits = {
    generation: 3,
    grid_x: [-1, 0, 1],
    grid_y: [-1, 1],
    x_label: "a",
    y_label: "b",
    metric_names: ["loss"],
    metric: "loss",
    log_scale: true,
    colormap: "magma",
    n_levels: 7,
    status: { state: "computing", gen: 3, level: 1, levels: 2, fraction: 0.5, message: "" },
    surface: new DataView(new ArrayBuffer(0)),
    surface_info: {},
  };

  it("read as synced, or as the Python default when missing or mistyped", () => {
    const model = new FakeModel({ ...full });
    expect(readTrait(model, "generation")).toBe(3);
    expect(readTrait(model, "colormap")).toBe("magma");
    expect(readTrait(model, "log_scale")).toBe(true);
    const broken = new FakeModel({ ...full, generation: "3", grid_x: [0, "1"], log_scale: 1, n_levels: undefined } as unknown as Traits);
    expect(readTrait(broken, "generation")).toBe(0);
    expect(readTrait(broken, "grid_x")).toEqual([]);
    expect(readTrait(broken, "log_scale")).toBe(false);
    expect(readTrait(broken, "n_levels")).toBe(12);
    expect(readTrait(broken, "surface").byteLength).toBe(0);
  });

  it("decode the status dict, {} (never reported) as null", () => {
    expect(decodeStatus({})).toBeNull();
    expect(decodeStatus({ state: "done", gen: 2 })).toEqual({ state: "done", gen: 2, level: 0, levels: 0, fraction: 0, message: "" });
    expect(decodeStatus({ state: "weird" as "done", gen: 2 })).toBeNull();
    expect(decodeStatus(full.status)).toEqual(full.status);
  });
});

describe("the comparison's traits", () => {
  it("decode the shared colour scale, {} (nothing known yet) and malformed ones as null", () => {
    const scale = { gen: 2, metric: "loss", log: false, lo: 0.25, hi: 1.5 };
    expect(decodeColorRange(scale)).toEqual(scale);
    expect(decodeColorRange({})).toBeNull();
    expect(decodeColorRange({ ...scale, lo: 2 })).toBeNull(); // lo > hi
    expect(decodeColorRange({ ...scale, hi: Infinity })).toBeNull();
    expect(decodeColorRange({ ...scale, gen: 1.5 })).toBeNull();
    expect(decodeColorRange({ ...scale, log: "no" as unknown as boolean })).toBeNull();
  });

  it("read the panels' references and the drawing traits, with the Python defaults", () => {
    const model = { get: (k: string) => ({ panels: ["IPY_MODEL_abc", "IPY_MODEL_def"], names: ["a", "b"], n_levels: "7" })[k] };
    expect(readCompareTrait(model as never, "panels").map(modelId)).toEqual(["abc", "def"]);
    expect(readCompareTrait(model as never, "n_levels")).toBe(12);
    expect(readCompareTrait(model as never, "scale")).toEqual({});
    expect(readCompareTrait(model as never, "colormap")).toBe("viridis");
  });
});
