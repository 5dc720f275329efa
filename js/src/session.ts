// The state of one view, fed by the model's traits and custom messages (no DOM here).
//
// It keeps the grid of the current generation, the last picture of an older generation (shown,
// dimmed, until the new generation has something to draw), the latest cross-section, the error
// and the progress, and tells the view what to redraw.

import { Grid } from "./grid";
import {
  ProtocolError,
  decodeCross,
  decodeLevel,
  decodeSurface,
  decodeTile,
  type BufferLike,
  type Cross,
  type FrontendMsg,
  type Status,
} from "./protocol";

/** The part of anywidget's AnyModel that a session uses. */
export interface ModelLike {
  get(key: string): any;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string | null, callback?: ((...args: any[]) => void) | null): void;
  send(content: any, callbacks?: any, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

/** What changed: the contour figure, the curves, or only the status line / error box. */
export type Dirty = "figure" | "curves" | "status";

/** At most this many messages of a future generation are held until its trait sync arrives. */
const MAX_PENDING = 20000;

const STYLE_TRAITS = ["metric", "log_scale", "colormap", "n_levels", "x_label", "y_label"];

export class Session {
  /** The grid of the current generation (null before the kernel set one). */
  grid: Grid | null = null;
  /** The last grid that was drawn, of an older generation or loaded from `surface`. */
  previous: Grid | null = null;
  generation = 0;
  cross: Cross | null = null;
  /** The point last clicked, until its cross-section arrives. */
  picked: { x: number; y: number; gen: number } | null = null;
  /** Error of the current generation (message or status), shown over the plot. */
  errorMessage: string | null = null;
  /** Generation whose "done" was received and whose snapshot is still to be sent. */
  snapshotDue: number | null = null;
  /** Messages of a generation newer than the `generation` trait, held until it arrives. */
  private pending: Array<{ gen: number; msg: Record<string, unknown>; buffers: BufferLike[] }> = [];
  private readonly handlers: Array<[string, (...args: any[]) => void]> = [];

  constructor(
    readonly model: ModelLike,
    private readonly changed: (what: Set<Dirty>) => void = () => {},
    private readonly warn: (msg: string) => void = (m) => console.warn(`ls-widget: ${m}`),
  ) {}

  // ---- wiring ------------------------------------------------------------------------------

  /** Reads the traits, draws the saved surface if any, listens, and says "ready". */
  start(): void {
    this.resetGrid();
    this.loadSurface();
    this.listen("msg:custom", (msg: unknown, buffers: unknown) => this.onMessage(msg, buffers));
    this.listen("change:generation", () => this.onGeneration());
    this.listen("change:grid_x", () => this.onGeometry());
    this.listen("change:grid_y", () => this.onGeometry());
    this.listen("change:surface", () => this.loadSurface());
    this.listen("change:surface_info", () => this.loadSurface());
    this.listen("change:status", () => this.onStatus());
    for (const t of STYLE_TRAITS) this.listen(`change:${t}`, () => this.onStyle());
    this.send({ type: "ready" });
  }

  /** Stops listening. */
  stop(): void {
    for (const [ev, cb] of this.handlers) this.model.off(ev, cb);
    this.handlers.length = 0;
  }

  private listen(event: string, cb: (...args: any[]) => void): void {
    this.model.on(event, cb);
    this.handlers.push([event, cb]);
  }

  send(msg: FrontendMsg, buffers?: ArrayBuffer[]): void {
    this.model.send(msg, undefined, buffers);
  }

  private emit(...what: Dirty[]): void {
    this.changed(new Set(what));
  }

  // ---- traits ------------------------------------------------------------------------------

  private traitNumbers(key: string): number[] {
    const v = this.model.get(key);
    return Array.isArray(v) ? v.map(Number) : [];
  }

  private resetGrid(): void {
    this.generation = Number(this.model.get("generation") ?? 0);
    const metrics = this.model.get("metric_names");
    this.grid = new Grid(
      this.generation,
      this.traitNumbers("grid_x"),
      this.traitNumbers("grid_y"),
      Array.isArray(metrics) ? metrics.map(String) : [],
      String(this.model.get("x_label") ?? ""),
      String(this.model.get("y_label") ?? ""),
    );
  }

  private onGeneration(): void {
    const gen = Number(this.model.get("generation") ?? 0);
    if (gen === this.generation && this.grid) return;
    const shown = this.shownGrid();
    if (shown) this.previous = shown;
    this.resetGrid();
    this.cross = null;
    this.picked = null;
    this.errorMessage = null;
    this.snapshotDue = null;
    // replay what arrived early for this generation; drop what is now stale
    const early = this.pending.filter((p) => p.gen === this.generation);
    this.pending = this.pending.filter((p) => p.gen > this.generation);
    for (const p of early) this.dispatch(p.msg, p.buffers);
    this.loadSurface();
    this.emit("figure", "curves", "status");
  }

  /** Grid coordinates changed without a generation bump: start this generation's grid afresh. */
  private onGeometry(): void {
    const g = this.grid;
    if (!g) return;
    const xs = this.traitNumbers("grid_x");
    const ys = this.traitNumbers("grid_y");
    const same = xs.length === g.nx && ys.length === g.ny && xs.every((v, k) => v === g.xs[k]) && ys.every((v, k) => v === g.ys[k]);
    if (same) return;
    if (Number(this.model.get("generation") ?? 0) !== this.generation) return; // the generation handler will do it
    if (g.drawable) this.previous = g;
    this.resetGrid();
    this.emit("figure", "status");
  }

  /** Draws the `surface` trait: as the current generation's complete grid when its gen matches,
   * else as the fallback picture while the current generation has nothing to show. */
  loadSurface(): void {
    let decoded;
    try {
      decoded = decodeSurface(this.model.get("surface"), this.model.get("surface_info"));
    } catch (e) {
      this.warn(`cannot decode the saved surface: ${(e as Error).message}`);
      return;
    }
    if (!decoded) return;
    const { info, values } = decoded;
    const g = this.grid;
    if (g && info.gen === this.generation) {
      if (g.complete) return;
      if (g.nx === info.nx && g.ny === info.ny) {
        g.loadComplete(values);
      } else {
        const fresh = new Grid(info.gen, info.x, info.y, info.metrics, info.x_label || g.xLabel, info.y_label || g.yLabel);
        fresh.loadComplete(values);
        this.grid = fresh;
      }
      this.emit("figure", "status");
      return;
    }
    if (info.gen > this.generation) return; // the generation trait will catch up
    if (this.previous && this.previous.gen >= info.gen) return;
    const old = new Grid(info.gen, info.x, info.y, info.metrics, info.x_label, info.y_label);
    old.loadComplete(values);
    this.previous = old;
    this.emit("figure", "status");
  }

  /** A view-only trait changed: redraw, and re-send the snapshot of a complete surface so the
   * kernel's copy stays what is on screen. */
  private onStyle(): void {
    if (this.grid && this.grid.complete && this.grid.drawable) this.snapshotDue = this.grid.gen;
    this.emit("figure", "curves");
  }

  private onStatus(): void {
    const st = this.status();
    if (st && st.state === "error" && st.gen === this.generation && st.message) this.errorMessage = st.message;
    this.emit("status");
  }

  /** The `status` trait, if any. */
  status(): Partial<Status> | null {
    const st = this.model.get("status");
    return st && typeof st === "object" ? (st as Partial<Status>) : null;
  }

  // ---- messages ----------------------------------------------------------------------------

  onMessage(msg: unknown, buffers: unknown): void {
    if (!msg || typeof msg !== "object") return;
    const m = msg as Record<string, unknown>;
    const bufs = (Array.isArray(buffers) ? buffers : []) as BufferLike[];
    const gen = Number(m.gen);
    if (!Number.isFinite(gen)) return;
    if (gen < this.generation) return; // stale: dropped
    if (gen > this.generation) {
      // the generation trait has not arrived yet; keep it for then
      if (this.pending.length < MAX_PENDING) this.pending.push({ gen, msg: m, buffers: bufs });
      return;
    }
    this.dispatch(m, bufs);
  }

  private dispatch(m: Record<string, unknown>, bufs: BufferLike[]): void {
    const g = this.grid;
    if (!g) return;
    try {
      switch (m.type) {
        case "level": {
          const lv = decodeLevel(m);
          g.announceLevel(lv.level, lv.rows, lv.cols);
          this.emit("figure", "status");
          break;
        }
        case "tile": {
          const tile = decodeTile(m, bufs);
          g.addTile(tile);
          this.emit("figure", "status");
          break;
        }
        case "done": {
          g.markDone();
          this.snapshotDue = g.gen;
          this.emit("figure", "status");
          break;
        }
        case "error": {
          this.errorMessage = String(m.message ?? "error");
          this.emit("status");
          break;
        }
        case "cross": {
          this.cross = decodeCross(m, bufs);
          this.picked = null;
          this.emit("curves", "figure");
          break;
        }
        default:
          break;
      }
    } catch (e) {
      if (e instanceof ProtocolError) this.warn(e.message);
      else throw e;
    }
  }

  /** Sends a pick at data point (x, y). */
  pick(x: number, y: number): void {
    this.picked = { x, y, gen: this.generation };
    this.send({ type: "pick", x, y });
    this.emit("figure", "curves");
  }

  // ---- what to draw ------------------------------------------------------------------------

  /** The grid to draw: the current one once it has a complete level, else the previous picture. */
  shownGrid(): Grid | null {
    if (this.grid && this.grid.drawable) return this.grid;
    return this.previous ?? this.grid;
  }

  /** Whether the picture shown belongs to an older generation. */
  get showingStale(): boolean {
    const s = this.shownGrid();
    return !!s && s !== this.grid;
  }

  /** The metric drawn: the `metric` trait when the grid has it, else its first metric. */
  metricOf(g: Grid): string {
    const m = String(this.model.get("metric") ?? "");
    if (g.raw(m)) return m;
    return g.metrics[0] ?? m;
  }

  /** Data attributes of the contour canvas for tests: gen drawn, complete, finest complete level. */
  dataAttributes(): { gen: string; complete: string; level: string } {
    const s = this.shownGrid();
    const current = !!s && s === this.grid && s.gen === this.generation;
    return {
      gen: s && s.drawable ? String(s.gen) : "",
      complete: String(current && !!s && s.complete),
      level: s && s.drawable ? String(s.finestCompleteLevel()) : "-1",
    };
  }

  /** One line of progress, e.g. "level 2/4 · 63%". */
  progressText(): string {
    const g = this.grid;
    const st = this.status();
    const stSame = !!st && Number(st.gen) === this.generation;
    if (this.errorMessage || (stSame && st!.state === "error")) return "error";
    if (!g || g.size === 0) return stSame && st!.state === "computing" ? "computing\u2026" : "waiting for the kernel\u2026";
    if (g.complete) return `done \u00b7 ${g.nx}\u00d7${g.ny} points`;
    const levels = Math.max(g.levelCount, stSame ? Number(st!.levels ?? 0) : 0);
    let level = g.tileLevel;
    if (level < 0 && stSame && Number.isFinite(Number(st!.level))) level = Number(st!.level);
    let pct = g.fraction;
    if (g.knownCount === 0 && stSame && Number.isFinite(Number(st!.fraction))) pct = Number(st!.fraction);
    if (g.knownCount === 0 && !(stSame && st!.state === "computing")) return "waiting for the kernel\u2026";
    const parts: string[] = [];
    if (levels > 0 && level >= 0) parts.push(`level ${Math.min(level + 1, levels)}/${levels}`);
    parts.push(`${Math.floor(pct * 100)}%`);
    return parts.join(" \u00b7 ");
  }

  /** The error to show over the plot, if any. */
  errorText(): string | null {
    if (this.errorMessage) return this.errorMessage;
    const st = this.status();
    if (st && st.state === "error" && Number(st.gen) === this.generation) return String(st.message || "error");
    return null;
  }
}
