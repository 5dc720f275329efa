// The message protocol between the kernel (ls_widget/widget/, its Python twin ls_widget/widget/protocol.py) and this frontend, declared once.
//
// - `Traits`: the synced traits of `LandscapeWidget`; the model is `AnyModel<Traits>` and traits
//   are read through `readTrait` (validated, with the Python defaults when absent).
// - `KernelMsg`: custom messages kernel → frontend, decoded by `decodeKernelMsg`, which checks
//   every field and the count and byte length of the binary buffers (ProtocolError otherwise).
// - `FrontendMsg`: custom messages frontend → kernel (`decodeFrontendMsg` checks them too).
//
// Binary payloads are little-endian Int32 / Float32 buffers, never JSON number lists. Fields this
// side does not know are ignored, so the kernel may add some.

import type { AnyModel } from "@anywidget/types";

// ---- traits --------------------------------------------------------------------------------

/** Anything the widget manager may hand us for a binary buffer (anywidget: DataView). */
export type BufferLike = DataView | ArrayBuffer | ArrayBufferView;

function isBuffer(b: unknown): b is BufferLike {
  return b instanceof ArrayBuffer || ArrayBuffer.isView(b);
}

/** Progress of the kernel's worker, synced as the `status` trait. */
export interface Status {
  state: "idle" | "computing" | "done" | "error";
  gen: number;
  /** 0-based index of the level being computed (as in `level` / `tile` messages). */
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

/** The synced traits of `LandscapeWidget` (ls_widget/widget/view.py), as the frontend receives them. */
export interface Traits {
  /** Bumped on every change of settings; messages of older generations are dropped. */
  generation: number;
  /** α coordinates (columns) of the current grid. */
  grid_x: number[];
  /** β coordinates (rows) of the current grid. */
  grid_y: number[];
  x_label: string;
  y_label: string;
  /** Metrics computed at every point, "loss" first. */
  metric_names: string[];
  /** The metric drawn in the contour view. */
  metric: string;
  log_scale: boolean;
  colormap: string;
  n_levels: number;
  /** `{}` until the worker first reports; see {@link decodeStatus}. */
  status: Partial<Status>;
  /** The last complete surface: float32 little-endian, metrics × ny × nx (empty before one). */
  surface: BufferLike;
  /** `{}` before the first complete surface; see {@link decodeSurface}. */
  surface_info: Partial<SurfaceInfo>;
}

/** The widget model as anywidget hands it to `initialize` and `render`. */
export type Model = AnyModel<Traits>;

/** The part of the model a session touches (what a test fake implements). */
export type ModelLike = Pick<Model, "get" | "on" | "off" | "send">;

const TRAIT_DEFAULTS: { readonly [K in keyof Traits]: () => Traits[K] } = {
  generation: () => 0,
  grid_x: () => [],
  grid_y: () => [],
  x_label: () => "",
  y_label: () => "",
  metric_names: () => [],
  metric: () => "loss",
  log_scale: () => false,
  colormap: () => "viridis",
  n_levels: () => 12,
  status: () => ({}),
  surface: () => new DataView(new ArrayBuffer(0)),
  surface_info: () => ({}),
};

/** The names of the synced traits (what `Traits` declares), for checks against a recording. */
export const TRAIT_NAMES = Object.keys(TRAIT_DEFAULTS) as ReadonlyArray<keyof Traits>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNumberList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === "number");
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

const TRAIT_CHECKS: { readonly [K in keyof Traits]: (v: unknown) => boolean } = {
  generation: Number.isInteger,
  grid_x: isNumberList,
  grid_y: isNumberList,
  x_label: (v) => typeof v === "string",
  y_label: (v) => typeof v === "string",
  metric_names: isStringList,
  metric: (v) => typeof v === "string",
  log_scale: (v) => typeof v === "boolean",
  colormap: (v) => typeof v === "string",
  n_levels: Number.isInteger,
  status: isObject,
  surface: isBuffer,
  surface_info: isObject,
};

/** The trait `key` of the model, or its Python default when it is missing or of the wrong type. */
export function readTrait<K extends keyof Traits>(model: Pick<Model, "get">, key: K): Traits[K] {
  const v: unknown = model.get(key);
  return TRAIT_CHECKS[key](v) ? (v as Traits[K]) : TRAIT_DEFAULTS[key]();
}

const STATES: ReadonlySet<string> = new Set(["idle", "computing", "done", "error"]);

/** The `status` trait as a full record, or null when it is empty (`{}`) or not a status. */
export function decodeStatus(st: Partial<Status> | null | undefined): Status | null {
  if (!isObject(st) || typeof st.state !== "string" || !STATES.has(st.state) || typeof st.gen !== "number") return null;
  const n = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  return {
    state: st.state,
    gen: st.gen,
    level: n(st.level),
    levels: n(st.levels),
    fraction: n(st.fraction),
    message: typeof st.message === "string" ? st.message : "",
  };
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

/**
 * A tile as sent: this header and 3 buffers, rows (int32 × count), cols (int32 × count) and
 * values (float32 × metrics × count, metric-major).
 */
export interface TileHeader {
  type: "tile";
  gen: number;
  level: number;
  count: number;
  metrics: string[];
  /** False for interpolated values of an adaptive grid (never override exact ones); default true. */
  exact?: boolean;
}

/** A decoded tile: `values[m * count + k]` is metric m at point (rows[k], cols[k]). */
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
export interface TileMsg extends Tile {
  type: "tile";
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

/**
 * The answer to a pick as sent: this header and 4 buffers, xs (float32 × nx), along_x (float32 ×
 * metrics × nx), ys (float32 × ny), along_y (float32 × metrics × ny), metric-major.
 */
export interface CrossHeader {
  type: "cross";
  gen: number;
  x0: number;
  y0: number;
  metrics: string[];
  nx: number;
  ny: number;
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
export interface CrossMsg extends Cross {
  type: "cross";
}

/**
 * A training trajectory projected on the plane of generation `gen`, as sent: this header and 4
 * buffers, alpha (float32 × count), beta (float32 × count), steps (int32 × count) and loss
 * (float32 × count, NaN where none was recorded).
 */
export interface PathHeader {
  type: "path";
  gen: number;
  count: number;
  labels: string[];
}

/** A decoded trajectory: snapshot k at (alpha[k], beta[k]), in training order. */
export interface TrajectoryPath {
  gen: number;
  count: number;
  labels: string[];
  alpha: Float32Array;
  beta: Float32Array;
  steps: Int32Array;
  loss: Float32Array;
}
export interface PathMsg extends TrajectoryPath {
  type: "path";
}

/** A custom message from the kernel, decoded (binary buffers as typed arrays). */
export type KernelMsg = LevelMsg | TileMsg | DoneMsg | ErrorMsg | CrossMsg | PathMsg;
/** The JSON part of a custom message from the kernel, as it travels. */
export type KernelHeader = LevelMsg | TileHeader | DoneMsg | ErrorMsg | CrossHeader | PathHeader;

/** How many binary buffers each message carries. */
export const KERNEL_BUFFERS: { readonly [T in KernelMsg["type"]]: number } = { level: 0, tile: 3, done: 0, error: 0, cross: 4, path: 4 };

// ---- frontend → kernel ---------------------------------------------------------------------

/** Sent once per view when it mounts; the kernel (re)plays the current generation to it. */
export interface ReadyMsg {
  type: "ready";
}
/** A click on the contour, in data coordinates (not snapped to the grid). */
export interface PickMsg {
  type: "pick";
  x: number;
  y: number;
}
/** Sent with 1 buffer: the PNG bytes of the contour view as drawn after a "done". */
export interface SnapshotMsg {
  type: "snapshot";
  gen: number;
}
export type FrontendMsg = ReadyMsg | PickMsg | SnapshotMsg;

export const FRONTEND_BUFFERS: { readonly [T in FrontendMsg["type"]]: number } = { ready: 0, pick: 0, snapshot: 1 };

// ---- decoding ------------------------------------------------------------------------------

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** A DataView over the bytes of `buf` (no copy). */
export function asDataView(buf: BufferLike): DataView {
  if (buf instanceof DataView) return buf;
  if (buf instanceof ArrayBuffer) return new DataView(buf);
  if (ArrayBuffer.isView(buf)) return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  throw new ProtocolError("expected a binary buffer");
}

/** Little-endian 4-byte values of `buf` read by `get` into `out` (a copy, any byte offset). */
function decode4<A extends Float32Array | Int32Array>(
  buf: BufferLike,
  n: number | undefined,
  what: string,
  make: (count: number) => A,
  get: (view: DataView, offset: number) => number,
): A {
  const view = asDataView(buf);
  if (view.byteLength % 4 !== 0) throw new ProtocolError(`${what}: ${view.byteLength} bytes is not a multiple of 4`);
  const count = view.byteLength / 4;
  if (n !== undefined && count !== n) {
    throw new ProtocolError(`${what}: expected ${n * 4} bytes (${n} values), got ${view.byteLength}`);
  }
  const out = make(count);
  for (let k = 0; k < count; k++) out[k] = get(view, 4 * k);
  return out;
}

/** Little-endian float32 values of `buf` (a copy, on any host byte order). `n` checks the count. */
export function decodeFloat32(buf: BufferLike, n?: number, what = "float32 buffer"): Float32Array {
  return decode4(buf, n, what, (c) => new Float32Array(c), (v, o) => v.getFloat32(o, true));
}

/** Little-endian int32 values of `buf` (a copy). `n` checks the count when given. */
export function decodeInt32(buf: BufferLike, n?: number, what = "int32 buffer"): Int32Array {
  return decode4(buf, n, what, (c) => new Int32Array(c), (v, o) => v.getInt32(o, true));
}

function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
    throw new ProtocolError(`${what}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function finite(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ProtocolError(`${what}: expected a number, got ${JSON.stringify(v)}`);
  return v;
}

function names(v: unknown, what: string): string[] {
  if (!isStringList(v) || v.length === 0) throw new ProtocolError(`${what}: expected a non-empty list of names`);
  return v.slice();
}

function indices(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${what}: expected a list of indices`);
  return v.map((x, k) => int(x, `${what}[${k}]`));
}

function buffersOf(msg: { type: string }, buffers: readonly unknown[], expected: number): BufferLike[] {
  if (buffers.length !== expected) throw new ProtocolError(`${msg.type}: expected ${expected} buffers, got ${buffers.length}`);
  return buffers.map((b, k) => {
    if (!isBuffer(b)) throw new ProtocolError(`${msg.type}: buffer ${k} is not binary`);
    return b;
  });
}

/** A level announcement, validated. */
export function decodeLevel(msg: Record<string, unknown>): LevelMsg {
  return {
    type: "level",
    gen: int(msg.gen, "level.gen"),
    level: int(msg.level, "level.level"),
    rows: indices(msg.rows, "level.rows"),
    cols: indices(msg.cols, "level.cols"),
  };
}

/** A tile header and its buffers [rows (int32 n), cols (int32 n), values (float32 m × n)]. */
export function decodeTile(msg: Record<string, unknown>, buffers: readonly unknown[]): TileMsg {
  const count = int(msg.count, "tile.count");
  const metrics = names(msg.metrics, "tile.metrics");
  if (msg.exact !== undefined && typeof msg.exact !== "boolean") throw new ProtocolError("tile.exact: expected a boolean");
  const [rows, cols, values] = buffersOf({ type: "tile" }, buffers, KERNEL_BUFFERS.tile);
  return {
    type: "tile",
    gen: int(msg.gen, "tile.gen"),
    level: int(msg.level, "tile.level"),
    count,
    metrics,
    exact: msg.exact ?? true,
    rows: decodeInt32(rows, count, "tile.rows"),
    cols: decodeInt32(cols, count, "tile.cols"),
    values: decodeFloat32(values, metrics.length * count, "tile.values"),
  };
}

/** A cross header and its buffers [xs (nx), along_x (m × nx), ys (ny), along_y (m × ny)]. */
export function decodeCross(msg: Record<string, unknown>, buffers: readonly unknown[]): CrossMsg {
  const metrics = names(msg.metrics, "cross.metrics");
  const nx = int(msg.nx, "cross.nx", 1);
  const ny = int(msg.ny, "cross.ny", 1);
  const [xs, alongX, ys, alongY] = buffersOf({ type: "cross" }, buffers, KERNEL_BUFFERS.cross);
  return {
    type: "cross",
    gen: int(msg.gen, "cross.gen"),
    x0: finite(msg.x0, "cross.x0"),
    y0: finite(msg.y0, "cross.y0"),
    metrics,
    xs: decodeFloat32(xs, nx, "cross.xs"),
    alongX: decodeFloat32(alongX, metrics.length * nx, "cross.along_x"),
    ys: decodeFloat32(ys, ny, "cross.ys"),
    alongY: decodeFloat32(alongY, metrics.length * ny, "cross.along_y"),
  };
}

/** A path header and its buffers [alpha (count), beta (count), steps (count), loss (count)]. */
export function decodePath(msg: Record<string, unknown>, buffers: readonly unknown[]): PathMsg {
  const count = int(msg.count, "path.count");
  const labels = msg.labels;
  if (!isStringList(labels) || labels.length !== count) throw new ProtocolError(`path.labels: expected ${count} strings`);
  const [alpha, beta, steps, loss] = buffersOf({ type: "path" }, buffers, KERNEL_BUFFERS.path);
  return {
    type: "path",
    gen: int(msg.gen, "path.gen"),
    count,
    labels: labels.slice(),
    alpha: decodeFloat32(alpha, count, "path.alpha"),
    beta: decodeFloat32(beta, count, "path.beta"),
    steps: decodeInt32(steps, count, "path.steps"),
    loss: decodeFloat32(loss, count, "path.loss"),
  };
}

/**
 * A custom message from the kernel, validated and decoded; throws a ProtocolError for anything
 * malformed (unknown type, missing or mistyped field, wrong number or length of buffers).
 */
export function decodeKernelMsg(content: unknown, buffers: readonly unknown[] = []): KernelMsg {
  if (!isObject(content)) throw new ProtocolError("message: expected an object");
  const type = content.type;
  switch (type) {
    case "level":
      buffersOf({ type }, buffers, KERNEL_BUFFERS.level);
      return decodeLevel(content);
    case "tile":
      return decodeTile(content, buffers);
    case "cross":
      return decodeCross(content, buffers);
    case "path":
      return decodePath(content, buffers);
    case "done":
      buffersOf({ type }, buffers, KERNEL_BUFFERS.done);
      return { type, gen: int(content.gen, "done.gen") };
    case "error":
      buffersOf({ type }, buffers, KERNEL_BUFFERS.error);
      if (typeof content.message !== "string") throw new ProtocolError("error.message: expected a string");
      return { type, gen: int(content.gen, "error.gen"), message: content.message };
    default:
      throw new ProtocolError(`message: unknown type ${JSON.stringify(type)}`);
  }
}

/** A custom message from the frontend, validated (the kernel's side of the same checks). */
export function decodeFrontendMsg(content: unknown, buffers: readonly unknown[] = []): FrontendMsg {
  if (!isObject(content)) throw new ProtocolError("message: expected an object");
  const type = content.type;
  switch (type) {
    case "ready":
      buffersOf({ type }, buffers, FRONTEND_BUFFERS.ready);
      return { type };
    case "pick":
      buffersOf({ type }, buffers, FRONTEND_BUFFERS.pick);
      return { type, x: finite(content.x, "pick.x"), y: finite(content.y, "pick.y") };
    case "snapshot":
      buffersOf({ type }, buffers, FRONTEND_BUFFERS.snapshot);
      return { type, gen: int(content.gen, "snapshot.gen") };
    default:
      throw new ProtocolError(`message: unknown type ${JSON.stringify(type)}`);
  }
}

/**
 * The `surface` trait decoded with its `surface_info`: one Float32Array (ny × nx, row-major) per
 * metric, or null when the trait is empty or inconsistent with its info.
 */
export function decodeSurface(
  surface: BufferLike | null | undefined,
  info: Partial<SurfaceInfo> | null | undefined,
): { info: SurfaceInfo; values: Map<string, Float32Array> } | null {
  if (!isObject(info) || !surface || !isBuffer(surface) || surface.byteLength === 0) return null;
  const x = isNumberList(info.x) ? info.x : [];
  const y = isNumberList(info.y) ? info.y : [];
  const nx = typeof info.nx === "number" ? info.nx : x.length;
  const ny = typeof info.ny === "number" ? info.ny : y.length;
  const metrics = isStringList(info.metrics) ? info.metrics : [];
  if (nx < 1 || ny < 1 || metrics.length < 1 || x.length !== nx || y.length !== ny) return null;
  const all = decodeFloat32(surface);
  if (all.length !== metrics.length * nx * ny) return null;
  const values = new Map<string, Float32Array>();
  metrics.forEach((m, k) => values.set(m, all.slice(k * nx * ny, (k + 1) * nx * ny)));
  return {
    info: {
      gen: typeof info.gen === "number" ? info.gen : -1,
      nx,
      ny,
      x,
      y,
      metrics,
      x_label: typeof info.x_label === "string" ? info.x_label : "",
      y_label: typeof info.y_label === "string" ? info.y_label : "",
    },
    values,
  };
}

// ---- the comparison view -------------------------------------------------------------------

/**
 * The colour scale every panel of a comparison shares, synced as its `scale` trait (`{}` while
 * no finite value is known): the range of `metric` over all panels' values known so far.
 */
export interface ColorRange {
  gen: number;
  metric: string;
  log: boolean;
  lo: number;
  hi: number;
}

/** The synced traits of `CompareWidget` (ls_widget/widget/compare_view.py). */
export interface CompareTraits {
  /** The panels' own models (`LandscapeWidget`s), as widget references "IPY_MODEL_<id>". */
  panels: string[];
  /** The panels' titles, in the order of `panels`. */
  names: string[];
  metric_names: string[];
  metric: string;
  log_scale: boolean;
  colormap: string;
  n_levels: number;
  /** `{}` while nothing is known; see {@link decodeColorRange}. */
  scale: Partial<ColorRange>;
}

/** The compare widget's model as anywidget hands it to `render`. */
export type CompareModel = AnyModel<CompareTraits>;

const COMPARE_DEFAULTS: { readonly [K in keyof CompareTraits]: () => CompareTraits[K] } = {
  panels: () => [],
  names: () => [],
  metric_names: () => [],
  metric: () => "loss",
  log_scale: () => false,
  colormap: () => "viridis",
  n_levels: () => 12,
  scale: () => ({}),
};

/** The names of the compare widget's synced traits. */
export const COMPARE_TRAIT_NAMES = Object.keys(COMPARE_DEFAULTS) as ReadonlyArray<keyof CompareTraits>;

const COMPARE_CHECKS: { readonly [K in keyof CompareTraits]: (v: unknown) => boolean } = {
  panels: isStringList,
  names: isStringList,
  metric_names: isStringList,
  metric: (v) => typeof v === "string",
  log_scale: (v) => typeof v === "boolean",
  colormap: (v) => typeof v === "string",
  n_levels: Number.isInteger,
  scale: isObject,
};

/** The trait `key` of the compare model, or its Python default when missing or mistyped. */
export function readCompareTrait<K extends keyof CompareTraits>(model: Pick<CompareModel, "get">, key: K): CompareTraits[K] {
  const v: unknown = model.get(key);
  return COMPARE_CHECKS[key](v) ? (v as CompareTraits[K]) : COMPARE_DEFAULTS[key]();
}

/** The `scale` trait as a full record, or null when it is empty or malformed. */
export function decodeColorRange(v: Partial<ColorRange> | null | undefined): ColorRange | null {
  if (!isObject(v)) return null;
  const { gen, metric, log, lo, hi } = v;
  const num = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
  if (!Number.isInteger(gen) || typeof metric !== "string" || typeof log !== "boolean" || !num(lo) || !num(hi) || lo > hi) return null;
  return { gen: gen as number, metric, log, lo, hi };
}

/** The model id inside a widget reference ("IPY_MODEL_<id>" → "<id>"). */
export function modelId(ref: string): string {
  return ref.startsWith("IPY_MODEL_") ? ref.slice("IPY_MODEL_".length) : ref;
}
