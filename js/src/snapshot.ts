// The picture a saved notebook keeps (the kernel side is ls_widget/widget/snapshot.py).
//
// Once the current generation's complete surface is drawn (after its "done", a restyle, a new
// cross-section or trajectory) and the view has been still for a moment, the view composes what
// it shows on one canvas: the contour with its axes, colorbar and picked point (not the hover
// probe), and the cross-sections beside it, at the screen's device pixel ratio capped at 2. It
// encodes that as a compact PNG (the canvas's own encoder favours speed and makes files 1.8 times
// larger) with a pHYs chunk stating its density, and sends it to the kernel ("snapshot"), which
// puts it in an output right after the widget's (its static picture). While the view is live it
// hides that output, recognised by the tEXt chunk the kernel stamps on it; without a kernel (a
// reopened notebook, nbconvert's HTML, GitHub) that output is what shows.

import { canvasPngBytes } from "./export";
import type { PanelView } from "./panel";
import type { Session } from "./session";

/** Device pixels per CSS pixel of the static picture at most (it lives in the notebook file). */
export const MAX_SCALE = 2;
/** CSS px between the contour and the cross-sections, as between them on screen. */
export const PICTURE_GAP = 12;
/** How long the view must be still before its picture is sent (a dragged slider sends one). */
export const SETTLE_MS = 250;
/** Keyword of the tEXt chunk by which the kernel marks a static picture (snapshot.py). */
export const MARKER_KEYWORD = "ls-widget";

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const IHDR_END = 8 + 12 + 13;
/** CSS pixels per metre (96 per inch), the unit of a pHYs chunk's density at scale 1. */
const CSS_PX_PER_METRE = 96 / 0.0254;

// ---- PNG chunks ------------------------------------------------------------------------------

let crcTable: Uint32Array | null = null;

/** CRC-32 (ISO 3309, as PNG chunks use) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let k = 0; k < bytes.length; k++) crc = crcTable[(crc ^ bytes[k]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function isPng(b: Uint8Array): boolean {
  return b.length >= IHDR_END && PNG_SIGNATURE.every((v, k) => b[k] === v);
}

/** A PNG chunk: length, type, data, CRC. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let k = 0; k < 4; k++) out[4 + k] = type.charCodeAt(k);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The pHYs chunk of `scale` device pixels per CSS pixel (96 dpi × scale). */
function densityChunk(scale: number): Uint8Array {
  const ppm = Math.round(scale * CSS_PX_PER_METRE);
  const data = new Uint8Array(9);
  const dv = new DataView(data.buffer);
  dv.setUint32(0, ppm);
  dv.setUint32(4, ppm);
  data[8] = 1; // unit: the metre
  return chunk("pHYs", data);
}

/** `png` with a pHYs chunk after its IHDR saying `scale` device pixels per CSS pixel. */
export function withDensity(png: Uint8Array, scale: number): Uint8Array {
  if (!isPng(png)) throw new Error("not a PNG");
  return concat([png.subarray(0, IHDR_END), densityChunk(scale), png.subarray(IHDR_END)]);
}

/**
 * The scanlines of RGBA pixels, `bpp` bytes a pixel (3 drops alpha), each with PNG's "Up" filter
 * (type 2: the difference to the row above). With deflate at zlib's default level this is within
 * 1 % of libpng's adaptive choice per row on the view's pictures, at a fraction of its cost; the
 * level is what matters (the canvas encoder's fastest level makes files 1.8 times larger).
 */
export function upFilteredRows(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, bpp: 3 | 4): Uint8Array {
  const stride = width * bpp;
  const out = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const at = y * (stride + 1);
    out[at] = 2;
    for (let x = 0, s = y * width * 4, d = at + 1; x < width; x++, s += 4, d += bpp) {
      for (let c = 0; c < bpp; c++) out[d + c] = y > 0 ? rgba[s + c] - rgba[s + c - width * 4] : rgba[s + c];
    }
  }
  return out;
}

/** zlib-compressed bytes (the browser's deflate), or null where CompressionStream is missing. */
async function zlibCompress(bytes: Uint8Array): Promise<Uint8Array | null> {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A PNG of RGBA pixels at `scale` device pixels per CSS pixel: RGB when every pixel is opaque,
 * rows filtered by `upFilteredRows`, deflated by the browser; null where it cannot deflate.
 */
export async function encodePng(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number, scale: number): Promise<Uint8Array | null> {
  let opaque = true;
  for (let k = 3; k < rgba.length && opaque; k += 4) opaque = rgba[k] === 255;
  const idat = await zlibCompress(upFilteredRows(rgba, width, height, opaque ? 3 : 4));
  if (!idat) return null;
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, opaque ? 2 : 6, 0, 0, 0], 8); // 8 bits, RGB or RGBA, deflate, filter method 0, no interlace
  return concat([new Uint8Array(PNG_SIGNATURE), chunk("IHDR", ihdr), densityChunk(scale), chunk("IDAT", idat), chunk("IEND", new Uint8Array())]);
}

/** The PNG of a canvas at `scale`: `encodePng`, else the canvas's own encoder with a pHYs chunk. */
export async function picturePng(canvas: HTMLCanvasElement, scale: number): Promise<Uint8Array> {
  const ctx = canvas.getContext("2d");
  if (ctx && typeof ctx.getImageData === "function") {
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const png = await encodePng(data, width, height, scale);
    if (png) return png;
  }
  return withDensity(new Uint8Array(await canvasPngBytes(canvas)), scale);
}

/** Whether an image source is a PNG data URL carrying the kernel's marker right after its IHDR. */
export function isStaticPicture(src: string | null): boolean {
  const prefix = "data:image/png;base64,";
  if (!src || !src.startsWith(prefix)) return false;
  let head: string;
  try {
    head = atob(src.slice(prefix.length, prefix.length + 96)); // 72 bytes, a whole base64 block
  } catch {
    return false;
  }
  const b = Uint8Array.from(head, (c) => c.charCodeAt(0));
  if (!isPng(b) || b.length < IHDR_END + 8 + MARKER_KEYWORD.length + 1) return false;
  const text = String.fromCharCode(...b.subarray(IHDR_END + 4, IHDR_END + 8 + MARKER_KEYWORD.length + 1));
  return text === `tEXt${MARKER_KEYWORD}\0`;
}

// ---- composing and sending -------------------------------------------------------------------

/**
 * One canvas with what the panel shows, at `scale` device pixels per CSS pixel: the contour (axes,
 * colorbar, trajectory) and its overlay without the hover probe, the cross-sections to the right.
 */
export function composePicture(panel: PanelView, scale: number): HTMLCanvasElement {
  const { contour, curves } = panel.opts;
  const canvas = document.createElement("canvas");
  canvas.width = Math.round((contour.width + PICTURE_GAP + curves.width) * scale);
  canvas.height = Math.round(Math.max(contour.height, curves.height) * scale);
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new Error("no 2D context for the picture");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingQuality = "high";
  const { hover, hoverSnapshot } = panel;
  panel.hover = null; // the probe follows the pointer: not part of the picture
  panel.hoverSnapshot = -1;
  try {
    panel.drawOverlay();
    const cw = contour.width * scale;
    const ch = contour.height * scale;
    ctx.drawImage(panel.contour, 0, 0, cw, ch);
    ctx.drawImage(panel.overlay, 0, 0, cw, ch);
    ctx.drawImage(panel.curves, (contour.width + PICTURE_GAP) * scale, 0, curves.width * scale, curves.height * scale);
  } finally {
    panel.hover = hover;
    panel.hoverSnapshot = hoverSnapshot;
    panel.drawOverlay();
  }
  return canvas;
}

/** Sends the kernel the picture of each complete surface drawn, once the view is still. */
export class PictureSender {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(
    private readonly session: Session,
    private readonly panel: PanelView,
    private readonly settleMs = SETTLE_MS,
  ) {}

  /** Called after each drawing: a picture that is due and drawn is sent after `settleMs` still. */
  drawn(): void {
    const due = this.session.snapshotDue;
    if (due === null || this.stopped || !this.showing(due)) return;
    this.session.snapshotDue = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.send(due);
    }, this.settleMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Whether the panel shows generation `gen`'s complete surface. */
  private showing(gen: number): boolean {
    const g = this.session.grid;
    return !!g && this.panel.drawnGrid === g && g.gen === gen && g.complete;
  }

  private send(gen: number): void {
    if (this.stopped || !this.showing(gen)) return; // a newer view came meanwhile
    const scale = Math.min(MAX_SCALE, this.panel.contour.width / this.panel.opts.contour.width || 1);
    const canvas = composePicture(this.panel, scale);
    picturePng(canvas, scale)
      .then((png) => {
        if (this.stopped || this.session.generation !== gen) return;
        this.session.send({ type: "snapshot", gen }, [png.buffer as ArrayBuffer]);
      })
      .catch((e) => console.warn("ls-widget: snapshot failed", e));
  }
}

// ---- hiding the static picture while live ------------------------------------------------------

/** An output of JupyterLab's (and Notebook 7's) output areas, and a widget view inside one. */
const OUTPUT_CHILD = ".jp-OutputArea-child";
const WIDGET_OUTPUT = '[data-mime-type="application/vnd.jupyter.widget-view+json"]';

/** The first output after `child`, before the next widget view, whose image is a static picture. */
function staticSibling(child: Element): HTMLElement | null {
  for (let s = child.nextElementSibling; s; s = s.nextElementSibling) {
    if (s.querySelector(WIDGET_OUTPUT)) return null; // the next widget's view hides its own
    const img = s.querySelector("img");
    if (img && isStaticPicture(img.getAttribute("src"))) return s as HTMLElement;
  }
  return null;
}

/**
 * While this view (rendered into `el`) is live, hides the static picture output that follows its
 * own output in JupyterLab or Notebook 7 (where the kernel displayed it); returns the cleanup,
 * which shows it again. Elsewhere (an HTML export, a comparison, other frontends) it does nothing.
 */
export function hideStaticPicture(el: HTMLElement): () => void {
  const hidden = new Set<HTMLElement>();
  let observer: MutationObserver | null = null;
  let frame = 0;
  let done = false;
  const hide = (child: Element) => {
    const s = staticSibling(child);
    if (!s || hidden.has(s)) return;
    s.style.display = "none";
    hidden.add(s);
  };
  // ipywidgets attaches the view's element after render: wait for it, then watch its output area
  // for the static output's arrival (and JupyterLab's re-rendering of it on update_display).
  const attach = () => {
    frame = 0;
    if (done) return;
    if (!el.isConnected) {
      frame = requestAnimationFrame(attach);
      return;
    }
    const child = el.closest(OUTPUT_CHILD);
    const area = child?.parentElement;
    if (!child || !area || typeof MutationObserver === "undefined") return;
    observer = new MutationObserver((records) => {
      if (records.some((r) => !child.contains(r.target))) hide(child);
    });
    observer.observe(area, { childList: true, subtree: true });
    hide(child);
  };
  if (typeof el.closest === "function" && typeof requestAnimationFrame === "function") attach();
  return () => {
    done = true;
    if (frame) cancelAnimationFrame(frame);
    observer?.disconnect();
    for (const s of hidden) s.style.display = "";
    hidden.clear();
  };
}
