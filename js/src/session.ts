// The state of one view, fed by the model's traits and custom messages (no DOM here).
//
// It keeps the grid of the current generation, the last picture of an older generation (shown,
// dimmed, until the new generation has something to draw), the latest cross-section, the error
// and the progress, and tells the view what to redraw.

import { Grid } from "./grid";
import {
  ProtocolError,
  decodeKernelMsg,
  decodeStatus,
  decodeSurface,
  readTrait,
  type Cross,
  type FrontendMsg,
  type KernelMsg,
  type ModelLike,
  type Status,
  type Traits,
} from "./protocol";

/** What changed: the contour figure, the curves, or only the status line / error box. */
export type Dirty = "figure" | "curves" | "status";

/** At most this many messages of a future generation are held until its trait sync arrives. */
const MAX_PENDING = 20000;

const STYLE_TRAITS: ReadonlyArray<keyof Traits> = ["metric", "log_scale", "colormap", "n_levels", "x_label", "y_label"];

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
  /** Generation whose complete picture changed (its "done", a restyle, a cross-section or
   * trajectory drawn over it) and whose snapshot is still to be sent. */
  snapshotDue: number | null = null;
  /** Messages of an older generation dropped so far. */
  dropped = 0;
  /** Messages of a generation newer than the `generation` trait, held until it arrives. */
  private pending: KernelMsg[] = [];
  private readonly handlers: Array<{ off: () => void }> = [];

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
    const onCustom = (msg: unknown, buffers: unknown) => this.onMessage(msg, buffers);
    this.model.on("msg:custom", onCustom);
    this.handlers.push({ off: () => this.model.off("msg:custom", onCustom) });
    this.onChange("generation", () => this.onGeneration());
    this.onChange("grid_x", () => this.onGeometry());
    this.onChange("grid_y", () => this.onGeometry());
    this.onChange("surface", () => this.loadSurface());
    this.onChange("surface_info", () => this.loadSurface());
    this.onChange("status", () => this.onStatus());
    for (const t of STYLE_TRAITS) this.onChange(t, () => this.onStyle());
    this.send({ type: "ready" });
  }

  /** Stops listening. */
  stop(): void {
    for (const h of this.handlers) h.off();
    this.handlers.length = 0;
  }

  private onChange(trait: keyof Traits, cb: () => void): void {
    const event = `change:${trait}` as const;
    this.model.on(event, cb);
    this.handlers.push({ off: () => this.model.off(event, cb) });
  }

  /** A trait of the model (validated; see protocol.readTrait). */
  trait<K extends keyof Traits>(key: K): Traits[K] {
    return readTrait(this.model, key);
  }

  send(msg: FrontendMsg, buffers?: ArrayBuffer[]): void {
    this.model.send(msg, undefined, buffers);
  }

  private emit(...what: Dirty[]): void {
    this.changed(new Set(what));
  }

  // ---- traits ------------------------------------------------------------------------------

  private resetGrid(): void {
    this.generation = this.trait("generation");
    this.grid = new Grid(
      this.generation,
      this.trait("grid_x"),
      this.trait("grid_y"),
      this.trait("metric_names"),
      this.trait("x_label"),
      this.trait("y_label"),
    );
  }

  private onGeneration(): void {
    const gen = this.trait("generation");
    if (gen === this.generation && this.grid) return;
    const shown = this.shownGrid();
    if (shown) this.previous = shown;
    this.resetGrid();
    this.cross = null;
    this.picked = null;
    this.errorMessage = null;
    this.snapshotDue = null;
    // replay what arrived early for this generation; drop what is now stale
    const early = this.pending.filter((m) => m.gen === this.generation);
    this.dropped += this.pending.filter((m) => m.gen < this.generation).length;
    this.pending = this.pending.filter((m) => m.gen > this.generation);
    for (const m of early) this.dispatch(m);
    this.loadSurface();
    this.emit("figure", "curves", "status");
  }

  /** Grid coordinates changed without a generation bump: start this generation's grid afresh. */
  private onGeometry(): void {
    const g = this.grid;
    if (!g) return;
    const xs = this.trait("grid_x");
    const ys = this.trait("grid_y");
    const same = xs.length === g.nx && ys.length === g.ny && xs.every((v, k) => v === g.xs[k]) && ys.every((v, k) => v === g.ys[k]);
    if (same) return;
    if (this.trait("generation") !== this.generation) return; // the generation handler will do it
    if (g.drawable) this.previous = g;
    this.resetGrid();
    this.emit("figure", "status");
  }

  /** Draws the `surface` trait: as the current generation's complete grid when its gen matches,
   * else as the fallback picture while the current generation has nothing to show. */
  loadSurface(): void {
    let decoded;
    try {
      decoded = decodeSurface(this.trait("surface"), this.trait("surface_info"));
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
        fresh.path = g.path;
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

  /** The `status` trait, if the worker reported one. */
  status(): Status | null {
    return decodeStatus(this.trait("status"));
  }

  // ---- messages ----------------------------------------------------------------------------

  /**
   * A custom message from the kernel: decoded (a malformed one is dropped with a warning), then
   * applied if of the current generation, dropped if older, held if newer.
   */
  onMessage(content: unknown, buffers: unknown): void {
    let msg: KernelMsg;
    try {
      msg = decodeKernelMsg(content, Array.isArray(buffers) ? buffers : []);
    } catch (e) {
      this.warn(e instanceof ProtocolError ? e.message : `cannot decode a message: ${String(e)}`);
      return;
    }
    if (msg.gen < this.generation) {
      this.dropped++; // stale
    } else if (msg.gen > this.generation) {
      // the generation trait has not arrived yet; keep it for then
      if (this.pending.length < MAX_PENDING) this.pending.push(msg);
    } else {
      this.dispatch(msg);
    }
  }

  private dispatch(msg: KernelMsg): void {
    const g = this.grid;
    if (!g) return;
    switch (msg.type) {
      case "level":
        g.announceLevel(msg.level, msg.rows, msg.cols);
        this.emit("figure", "status");
        break;
      case "tile":
        g.addTile(msg);
        this.emit("figure", "status");
        break;
      case "done":
        g.markDone();
        this.snapshotDue = g.gen;
        this.emit("figure", "status");
        break;
      case "error":
        this.errorMessage = msg.message || "error";
        this.emit("status");
        break;
      case "cross":
        this.cross = msg;
        this.picked = null;
        if (g.complete) this.snapshotDue = g.gen; // the picture now shows the cross-sections
        this.emit("curves", "figure");
        break;
      case "path":
        g.path = msg;
        if (g.complete) this.snapshotDue = g.gen;
        this.emit("figure");
        break;
      default: {
        const never: never = msg;
        return never;
      }
    }
  }

  /**
   * A pick at data point (x, y): shown as pending until its cross-sections arrive, and sent to
   * the kernel unless `send` is false (a comparison sends one pick for all its panels).
   */
  pick(x: number, y: number, send = true): void {
    this.picked = { x, y, gen: this.generation };
    if (send) this.send({ type: "pick", x, y });
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

  /** The metric drawn: `metric` (default: the `metric` trait) when the grid has it, else its first. */
  metricOf(g: Grid, metric?: string): string {
    const m = metric ?? this.trait("metric");
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
    const stSame = !!st && st.gen === this.generation;
    if (this.errorMessage || (stSame && st!.state === "error")) return "error";
    if (!g || g.size === 0) return stSame && st!.state === "computing" ? "computing\u2026" : "waiting for the kernel\u2026";
    if (g.complete) return `done \u00b7 ${g.nx}\u00d7${g.ny} points`;
    const levels = Math.max(g.levelCount, stSame ? st!.levels : 0);
    let level = g.tileLevel;
    if (level < 0 && stSame) level = st!.level;
    let pct = g.fraction;
    if (g.knownCount === 0 && stSame) pct = st!.fraction;
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
    if (st && st.state === "error" && st.gen === this.generation) return st.message || "error";
    return null;
  }
}
