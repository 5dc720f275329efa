// The static picture's frontend side: PNG chunks (CRC, density, the kernel's marker) and when the
// view sends its picture (after a complete surface is drawn and the view is still).

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_SCALE, PICTURE_GAP, PictureSender, crc32, encodePng, isStaticPicture, upFilteredRows, withDensity } from "../src/snapshot";
import type { PanelView } from "../src/panel";
import type { Traits } from "../src/protocol";
import { Session } from "../src/session";
import { FakeModel, f32le, linspace, product, tileMsg } from "./helpers";

// 1 × 1 transparent PNGs written by ls_widget/widget/snapshot.py: as is, and stamped with the marker
const PLAIN = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=";
const STAMPED =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAGHRFWHRscy13aWRnZXQAc3RhdGljIHBpY3R1cmUkr5p9AAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=";

const bytesOf = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/** (type, data) of each chunk, every CRC checked. */
function chunks(png: Uint8Array): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at < png.length; ) {
    const n = dv.getUint32(at);
    const kind = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const body = png.subarray(at + 8, at + 8 + n);
    expect(dv.getUint32(at + 8 + n)).toBe(crc32(png.subarray(at + 4, at + 8 + n)));
    out.push([kind, body]);
    at += 12 + n;
  }
  return out;
}

describe("PNG chunks", () => {
  it("CRC-32 as PNG defines it", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array())).toBe(0);
  });

  it("a pHYs chunk after IHDR states the density: 96 dpi times the scale", () => {
    const png = withDensity(bytesOf(PLAIN), 2);
    const list = chunks(png);
    expect(list.map(([k]) => k)).toEqual(["IHDR", "pHYs", "IDAT", "IEND"]);
    const phys = new DataView(list[1][1].buffer, list[1][1].byteOffset, 9);
    expect(phys.getUint32(0)).toBe(7559); // 2 × 96 / 0.0254 px per metre
    expect(phys.getUint32(4)).toBe(7559);
    expect(phys.getUint8(8)).toBe(1);
    expect(() => withDensity(new Uint8Array([1, 2, 3]), 1)).toThrow(/not a PNG/);
  });

  it("recognises the kernel's marker, and nothing else", () => {
    expect(isStaticPicture(`data:image/png;base64,${STAMPED}`)).toBe(true);
    expect(isStaticPicture(`data:image/png;base64,${PLAIN}`)).toBe(false);
    expect(isStaticPicture(`data:image/jpeg;base64,${STAMPED}`)).toBe(false);
    expect(isStaticPicture("data:image/png;base64,!!!not base64!!!")).toBe(false);
    expect(isStaticPicture("https://example.org/a.png")).toBe(false);
    expect(isStaticPicture(null)).toBe(false);
  });
});

/** Inflates zlib data with the platform's DecompressionStream. */
async function inflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A reference PNG decoder (8-bit RGB or RGBA, one IDAT): the pixels, their layout, the filters used. */
async function decode(png: Uint8Array) {
  const list = chunks(png);
  const ihdr = new DataView(list[0][1].buffer, list[0][1].byteOffset, 13);
  const [width, height, type] = [ihdr.getUint32(0), ihdr.getUint32(4), ihdr.getUint8(9)];
  const bpp = type === 2 ? 3 : 4;
  const raw = await inflate(list.find(([k]) => k === "IDAT")![1]);
  const stride = width * bpp;
  const pixels = new Uint8Array(height * stride);
  const filters = new Set<number>();
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    filters.add(f);
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i];
      const a = i >= bpp ? pixels[y * stride + i - bpp] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
      const c = i >= bpp && y > 0 ? pixels[(y - 1) * stride + i - bpp] : 0;
      const p = a + b - c;
      const pr = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, pr][f];
      pixels[y * stride + i] = (x + pred) & 0xff;
    }
  }
  return { width, height, bpp, pixels, filters, kinds: list.map(([k]) => k) };
}

/** RGBA test pixels: smooth gradients with a noisy band, opaque or not. */
function testImage(width: number, height: number, opaque: boolean): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  let seed = 7;
  const noise = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = (y * width + x) * 4;
      const band = y > height / 3 && y < height / 2;
      rgba[k] = band ? noise() : (x * 5) & 0xff;
      rgba[k + 1] = band ? noise() : (y * 3) & 0xff;
      rgba[k + 2] = (x + y) & 0xff;
      rgba[k + 3] = opaque ? 255 : (x * 7 + y) & 0xff;
    }
  }
  return rgba;
}

describe("encodePng", () => {
  it.each([true, false])("round-trips the pixels (opaque: %s)", async (opaque) => {
    const [w, h] = [37, 24];
    const rgba = testImage(w, h, opaque);
    const png = (await encodePng(rgba, w, h, 2))!;
    const d = await decode(png);
    expect(d.kinds).toEqual(["IHDR", "pHYs", "IDAT", "IEND"]);
    expect([d.width, d.height, d.bpp]).toEqual([w, h, opaque ? 3 : 4]);
    const want = opaque ? rgba.filter((_, k) => k % 4 !== 3) : rgba;
    expect(d.pixels).toEqual(want);
    expect([...d.filters]).toEqual([2]);
  });

  it("filters each row as its difference to the row above", () => {
    const w = 3;
    const rgba = new Uint8Array([10, 20, 30, 255, 1, 2, 3, 255, 0, 0, 0, 255, 15, 10, 250, 255, 1, 2, 3, 0, 9, 9, 9, 255]);
    const rows = upFilteredRows(rgba, w, 2, 3);
    expect([...rows]).toEqual([2, 10, 20, 30, 1, 2, 3, 0, 0, 0, 2, 5, 246, 220, 0, 0, 0, 9, 9, 9]);
    expect(upFilteredRows(rgba, w, 2, 4).length).toBe(2 * (1 + w * 4));
  });
});

// ---- sending -------------------------------------------------------------------------------

interface Drawn {
  source: string;
  args: number[];
}

/** A canvas whose context records drawImage, whose pixels are white, and whose toBlob gives a
 * 1 × 1 PNG (the fallback where the context cannot read pixels: `readable` false). */
function fakeCanvas(log: Drawn[], readable: boolean) {
  const canvas = {
    width: 0,
    height: 0,
    getContext: () => ({
      fillRect: () => {},
      drawImage: (src: { name: string }, ...args: number[]) => log.push({ source: src.name, args }),
      ...(readable
        ? {
            getImageData: (_x: number, _y: number, w: number, h: number) => ({
              data: new Uint8ClampedArray(w * h * 4).fill(255),
              width: w,
              height: h,
            }),
          }
        : {}),
    }),
    toBlob: (cb: (b: Blob) => void) => cb(new Blob([bytesOf(PLAIN)], { type: "image/png" })),
  };
  return canvas;
}

function setup(dpr: number, readable = false) {
  const drawn: Drawn[] = [];
  const made: Array<ReturnType<typeof fakeCanvas>> = [];
  (globalThis as unknown as Record<string, unknown>).document = {
    createElement: () => {
      const c = fakeCanvas(drawn, readable);
      made.push(c);
      return c;
    },
  };
  const grid = { gen: 3, complete: true };
  const sent: Array<{ msg: unknown; buffers: ArrayBuffer[] }> = [];
  const session = {
    grid,
    generation: 3,
    snapshotDue: null as number | null,
    send: (msg: unknown, buffers: ArrayBuffer[]) => sent.push({ msg, buffers }),
  };
  const overlayStates: Array<unknown> = [];
  const panel = {
    opts: { contour: { width: 480, height: 400 }, curves: { width: 330, height: 400 } },
    contour: { name: "contour", width: 480 * dpr },
    overlay: { name: "overlay" },
    curves: { name: "curves" },
    drawnGrid: grid,
    hover: { x: 0.5, y: 0.5 } as unknown,
    hoverSnapshot: 2,
    drawOverlay() {
      overlayStates.push(this.hover);
    },
  };
  const sender = new PictureSender(session as unknown as Session, panel as unknown as PanelView, 100);
  return { sender, session, panel, sent, drawn, made, overlayStates };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("PictureSender", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends one picture once the view is still, of the contour, overlay and curves", async () => {
    const { sender, session, panel, sent, drawn, made, overlayStates } = setup(3);
    sender.drawn(); // nothing due
    session.snapshotDue = 3;
    sender.drawn();
    expect(session.snapshotDue).toBeNull();
    vi.advanceTimersByTime(60);
    session.snapshotDue = 3; // a restyle meanwhile: the timer starts again
    sender.drawn();
    vi.advanceTimersByTime(60);
    expect(made).toHaveLength(0);
    vi.advanceTimersByTime(60);
    vi.useRealTimers();
    await flush();
    expect(sent).toHaveLength(1);
    expect(sent[0].msg).toEqual({ type: "snapshot", gen: 3 });
    // at 3 device px per CSS px on screen, the picture has 2 (MAX_SCALE)
    const s = MAX_SCALE;
    expect(made[0].width).toBe((480 + PICTURE_GAP + 330) * s);
    expect(made[0].height).toBe(400 * s);
    expect(drawn).toEqual([
      { source: "contour", args: [0, 0, 480 * s, 400 * s] },
      { source: "overlay", args: [0, 0, 480 * s, 400 * s] },
      { source: "curves", args: [(480 + PICTURE_GAP) * s, 0, 330 * s, 400 * s] },
    ]);
    // the overlay is drawn without the probe for the picture, then with it again
    expect(overlayStates).toEqual([null, { x: 0.5, y: 0.5 }]);
    expect(panel.hover).toEqual({ x: 0.5, y: 0.5 });
    expect(panel.hoverSnapshot).toBe(2);
    const png = new Uint8Array(sent[0].buffers[0]);
    expect(chunks(png).map(([k]) => k)).toEqual(["IHDR", "pHYs", "IDAT", "IEND"]);
  });

  it("encodes the picture itself where it can read the pixels", async () => {
    const { sender, session, sent } = setup(1, true);
    session.snapshotDue = 3;
    sender.drawn();
    vi.advanceTimersByTime(200);
    vi.useRealTimers();
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    const d = await decode(new Uint8Array(sent[0].buffers[0]));
    expect([d.width, d.height, d.bpp]).toEqual([480 + PICTURE_GAP + 330, 400, 3]);
    expect(d.pixels.every((v) => v === 255)).toBe(true);
  });

  it("sends nothing for a surface that is not drawn complete, or replaced meanwhile", async () => {
    const { sender, session, panel, sent } = setup(1);
    session.snapshotDue = 3;
    panel.drawnGrid = { gen: 2, complete: true }; // an older picture still on screen
    sender.drawn();
    expect(session.snapshotDue).toBe(3); // still due: sent once the grid is drawn
    panel.drawnGrid = session.grid;
    sender.drawn();
    session.grid = { gen: 4, complete: false }; // a new view before the timer fired
    session.generation = 4;
    vi.advanceTimersByTime(200);
    vi.useRealTimers();
    await flush();
    expect(sent).toHaveLength(0);
  });

  it("sends nothing after stop", async () => {
    const { sender, session, sent } = setup(1);
    session.snapshotDue = 3;
    sender.drawn();
    sender.stop();
    vi.advanceTimersByTime(200);
    vi.useRealTimers();
    await flush();
    expect(sent).toHaveLength(0);
  });
});

// ---- when a picture is due -------------------------------------------------------------------

describe("a picture is due", () => {
  const xs = linspace(-1, 1, 3);
  const traits = (): Traits => ({
    generation: 1,
    grid_x: xs,
    grid_y: xs,
    x_label: "a",
    y_label: "b",
    metric_names: ["loss"],
    metric: "loss",
    log_scale: false,
    colormap: "viridis",
    n_levels: 12,
    status: { state: "computing", gen: 1, level: 0, levels: 1, fraction: 0, message: "" },
    surface: new DataView(new ArrayBuffer(0)),
    surface_info: {},
  });
  const cross = () => {
    const bufs = [f32le([-1, 0, 1]), f32le([1, 0, 1]), f32le([-1, 1]), f32le([2, 2])].map((b) => new DataView(b));
    return [{ type: "cross", gen: 1, x0: 0, y0: 0, metrics: ["loss"], nx: 3, ny: 2 }, bufs] as const;
  };

  it("when cross-sections arrive over a complete surface, not over a partial one", () => {
    const model = new FakeModel(traits());
    const s = new Session(model);
    s.start();
    model.custom(...cross());
    expect(s.snapshotDue).toBeNull(); // nothing complete yet
    const p = product([0, 1, 2], [0, 1, 2]);
    const [msg, bufs] = tileMsg(1, 0, p.rows, p.cols, { loss: p.rows.map((i, k) => i + p.cols[k]) });
    model.custom({ type: "level", gen: 1, level: 0, rows: [0, 1, 2], cols: [0, 1, 2] });
    model.custom(msg, bufs);
    model.custom({ type: "done", gen: 1 });
    expect(s.snapshotDue).toBe(1);
    s.snapshotDue = null; // the view sent it
    model.custom(...cross());
    expect(s.snapshotDue).toBe(1);
  });
});
