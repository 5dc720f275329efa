// The message protocol between the kernel (ls_widget/widget.py) and this frontend.
//
// Shared with Python by convention; the Python tests check the same shapes from the other side.
// Binary payloads are little-endian Int32 / Float32 buffers, never JSON number lists.

/** Progress of the kernel's worker, synced as the `status` trait. */
export interface Status {
  state: "idle" | "computing" | "done" | "error";
  gen: number;
  level: number;
  levels: number;
  fraction: number;
  message: string;
}

/** Geometry of the last complete surface, synced as the `surface_info` trait. */
export interface SurfaceInfo {
  gen: number;
  nx: number;
  ny: number;
  x: number[];
  y: number[];
  metrics: string[];
  x_label: string;
  y_label: string;
}

/** Synced traits of the widget model, as the frontend reads them. */
export interface Traits {
  generation: number;
  grid_x: number[];
  grid_y: number[];
  x_label: string;
  y_label: string;
  metric_names: string[];
  metric: string;
  log_scale: boolean;
  colormap: string;
  n_levels: number;
  status: Partial<Status> | null;
  surface: DataView | ArrayBuffer | ArrayBufferView | null;
  surface_info: Partial<SurfaceInfo> | null;
}

// ---- kernel → frontend ---------------------------------------------------------------------

/** Level `level` is the rectilinear subgrid rows × cols (nested: finer levels contain coarser). */
export interface LevelMsg {
  type: "level";
  gen: number;
  level: number;
  rows: number[];
  cols: number[];
}

/** Header of a tile; its three buffers are decoded into a {@link Tile}. */
export interface TileMsg {
  type: "tile";
  gen: number;
  level: number;
  count: number;
  metrics: string[];
  exact?: boolean;
}

export interface DoneMsg {
  type: "done";
  gen: number;
}

export interface ErrorMsg {
  type: "error";
  gen: number;
  message: string;
}

/** Header of a cross-section answer to a pick; its four buffers are decoded into a {@link Cross}. */
export interface CrossMsg {
  type: "cross";
  gen: number;
  x0: number;
  y0: number;
  metrics: string[];
  nx: number;
  ny: number;
}

export type KernelMsg = LevelMsg | TileMsg | DoneMsg | ErrorMsg | CrossMsg;

/** A decoded tile: `values` is metric-major, `values[m * count + k]` is metric m at point k. */
export interface Tile {
  gen: number;
  level: number;
  count: number;
  metrics: string[];
  exact: boolean;
  rows: Int32Array;
  cols: Int32Array;
  values: Float32Array;
}

/** A decoded cross-section: metrics along x at β = y0 and along y at α = x0 (metric-major). */
export interface Cross {
  gen: number;
  x0: number;
  y0: number;
  metrics: string[];
  xs: Float32Array;
  alongX: Float32Array;
  ys: Float32Array;
  alongY: Float32Array;
}

// ---- frontend → kernel ---------------------------------------------------------------------

export interface ReadyMsg {
  type: "ready";
}
export interface PickMsg {
  type: "pick";
  x: number;
  y: number;
}
/** Sent with one buffer: the PNG bytes of the contour view as drawn after a "done". */
export interface SnapshotMsg {
  type: "snapshot";
  gen: number;
}
export type FrontendMsg = ReadyMsg | PickMsg | SnapshotMsg;

// ---- decoding ------------------------------------------------------------------------------

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Anything the widget manager may hand us for a binary buffer. */
export type BufferLike = DataView | ArrayBuffer | ArrayBufferView;

/** A DataView over the bytes of `buf` (no copy). */
export function asDataView(buf: BufferLike): DataView {
  if (buf instanceof DataView) return buf;
  if (buf instanceof ArrayBuffer) return new DataView(buf);
  if (ArrayBuffer.isView(buf)) return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  throw new ProtocolError("expected a binary buffer");
}

/** Bytes in `buf` (0 for null / undefined). */
export function byteLength(buf: BufferLike | null | undefined): number {
  if (buf == null) return 0;
  if (buf instanceof ArrayBuffer) return buf.byteLength;
  if (ArrayBuffer.isView(buf)) return buf.byteLength;
  return 0;
}

function checkLength(view: DataView, n: number, what: string, width: number): void {
  if (view.byteLength !== n * width) {
    throw new ProtocolError(`${what}: expected ${n * width} bytes (${n} values), got ${view.byteLength}`);
  }
}

/**
 * Little-endian float32 values of `buf` (a copy; works at any byte offset and on any host
 * byte order). `n` checks the count when given.
 */
export function decodeFloat32(buf: BufferLike, n?: number, what = "float32 buffer"): Float32Array {
  const view = asDataView(buf);
  if (view.byteLength % 4 !== 0) throw new ProtocolError(`${what}: ${view.byteLength} bytes is not a multiple of 4`);
  const count = view.byteLength / 4;
  if (n !== undefined) checkLength(view, n, what, 4);
  const out = new Float32Array(count);
  for (let k = 0; k < count; k++) out[k] = view.getFloat32(4 * k, true);
  return out;
}

/** Little-endian int32 values of `buf` (a copy). `n` checks the count when given. */
export function decodeInt32(buf: BufferLike, n?: number, what = "int32 buffer"): Int32Array {
  const view = asDataView(buf);
  if (view.byteLength % 4 !== 0) throw new ProtocolError(`${what}: ${view.byteLength} bytes is not a multiple of 4`);
  const count = view.byteLength / 4;
  if (n !== undefined) checkLength(view, n, what, 4);
  const out = new Int32Array(count);
  for (let k = 0; k < count; k++) out[k] = view.getInt32(4 * k, true);
  return out;
}

function num(v: unknown, what: string): number {
  const x = typeof v === "number" ? v : Number(v);
  if (!Number.isFinite(x)) throw new ProtocolError(`${what}: expected a number, got ${String(v)}`);
  return x;
}

function strList(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${what}: expected a list of names`);
  return v.map((s) => String(s));
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${what}: expected a list of indices`);
  return v.map((s, k) => Math.trunc(num(s, `${what}[${k}]`)));
}

/** A level announcement, validated. */
export function decodeLevel(msg: Record<string, unknown>): LevelMsg {
  return {
    type: "level",
    gen: num(msg.gen, "level.gen"),
    level: num(msg.level, "level.level"),
    rows: intList(msg.rows, "level.rows"),
    cols: intList(msg.cols, "level.cols"),
  };
}

/** A tile header and its buffers [rows (Int32 n), cols (Int32 n), values (Float32 m × n)]. */
export function decodeTile(msg: Record<string, unknown>, buffers: readonly BufferLike[]): Tile {
  const count = num(msg.count, "tile.count");
  const metrics = strList(msg.metrics, "tile.metrics");
  if (!buffers || buffers.length < 3) {
    throw new ProtocolError(`tile: expected 3 buffers (rows, cols, values), got ${buffers ? buffers.length : 0}`);
  }
  return {
    gen: num(msg.gen, "tile.gen"),
    level: num(msg.level ?? 0, "tile.level"),
    count,
    metrics,
    exact: msg.exact === undefined ? true : Boolean(msg.exact),
    rows: decodeInt32(buffers[0], count, "tile.rows"),
    cols: decodeInt32(buffers[1], count, "tile.cols"),
    values: decodeFloat32(buffers[2], metrics.length * count, "tile.values"),
  };
}

/** A cross header and its buffers [xs (n1), along_x (m × n1), ys (n2), along_y (m × n2)]. */
export function decodeCross(msg: Record<string, unknown>, buffers: readonly BufferLike[]): Cross {
  const metrics = strList(msg.metrics, "cross.metrics");
  const nx = num(msg.nx, "cross.nx");
  const ny = num(msg.ny, "cross.ny");
  if (!buffers || buffers.length < 4) {
    throw new ProtocolError(`cross: expected 4 buffers (xs, along_x, ys, along_y), got ${buffers ? buffers.length : 0}`);
  }
  return {
    gen: num(msg.gen, "cross.gen"),
    x0: num(msg.x0, "cross.x0"),
    y0: num(msg.y0, "cross.y0"),
    metrics,
    xs: decodeFloat32(buffers[0], nx, "cross.xs"),
    alongX: decodeFloat32(buffers[1], metrics.length * nx, "cross.along_x"),
    ys: decodeFloat32(buffers[2], ny, "cross.ys"),
    alongY: decodeFloat32(buffers[3], metrics.length * ny, "cross.along_y"),
  };
}

/**
 * The `surface` trait decoded with its `surface_info`: one Float32Array (ny × nx, row-major) per
 * metric, or null when the trait is empty or inconsistent with its info.
 */
export function decodeSurface(
  surface: BufferLike | null | undefined,
  info: Partial<SurfaceInfo> | null | undefined,
): { info: SurfaceInfo; values: Map<string, Float32Array> } | null {
  if (!info || byteLength(surface) === 0) return null;
  const x = (info.x ?? []).map(Number);
  const y = (info.y ?? []).map(Number);
  const nx = info.nx ?? x.length;
  const ny = info.ny ?? y.length;
  const metrics = (info.metrics ?? []).map(String);
  if (nx < 1 || ny < 1 || metrics.length < 1 || x.length !== nx || y.length !== ny) return null;
  const all = decodeFloat32(surface as BufferLike);
  if (all.length !== metrics.length * nx * ny) return null;
  const values = new Map<string, Float32Array>();
  metrics.forEach((m, k) => values.set(m, all.slice(k * nx * ny, (k + 1) * nx * ny)));
  return {
    info: {
      gen: Number(info.gen ?? -1),
      nx,
      ny,
      x,
      y,
      metrics,
      x_label: String(info.x_label ?? ""),
      y_label: String(info.y_label ?? ""),
    },
    values,
  };
}
