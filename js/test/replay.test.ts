// A session recorded from the real kernel side, replayed through the frontend's decoder and
// Session (no DOM): the grid must end up holding exactly what the kernel computed.
//
// Fixture: tests/fixtures/session.json (shared with the Python tests), recorded by running
// ls_widget.LandscapeWidget once on a small torch MLP with random data and recording everything
// it put on its comm, in order. The session: a view mounts ("ready"), a 9×9 plane streams coarse
// to fine (level, tile..., done), a pick and its "cross" answer; then set_view to another span
// (generation 2, a 9×7 grid) while a second view mounts, so the kernel replays generation 1's
// messages *after* generation 2's trait sync (stale, to be dropped); generation 2 streams to done
// and is picked too.
//
// Format (JSON):
//   {
//     "description": "...",
//     "traits": {...},        every synced trait of the widget when the first view mounts
//     "messages": [entry...]  in the order they crossed the comm
//   }
//   entry: {"dir": "kernel",   "content": {...}, "buffers": ["<base64>", ...]}  custom message kernel → frontend
//          {"dir": "frontend", "content": {...}, "buffers": ["<base64>", ...]}  custom message frontend → kernel
//          {"dir": "sync",     "content": {...}, "buffers": []}                 trait sync kernel → frontend:
//                                                                              the traits it changed
// The bytes trait `surface` is a base64 string wherever a trait appears ("traits", "sync" content).
// Binary buffers are base64 of the raw bytes (little-endian int32 / float32, see src/protocol.ts).

import { describe, expect, it } from "vitest";
import recording from "../../tests/fixtures/session.json";
import { TRAIT_NAMES, decodeFrontendMsg, decodeKernelMsg, readTrait, type Traits } from "../src/protocol";
import { Session } from "../src/session";
import { FakeModel } from "./helpers";

interface Entry {
  dir: "kernel" | "frontend" | "sync";
  content: Record<string, unknown>;
  buffers: string[];
}
interface Recording {
  traits: Record<string, unknown>;
  messages: Entry[];
}

const rec = recording as unknown as Recording;

function bytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}

const view = (b64: string) => new DataView(bytes(b64).buffer);

/** Float32 little-endian values of a base64 buffer, read independently of src/protocol.ts. */
function f32(b64: string): number[] {
  const dv = view(b64);
  return Array.from({ length: dv.byteLength / 4 }, (_, k) => dv.getFloat32(4 * k, true));
}
function i32(b64: string): number[] {
  const dv = view(b64);
  return Array.from({ length: dv.byteLength / 4 }, (_, k) => dv.getInt32(4 * k, true));
}

/** Traits as the widget manager hands them over: the bytes trait as a DataView. */
function traitsOf(raw: Record<string, unknown>): Partial<Traits> {
  const out: Record<string, unknown> = { ...raw };
  if (typeof raw.surface === "string") out.surface = view(raw.surface);
  return out as Partial<Traits>;
}

const kernel = (e: Entry, type?: string) => e.dir === "kernel" && (type === undefined || e.content.type === type);
const indexOf = (pred: (e: Entry) => boolean, from = 0) => rec.messages.findIndex((e, k) => k >= from && pred(e));

/**
 * Replays the recording up to entry `end` (exclusive) into a fresh Session: the kernel's
 * messages and trait syncs as the widget manager delivers them, and the frontend's picks played
 * as clicks. Returns the session, its fake model, the warnings and the stale messages fed.
 */
function replay(end = rec.messages.length) {
  const model = new FakeModel(traitsOf(rec.traits) as Traits);
  const warnings: string[] = [];
  const s = new Session(model, () => {}, (m) => warnings.push(m));
  s.start();
  let stale = 0;
  for (const e of rec.messages.slice(0, end)) {
    if (e.dir === "sync") model.sync(traitsOf(e.content));
    else if (e.dir === "kernel") {
      if (Number(e.content.gen) < model.state.generation) stale++;
      model.custom(e.content, e.buffers.map(view));
    } else if (e.content.type === "pick") {
      s.pick(Number(e.content.x), Number(e.content.y));
      expect(model.sent.at(-1)!.content).toEqual(e.content);
    }
  }
  return { model, s, warnings, stale };
}

/** The kernel's values for generation `gen`, metric-major: [metric][row * nx + col], from its tiles. */
function tileValues(gen: number, metrics: string[], nx: number, ny: number): Float32Array[] {
  const out = metrics.map(() => new Float32Array(nx * ny).fill(NaN));
  for (const e of rec.messages) {
    if (!kernel(e, "tile") || e.content.gen !== gen) continue;
    const [rows, cols, vals] = [i32(e.buffers[0]), i32(e.buffers[1]), f32(e.buffers[2])];
    const names = e.content.metrics as string[];
    rows.forEach((i, k) => names.forEach((m, q) => (out[metrics.indexOf(m)][i * nx + cols[k]] = vals[q * rows.length + k])));
  }
  return out;
}

/** The `surface` trait the kernel synced for generation `gen` (metrics × ny × nx), split per metric. */
function surfaceOf(gen: number): { metrics: string[]; nx: number; ny: number; values: Float32Array[] } {
  const e = rec.messages.find((m) => m.dir === "sync" && (m.content.surface_info as { gen?: number } | undefined)?.gen === gen)!;
  const info = e.content.surface_info as { nx: number; ny: number; metrics: string[] };
  const all = Float32Array.from(f32(e.content.surface as string));
  const n = info.nx * info.ny;
  return { ...info, values: info.metrics.map((_, q) => all.slice(q * n, (q + 1) * n)) };
}

const done1 = indexOf((e) => kernel(e, "done") && e.content.gen === 1);
const cross1 = indexOf((e) => kernel(e, "cross") && e.content.gen === 1);
const gen2Sync = indexOf((e) => e.dir === "sync" && e.content.generation === 2);
const firstGen2Msg = indexOf((e) => kernel(e) && e.content.gen === 2);

describe("the recording", () => {
  it("covers the protocol: every message decodes, both directions, and stale messages follow the generation change", () => {
    const kinds = new Set<string>();
    for (const e of rec.messages) {
      if (e.dir === "sync") continue;
      const decode = e.dir === "kernel" ? decodeKernelMsg : decodeFrontendMsg;
      const msg = decode(e.content, e.buffers.map(view));
      kinds.add(`${e.dir}:${msg.type}`);
    }
    expect([...kinds].sort()).toEqual(["frontend:pick", "frontend:ready", "kernel:cross", "kernel:done", "kernel:level", "kernel:tile"]);
    expect(done1).toBeGreaterThan(0);
    expect(cross1).toBeGreaterThan(done1);
    expect(gen2Sync).toBeGreaterThan(cross1);
    const stale = rec.messages.slice(gen2Sync, firstGen2Msg).filter((e) => kernel(e, "tile") && e.content.gen === 1);
    expect(stale.length).toBeGreaterThan(0);
  });

  it("holds exactly the traits the frontend declares, of the declared types", () => {
    expect(Object.keys(rec.traits).sort()).toEqual([...TRAIT_NAMES].sort());
    const model = new FakeModel(traitsOf(rec.traits) as Traits);
    for (const key of TRAIT_NAMES) expect(readTrait(model, key), key).toBe(model.state[key]); // no default stood in
    for (const e of rec.messages.filter((m) => m.dir === "sync")) {
      for (const key of Object.keys(e.content)) expect(TRAIT_NAMES).toContain(key);
      const synced = new FakeModel({ ...model.state, ...traitsOf(e.content) });
      for (const key of Object.keys(e.content) as Array<keyof Traits>) expect(readTrait(synced, key), key).toBe(synced.state[key]);
    }
  });
});

describe("a recorded session replayed through the frontend", () => {
  it("assembles generation 1 from its tiles: the grid holds the kernel's own surface, bit for bit", () => {
    const { s, warnings, model } = replay(done1 + 1);
    expect(model.sent[0].content).toEqual(rec.messages[0].content); // {"type": "ready"}
    const g = s.grid!;
    expect([g.gen, g.nx, g.ny]).toEqual([1, 9, 9]);
    expect(s.dataAttributes()).toEqual({ gen: "1", complete: "true", level: "1" });
    expect(g.knownCount).toBe(81);
    expect(g.tileLevel).toBe(1); // from the tiles (the surface trait is not what filled it)
    const surf = surfaceOf(1);
    expect(surf.metrics).toEqual(g.metrics);
    const fromTiles = tileValues(1, g.metrics, 9, 9);
    g.metrics.forEach((m, q) => {
      expect(Array.from(g.raw(m)!)).toEqual(Array.from(fromTiles[q]));
      expect(Array.from(g.raw(m)!)).toEqual(Array.from(surf.values[q]));
      expect(g.raw(m)!.every(Number.isFinite)).toBe(true);
    });
    expect(s.snapshotDue).toBe(1);
    expect(s.progressText()).toBe("done \u00b7 9\u00d79 points");
    expect(warnings).toEqual([]);
  });

  it("shows the cross-sections through the picked point", () => {
    const { s, warnings } = replay(cross1 + 1);
    const e = rec.messages[cross1];
    const c = s.cross!;
    expect(c).not.toBeNull();
    expect([c.gen, c.x0, c.y0]).toEqual([1, e.content.x0, e.content.y0]);
    expect(c.metrics).toEqual(e.content.metrics);
    expect(Array.from(c.xs)).toEqual(f32(e.buffers[0]));
    expect(Array.from(c.alongX)).toEqual(f32(e.buffers[1]));
    expect(Array.from(c.ys)).toEqual(f32(e.buffers[2]));
    expect(Array.from(c.alongY)).toEqual(f32(e.buffers[3]));
    expect(c.xs.length).toBe(e.content.nx);
    expect(s.picked).toBeNull();
    expect(warnings).toEqual([]);
  });

  it("drops the old generation's messages that arrive after the generation change", () => {
    const { s, warnings, stale } = replay(firstGen2Msg);
    expect(stale).toBeGreaterThan(0);
    expect(s.dropped).toBe(stale);
    expect(s.generation).toBe(2);
    const g = s.grid!;
    expect([g.gen, g.nx, g.ny, g.knownCount, g.done]).toEqual([2, 9, 7, 0, false]);
    expect(g.levelCount).toBe(0);
    expect(s.cross).toBeNull(); // the stale cross answer did not come back
    expect(s.snapshotDue).toBeNull(); // nor did the stale done
    // generation 1 stays on screen, dimmed, until generation 2 has a complete level
    expect(s.showingStale).toBe(true);
    expect(s.shownGrid()!.gen).toBe(1);
    expect(s.dataAttributes()).toEqual({ gen: "1", complete: "false", level: "1" });
    expect(warnings).toEqual([]);
  });

  it("ends on generation 2 complete, with its cross-section, without a warning", () => {
    const { s, warnings, stale, model } = replay();
    expect(warnings).toEqual([]);
    expect(s.dropped).toBe(stale);
    const g = s.grid!;
    expect([s.generation, g.gen, g.nx, g.ny]).toEqual([2, 2, 9, 7]);
    expect(Array.from(g.xs)).toEqual(model.state.grid_x);
    expect(Array.from(g.ys)).toEqual(model.state.grid_y);
    expect(g.complete).toBe(true);
    const surf = surfaceOf(2);
    expect([surf.nx, surf.ny]).toEqual([9, 7]);
    const fromTiles = tileValues(2, g.metrics, 9, 7);
    g.metrics.forEach((m, q) => {
      expect(Array.from(g.raw(m)!)).toEqual(Array.from(fromTiles[q]));
      expect(Array.from(g.raw(m)!)).toEqual(Array.from(surf.values[q]));
    });
    expect(s.dataAttributes()).toEqual({ gen: "2", complete: "true", level: "1" });
    expect(s.showingStale).toBe(false);
    expect(s.previous!.gen).toBe(1);
    const last = rec.messages.filter((e) => kernel(e, "cross")).at(-1)!;
    expect(s.cross!.gen).toBe(2);
    expect([s.cross!.x0, s.cross!.y0]).toEqual([last.content.x0, last.content.y0]);
    expect(Array.from(s.cross!.alongY)).toEqual(f32(last.buffers[3]));
    expect(s.status()).toMatchObject({ state: "done", gen: 2 });
    expect(s.progressText()).toBe("done \u00b7 9\u00d77 points");
    expect(s.errorText()).toBeNull();
    // what this view sent: its ready and its two picks
    const picks = rec.messages.filter((e) => e.dir === "frontend" && e.content.type === "pick").map((e) => e.content);
    expect(model.sent.map((m) => m.content)).toEqual([{ type: "ready" }, ...picks]);
  });
});
