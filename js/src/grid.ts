// Tile assembly and progressive display of one generation's grid.
//
// Z[i, j] lies at (xs[j], ys[i]); arrays are row-major, index i * nx + j. Levels are rectilinear
// subgrids rows × cols announced by the kernel; a level is complete once every one of its points
// is known, whichever tile brought it. Until the full grid is known, the display field is the
// finest complete level bilinearly upsampled (in coordinates) with every known point exact.

import type { TrajectoryPath } from "./protocol";

/** Brackets of target coordinates within a sorted subset `idx` of a coordinate axis. */
export interface Brackets {
  /** Lower and upper neighbour (indices into the full axis) and the weight of the upper one. */
  i0: Int32Array;
  i1: Int32Array;
  t: Float64Array;
}

/**
 * For each target coordinate, the two members of `idx` (indices into `coords`, ascending with
 * ascending coordinates) around it and the linear weight of the upper one. Targets outside the
 * subset's span are clamped to its ends (weight 0).
 */
export function brackets(coords: ArrayLike<number>, idx: ArrayLike<number>, targets: ArrayLike<number>): Brackets {
  const n = targets.length;
  const i0 = new Int32Array(n);
  const i1 = new Int32Array(n);
  const t = new Float64Array(n);
  const m = idx.length;
  if (m === 0) return { i0, i1, t };
  let k = 0;
  // targets are usually ascending; a moving pointer with a fallback binary search handles both.
  for (let p = 0; p < n; p++) {
    const x = targets[p];
    if (!(k < m - 1 && coords[idx[k]] <= x && x <= coords[idx[k + 1]])) {
      // binary search: largest k with coords[idx[k]] <= x
      let lo = 0;
      let hi = m - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (coords[idx[mid]] <= x) lo = mid;
        else hi = mid - 1;
      }
      k = lo;
    }
    const a = idx[k];
    const xa = coords[a];
    if (m === 1 || x <= xa || k === m - 1) {
      i0[p] = a;
      i1[p] = a;
      t[p] = 0;
      continue;
    }
    const b = idx[k + 1];
    const xb = coords[b];
    const w = xb > xa ? Math.min(1, (x - xa) / (xb - xa)) : 0;
    i0[p] = w === 1 ? b : a; // exact hits are canonical: (b, b, 0)
    i1[p] = b;
    t[p] = w === 1 ? 0 : w;
  }
  return { i0, i1, t };
}

/**
 * Bilinear interpolation of `field` (row-major, `nx` columns) at the tensor product of row
 * brackets `rb` and column brackets `cb`: out[p * cb.length + q]. Non-finite corners are never
 * blended: a sample where they hold most of the weight is non-finite, any other blends its
 * finite corners only, so NaN never leaks into the finite range and divergent regions keep
 * smooth edges.
 */
export function bilinear(field: ArrayLike<number>, nx: number, rb: Brackets, cb: Brackets, out?: Float32Array): Float32Array {
  const nr = rb.t.length;
  const nc = cb.t.length;
  const res = out && out.length === nr * nc ? out : new Float32Array(nr * nc);
  for (let p = 0; p < nr; p++) {
    const r0 = rb.i0[p] * nx;
    const r1 = rb.i1[p] * nx;
    const ty = rb.t[p];
    const base = p * nc;
    for (let q = 0; q < nc; q++) {
      const c0 = cb.i0[q];
      const c1 = cb.i1[q];
      const tx = cb.t[q];
      const v00 = field[r0 + c0];
      const v01 = field[r0 + c1];
      const v10 = field[r1 + c0];
      const v11 = field[r1 + c1];
      if (Number.isFinite(v00) && Number.isFinite(v01) && Number.isFinite(v10) && Number.isFinite(v11)) {
        const top = v00 + (v01 - v00) * tx;
        const bot = v10 + (v11 - v10) * tx;
        res[base + q] = top + (bot - top) * ty;
      } else {
        // the finite corners' share of the weight (the bilinear interpolant of "is finite")
        // decides: below one half the sample is non-finite (the heaviest non-finite corner's
        // value), so divergent regions get smooth edges; above, it blends the finite corners
        // only, with their weights renormalised, so NaN never leaks into the finite range
        const w00 = (1 - tx) * (1 - ty);
        const w01 = tx * (1 - ty);
        const w10 = (1 - tx) * ty;
        const w11 = tx * ty;
        let sw = 0;
        let sv = 0;
        let bad = NaN;
        let badW = -1;
        if (Number.isFinite(v00)) (sw += w00), (sv += w00 * v00);
        else if (w00 > badW) (bad = v00), (badW = w00);
        if (Number.isFinite(v01)) (sw += w01), (sv += w01 * v01);
        else if (w01 > badW) (bad = v01), (badW = w01);
        if (Number.isFinite(v10)) (sw += w10), (sv += w10 * v10);
        else if (w10 > badW) (bad = v10), (badW = w10);
        if (Number.isFinite(v11)) (sw += w11), (sv += w11 * v11);
        else if (w11 > badW) (bad = v11), (badW = w11);
        res[base + q] = sw >= 0.5 ? sv / sw : bad;
      }
    }
  }
  return res;
}

/**
 * The display field of a partially known grid: the complete subgrid rows × cols upsampled to
 * every grid point, then every known point (known[k] != 0) set to its exact value.
 */
export function upsample(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  values: ArrayLike<number>,
  known: ArrayLike<number>,
  rows: ArrayLike<number>,
  cols: ArrayLike<number>,
): Float32Array {
  const nx = xs.length;
  const ny = ys.length;
  const rb = brackets(ys, rows, ys);
  const cb = brackets(xs, cols, xs);
  const out = bilinear(values, nx, rb, cb);
  for (let k = 0; k < nx * ny; k++) if (known[k]) out[k] = values[k];
  return out;
}

/**
 * A complete rectilinear subgrid among the known points, for kernels that stream tiles without
 * announcing levels: starting from every row and column holding a known point, the row or column
 * with the largest share of missing points is dropped until rows × cols are all known. Null
 * when fewer than 2 × 2 points remain.
 */
export function inferSubgrid(known: ArrayLike<number>, nx: number, ny: number): { rows: number[]; cols: number[] } | null {
  const rowOn = new Uint8Array(ny);
  const colOn = new Uint8Array(nx);
  for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) if (known[i * nx + j]) (rowOn[i] = 1), (colOn[j] = 1);
  let nr = rowOn.reduce((a, b) => a + b, 0);
  let nc = colOn.reduce((a, b) => a + b, 0);
  const rowMiss = new Int32Array(ny);
  const colMiss = new Int32Array(nx);
  let missing = 0;
  for (let i = 0; i < ny; i++) {
    if (!rowOn[i]) continue;
    for (let j = 0; j < nx; j++) {
      if (colOn[j] && !known[i * nx + j]) (rowMiss[i]++, colMiss[j]++, missing++);
    }
  }
  while (missing > 0 && nr >= 2 && nc >= 2) {
    let bestRow = -1;
    let bestCol = -1;
    let best = -1;
    for (let i = 0; i < ny; i++) if (rowOn[i] && rowMiss[i] / nc > best) (best = rowMiss[i] / nc), (bestRow = i);
    for (let j = 0; j < nx; j++) if (colOn[j] && colMiss[j] / nr > best) (best = colMiss[j] / nr), (bestCol = j), (bestRow = -1);
    if (bestRow >= 0) {
      rowOn[bestRow] = 0;
      nr--;
      for (let j = 0; j < nx; j++) if (colOn[j] && !known[bestRow * nx + j]) (colMiss[j]--, missing--);
    } else {
      colOn[bestCol] = 0;
      nc--;
      for (let i = 0; i < ny; i++) if (rowOn[i] && !known[i * nx + bestCol]) (rowMiss[i]--, missing--);
    }
  }
  if (missing > 0 || nr < 2 || nc < 2) return null;
  const rows: number[] = [];
  const cols: number[] = [];
  for (let i = 0; i < ny; i++) if (rowOn[i]) rows.push(i);
  for (let j = 0; j < nx; j++) if (colOn[j]) cols.push(j);
  return { rows, cols };
}

/** An announced level: the rectilinear subgrid rows × cols and how many of its points are missing. */
export interface Level {
  index: number;
  rows: Int32Array;
  cols: Int32Array;
  rowIn: Uint8Array;
  colIn: Uint8Array;
  missing: number;
}

/** The values a tile brings, as decoded by protocol.decodeTile. */
export interface TileData {
  count: number;
  metrics: string[];
  rows: ArrayLike<number>;
  cols: ArrayLike<number>;
  values: ArrayLike<number>;
  exact?: boolean;
  level?: number;
}

const UNKNOWN = 0;
const APPROX = 1;
const EXACT = 2;

function sortedUnique(list: ArrayLike<number>, n: number): Int32Array {
  const s = Array.from(list, (v) => Math.trunc(v)).filter((v) => v >= 0 && v < n);
  s.sort((a, b) => a - b);
  return Int32Array.from(s.filter((v, k) => k === 0 || v !== s[k - 1]));
}

/** One generation's grid: the values known so far, its levels, and the display field. */
export class Grid {
  readonly nx: number;
  readonly ny: number;
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  readonly metrics: string[];
  /** 0 unknown, 1 approximate (tile with exact=false), 2 exact. */
  readonly known: Uint8Array;
  knownCount = 0;
  readonly levels: Level[] = [];
  /** The kernel said "done" (or the grid was loaded from the `surface` trait). */
  done = false;
  /** Highest level index seen in tiles (the level being computed); -1 before any tile. */
  tileLevel = -1;
  /** Bumped on every change, for caches keyed on it. */
  version = 0;
  /** The training trajectory drawn over this plane (a "path" message of its generation). */
  path: TrajectoryPath | null = null;
  private readonly vals = new Map<string, Float32Array>();
  private cache = new Map<string, { version: number; field: Float32Array | null }>();

  constructor(
    readonly gen: number,
    xs: ArrayLike<number>,
    ys: ArrayLike<number>,
    metrics: readonly string[] = [],
    readonly xLabel = "",
    readonly yLabel = "",
  ) {
    this.xs = Float64Array.from(xs, Number);
    this.ys = Float64Array.from(ys, Number);
    this.nx = this.xs.length;
    this.ny = this.ys.length;
    this.known = new Uint8Array(this.nx * this.ny);
    this.metrics = [];
    for (const m of metrics) this.ensureMetric(m);
  }

  get size(): number {
    return this.nx * this.ny;
  }

  private ensureMetric(name: string): Float32Array {
    let arr = this.vals.get(name);
    if (!arr) {
      arr = new Float32Array(this.nx * this.ny).fill(NaN);
      this.vals.set(name, arr);
      this.metrics.push(name);
    }
    return arr;
  }

  /** Raw values of `metric` (NaN where unknown); undefined for a metric never seen. */
  raw(metric: string): Float32Array | undefined {
    return this.vals.get(metric);
  }

  /** Records level `index` = rows × cols (indices out of range are ignored). */
  announceLevel(index: number, rows: ArrayLike<number>, cols: ArrayLike<number>): void {
    const r = sortedUnique(rows, this.ny);
    const c = sortedUnique(cols, this.nx);
    const rowIn = new Uint8Array(this.ny);
    const colIn = new Uint8Array(this.nx);
    r.forEach((i) => (rowIn[i] = 1));
    c.forEach((j) => (colIn[j] = 1));
    let missing = 0;
    for (const i of r) for (const j of c) if (!this.known[i * this.nx + j]) missing++;
    this.levels[index] = { index, rows: r, cols: c, rowIn, colIn, missing };
    this.version++;
  }

  /** Stores a tile's values; returns how many points became known. */
  addTile(tile: TileData): number {
    const n = tile.count;
    const exact = tile.exact !== false;
    const flag = exact ? EXACT : APPROX;
    const targets = tile.metrics.map((m) => this.ensureMetric(m));
    let fresh = 0;
    for (let k = 0; k < n; k++) {
      const i = tile.rows[k];
      const j = tile.cols[k];
      if (!(i >= 0 && i < this.ny && j >= 0 && j < this.nx)) continue;
      const p = i * this.nx + j;
      const was = this.known[p];
      if (was === EXACT && !exact) continue; // an estimate never overrides an exact value
      for (let m = 0; m < targets.length; m++) targets[m][p] = tile.values[m * n + k];
      this.known[p] = Math.max(was, flag);
      if (was === UNKNOWN) {
        fresh++;
        for (const lv of this.levels) if (lv && lv.rowIn[i] && lv.colIn[j]) lv.missing--;
      }
    }
    this.knownCount += fresh;
    if (tile.level !== undefined && tile.level > this.tileLevel) this.tileLevel = tile.level;
    this.version++;
    return fresh;
  }

  /** Loads a complete surface (the `surface` trait) at once. */
  loadComplete(values: Map<string, Float32Array>): void {
    for (const [m, arr] of values) {
      if (arr.length !== this.size) continue;
      this.ensureMetric(m).set(arr);
    }
    this.known.fill(EXACT);
    this.knownCount = this.size;
    for (const lv of this.levels) if (lv) lv.missing = 0;
    this.done = true;
    this.version++;
  }

  markDone(): void {
    this.done = true;
    this.version++;
  }

  /** Number of levels announced (0 if none). */
  get levelCount(): number {
    return this.levels.length;
  }

  /** Index of the finest complete level; -1 if none (a done grid counts as its last level). */
  finestCompleteLevel(): number {
    if (this.done || this.knownCount === this.size) return Math.max(this.levels.length - 1, 0);
    for (let L = this.levels.length - 1; L >= 0; L--) {
      const lv = this.levels[L];
      if (lv && lv.missing <= 0 && lv.rows.length > 0 && lv.cols.length > 0) return L;
    }
    return -1;
  }

  /** All points known, or the kernel said done. */
  get complete(): boolean {
    return this.done || (this.size > 0 && this.knownCount === this.size);
  }

  /** Fraction of grid points known, 0..1. */
  get fraction(): number {
    return this.size ? this.knownCount / this.size : 0;
  }

  /** The subgrid the display upsamples from, or null when there is nothing to show yet. */
  private baseSubgrid(): { rows: ArrayLike<number>; cols: ArrayLike<number> } | null {
    if (this.knownCount === 0) return null;
    if (this.knownCount === this.size) return { rows: [], cols: [] };
    const L = this.finestCompleteLevel();
    const lv = L >= 0 ? this.levels[L] : undefined;
    if (lv && lv.missing <= 0 && lv.rows.length > 0) return lv;
    if (this.levels.length === 0 || this.done) return inferSubgrid(this.known, this.nx, this.ny);
    return null;
  }

  /** Whether anything can be drawn yet. */
  get drawable(): boolean {
    return this.nx >= 1 && this.ny >= 1 && this.baseSubgrid() !== null;
  }

  /**
   * The field drawn for `metric`: exact where known, upsampled from the finest complete level
   * elsewhere; null before the first complete level (or for an unknown metric). Cached.
   */
  display(metric: string): Float32Array | null {
    const hit = this.cache.get(metric);
    if (hit && hit.version === this.version) return hit.field;
    const vals = this.vals.get(metric);
    let field: Float32Array | null = null;
    const base = vals ? this.baseSubgrid() : null;
    if (vals && base) {
      field =
        this.knownCount === this.size
          ? vals
          : upsample(this.xs, this.ys, vals, this.known, base.rows, base.cols);
    }
    this.cache.set(metric, { version: this.version, field });
    return field;
  }

  /** Index of the grid coordinate nearest to v along a sorted axis. */
  static nearest(coords: ArrayLike<number>, v: number): number {
    const n = coords.length;
    if (n === 0) return -1;
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (coords[mid] <= v) lo = mid;
      else hi = mid;
    }
    return Math.abs(coords[hi] - v) < Math.abs(coords[lo] - v) ? hi : lo;
  }
}
