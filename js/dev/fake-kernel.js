// A fake anywidget model and kernel for the dev harness: replays synthetic tiles of an analytic
// loss surface (a tilted bowl with a saddle and a divergent corner) coarse to fine, answers
// picks with cross-sections, and records the snapshots the frontend sends.
//
// URL parameters of harness.html:
//   n=65          grid points per axis (levels are nested strides 8, 4, 2, 1 of it)
//   stop=K        stop after K tiles (freeze a partial picture)
//   delay=40      ms between tile batches
//   pick=x,y      click this data point once the surface is done
//   hover=x,y     then move the pointer to this data point (readout)
//   error=1       end with an error message instead of "done"
//   static=1      no kernel: only the saved `surface` trait is present
//   regen=1       after done, bump the generation (a rotated plane) and stream again
//   cmap=viridis  log=1  levels=12  metric=loss

export const params = new URLSearchParams(location.search);
const num = (k, d) => (params.has(k) ? Number(params.get(k)) : d);

/** The synthetic landscape: loss ≥ 0 with a basin at the origin, NaN/Inf in one corner. */
export function lossAt(a, b, rot = 0) {
  const c = Math.cos(rot);
  const s = Math.sin(rot);
  const x = c * a - s * b;
  const y = s * a + c * b;
  const r2 = (x - 0.95) ** 2 + 1.6 * (y - 0.9) ** 2;
  if (r2 < 0.16) return r2 < 0.05 ? Infinity : NaN; // divergent region
  const bowl = 1.6 * x * x + 0.9 * y * y - 0.7 * x * y;
  const saddle = -0.75 * Math.exp(-((x + 0.6) ** 2 + (y - 0.55) ** 2) / 0.05); // a second, shallower basin
  const ripple = 0.12 * Math.sin(4 * x) * Math.cos(3 * y);
  return 0.08 + bowl + saddle + ripple + 0.12 * x * x * x;
}

export function accuracyAt(a, b, rot = 0) {
  const l = lossAt(a, b, rot);
  if (!Number.isFinite(l)) return NaN;
  return Math.max(0.1, Math.min(0.99, 0.99 - 0.32 * Math.log1p(2.5 * l)));
}

export class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.handlers = new Map();
    this.sent = [];
    this.kernel = null;
  }
  get(key) {
    return this.state[key];
  }
  set(key, value) {
    this.state[key] = value;
  }
  /** Sets several traits, then fires their change events (one sync, as the kernel does). */
  sync(values) {
    Object.assign(this.state, values);
    for (const k of Object.keys(values)) this.trigger(`change:${k}`, values[k]);
  }
  on(event, cb) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(cb);
  }
  off(event, cb) {
    if (!event) this.handlers.clear();
    else if (!cb) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(cb);
  }
  trigger(event, ...args) {
    for (const cb of [...(this.handlers.get(event) ?? [])]) cb(...args);
  }
  save_changes() {}
  send(content, _callbacks, buffers) {
    this.sent.push({ content, buffers });
    this.kernel?.receive(content, buffers ?? []);
  }
  /** A custom message from the kernel, buffers as the widget manager gives them (DataViews). */
  custom(msg, buffers = []) {
    this.trigger("msg:custom", msg, buffers.map((b) => new DataView(b)));
  }
}

function f32(values) {
  const buf = new ArrayBuffer(values.length * 4);
  const dv = new DataView(buf);
  values.forEach((v, k) => dv.setFloat32(4 * k, v, true));
  return buf;
}

function i32(values) {
  const buf = new ArrayBuffer(values.length * 4);
  const dv = new DataView(buf);
  values.forEach((v, k) => dv.setInt32(4 * k, v, true));
  return buf;
}

const linspace = (lo, hi, n) => Array.from({ length: n }, (_, k) => lo + ((hi - lo) * k) / (n - 1));

export class FakeKernel {
  constructor(model) {
    this.model = model;
    model.kernel = this;
    this.n = num("n", 65);
    this.delay = num("delay", 40);
    this.stop = num("stop", Infinity);
    this.tilesSent = 0;
    this.rot = 0;
    this.timer = null;
    this.snapshots = [];
    this.log = [];
  }

  static initialState() {
    const n = num("n", 65);
    const xs = linspace(-1, 1, n);
    return {
      generation: 1,
      grid_x: xs,
      grid_y: xs,
      x_label: "random #0, filter-norm",
      y_label: "random #1, filter-norm",
      metric_names: ["loss", "accuracy"],
      metric: params.get("metric") ?? "loss",
      log_scale: params.get("log") === "1",
      colormap: params.get("cmap") ?? "viridis",
      n_levels: num("levels", 12),
      status: { state: "idle", gen: 1, level: 0, levels: 4, fraction: 0, message: "" },
      surface: new DataView(new ArrayBuffer(0)),
      surface_info: {},
    };
  }

  /** Fills the `surface` trait as the kernel keeps it after a complete computation. */
  surfaceTraits(gen) {
    const xs = this.model.get("grid_x");
    const ys = this.model.get("grid_y");
    const nx = xs.length;
    const ny = ys.length;
    const vals = [];
    for (const f of [lossAt, accuracyAt]) for (let i = 0; i < ny; i++) for (let j = 0; j < nx; j++) vals.push(f(xs[j], ys[i], this.rot));
    return {
      surface: new DataView(f32(vals)),
      surface_info: {
        gen, nx, ny, x: xs, y: ys, metrics: ["loss", "accuracy"],
        x_label: this.model.get("x_label"), y_label: this.model.get("y_label"),
      },
    };
  }

  receive(content, buffers) {
    this.log.push(content.type);
    if (content.type === "ready") this.stream();
    else if (content.type === "pick") this.cross(content.x, content.y);
    else if (content.type === "snapshot") {
      const b = buffers[0];
      this.snapshots.push({ gen: content.gen, bytes: b.byteLength });
      const dv = new DataView(b instanceof ArrayBuffer ? b : b.buffer);
      const size = `${dv.getUint32(16, false)}x${dv.getUint32(20, false)}`; // PNG IHDR
      document.getElementById("log").textContent = `snapshot gen=${content.gen} bytes=${b.byteLength} png=${size}`;
      window.__snapshots = this.snapshots;
      if (params.get("regen") === "1" && content.gen === 1) setTimeout(() => this.regenerate(), 300);
    }
  }

  levels() {
    const n = this.n;
    const strides = [8, 4, 2, 1].filter((s) => (n - 1) % s === 0);
    return strides.map((s) => Array.from({ length: (n - 1) / s + 1 }, (_, k) => k * s));
  }

  stream() {
    clearTimeout(this.timer);
    const gen = this.model.get("generation");
    const xs = this.model.get("grid_x");
    const ys = this.model.get("grid_y");
    const nx = xs.length;
    const levels = this.levels();
    levels.forEach((idx, L) => this.model.custom({ type: "level", gen, level: L, rows: idx, cols: idx }));
    // the points each level adds, in tiles of ≤ 256
    const tiles = [];
    const seen = new Uint8Array(nx * ys.length);
    levels.forEach((idx, L) => {
      let cur = [];
      for (const i of idx) {
        for (const j of idx) {
          if (seen[i * nx + j]) continue;
          seen[i * nx + j] = 1;
          cur.push([i, j]);
          if (cur.length === 256) {
            tiles.push({ L, pts: cur });
            cur = [];
          }
        }
      }
      if (cur.length) tiles.push({ L, pts: cur });
    });
    this.model.sync({ status: { state: "computing", gen, level: 0, levels: levels.length, fraction: 0, message: "" } });
    let k = 0;
    let known = 0;
    const next = () => {
      if (this.model.get("generation") !== gen) return;
      // a batch of tiles per tick, as the kernel batches to stay under ~50 messages/s
      for (let b = 0; b < 2 && k < tiles.length; b++, k++) {
        if (this.tilesSent >= this.stop) return;
        const { L, pts } = tiles[k];
        const rows = pts.map((p) => p[0]);
        const cols = pts.map((p) => p[1]);
        const loss = pts.map(([i, j]) => lossAt(xs[j], ys[i], this.rot));
        const acc = pts.map(([i, j]) => accuracyAt(xs[j], ys[i], this.rot));
        this.model.custom(
          { type: "tile", gen, level: L, count: pts.length, metrics: ["loss", "accuracy"], exact: true },
          [i32(rows), i32(cols), f32([...loss, ...acc])],
        );
        this.tilesSent++;
        known += pts.length;
        this.model.sync({ status: { state: "computing", gen, level: L, levels: levels.length, fraction: known / seen.length, message: "" } });
      }
      if (k < tiles.length) {
        this.timer = setTimeout(next, this.delay);
        return;
      }
      if (params.get("error") === "1") {
        const message = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x10 and 64x32)\n  in loss_fn(model(X), y)";
        this.model.custom({ type: "error", gen, message });
        this.model.sync({ status: { state: "error", gen, level: 3, levels: 4, fraction: 1, message } });
        return;
      }
      this.model.sync({ ...this.surfaceTraits(gen) });
      this.model.custom({ type: "done", gen });
      this.model.sync({ status: { state: "done", gen, level: levels.length - 1, levels: levels.length, fraction: 1, message: "" } });
      document.body.dataset.done = String(gen);
      const pick = params.get("pick");
      if (pick && gen === 1) {
        const [x, y] = pick.split(",").map(Number);
        setTimeout(() => {
          clickAt(x, y);
          const hover = params.get("hover");
          if (hover) {
            const [hx, hy] = hover.split(",").map(Number);
            setTimeout(() => moveTo(hx, hy), 100);
          }
        }, 50);
      }
    };
    this.timer = setTimeout(next, this.delay);
  }

  regenerate() {
    this.rot = 0.7;
    const gen = this.model.get("generation") + 1;
    this.tilesSent = 0;
    this.stop = num("stop2", Infinity);
    this.model.sync({
      grid_x: this.model.get("grid_x"),
      grid_y: this.model.get("grid_y"),
      x_label: "mix(random #0, random #2; 40°), filter-norm",
      y_label: "random #1, filter-norm",
      metric_names: ["loss", "accuracy"],
      generation: gen,
    });
    this.stream();
  }

  cross(x0, y0) {
    const gen = this.model.get("generation");
    const xs = this.model.get("grid_x");
    const ys = this.model.get("grid_y");
    const n1 = 101;
    const n2 = 101;
    const ax = linspace(xs[0], xs[xs.length - 1], n1);
    const by = linspace(ys[0], ys[ys.length - 1], n2);
    const along = (pts) => [...pts.map(([a, b]) => lossAt(a, b, this.rot)), ...pts.map(([a, b]) => accuracyAt(a, b, this.rot))];
    setTimeout(() => {
      this.model.custom(
        { type: "cross", gen, x0, y0, metrics: ["loss", "accuracy"], nx: n1, ny: n2 },
        [f32(ax), f32(along(ax.map((a) => [a, y0]))), f32(by), f32(along(by.map((b) => [x0, b])))],
      );
    }, 30);
  }
}

/** Client coordinates of data point (x, y) on the contour, from the layout the widget publishes. */
function clientPoint(x, y) {
  const overlay = document.querySelector(".lsw-overlay");
  const canvas = document.querySelector(".lsw-contour");
  const rect = overlay.getBoundingClientRect();
  const L = JSON.parse(canvas.dataset.plot || "null");
  if (!L) return null;
  const px = L.x + ((x - L.x0) / (L.x1 - L.x0)) * L.w;
  const py = L.y + L.h - ((y - L.y0) / (L.y1 - L.y0)) * L.h;
  return { overlay, opts: { clientX: rect.left + px, clientY: rect.top + py, bubbles: true } };
}

/** Moves the pointer over data point (x, y). */
export function moveTo(x, y) {
  const p = clientPoint(x, y);
  if (p) p.overlay.dispatchEvent(new PointerEvent("pointermove", p.opts));
}

/** Clicks the contour at data point (x, y), through the DOM like a user. */
export function clickAt(x, y) {
  const overlay = document.querySelector(".lsw-overlay");
  const canvas = document.querySelector(".lsw-contour");
  const rect = overlay.getBoundingClientRect();
  // the plot area is found from the layout the widget publishes for tests
  const L = JSON.parse(canvas.dataset.plot || "null");
  if (!L) return;
  const px = L.x + ((x - L.x0) / (L.x1 - L.x0)) * L.w;
  const py = L.y + L.h - ((y - L.y0) / (L.y1 - L.y0)) * L.h;
  const opts = { clientX: rect.left + px, clientY: rect.top + py, bubbles: true };
  overlay.dispatchEvent(new PointerEvent("pointermove", opts));
  overlay.dispatchEvent(new MouseEvent("click", opts));
}

/**
 * Replays a recording of the real kernel side, {state, messages: [{t, content, buffers (base64)}]}
 * (`replay=URL`): the initial traits, then, once the view says ready, every message at its
 * recorded time. With `static=1` only the saved surface is shown.
 */
export class ReplayKernel {
  constructor(model, recording) {
    this.model = model;
    this.rec = recording;
    model.kernel = this;
    this.snapshots = [];
  }

  static b64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
    return out.buffer;
  }

  initialState() {
    const { surface_b64, ...state } = this.rec.state;
    const withSurface = params.get("static") === "1";
    return {
      ...state,
      status: withSurface ? state.status : { ...state.status, state: "computing", fraction: 0 },
      surface: new DataView(withSurface && surface_b64 ? ReplayKernel.b64(surface_b64) : new ArrayBuffer(0)),
      surface_info: withSurface ? state.surface_info : {},
    };
  }

  receive(content, buffers) {
    if (content.type === "ready" && params.get("static") !== "1") {
      const speed = num("speed", 1);
      for (const m of this.rec.messages) {
        setTimeout(() => {
          if (m.content.type === "done") {
            this.model.sync({ surface: new DataView(ReplayKernel.b64(this.rec.state.surface_b64)), surface_info: this.rec.state.surface_info, status: this.rec.state.status });
          }
          this.model.custom(m.content, m.buffers.map(ReplayKernel.b64));
          if (m.content.type === "done") document.body.dataset.done = String(m.content.gen);
        }, (m.t * 1000) / speed);
      }
    } else if (content.type === "snapshot") {
      const b = buffers[0];
      const dv = new DataView(b instanceof ArrayBuffer ? b : b.buffer);
      document.getElementById("log").textContent = `snapshot gen=${content.gen} bytes=${b.byteLength} png=${dv.getUint32(16, false)}x${dv.getUint32(20, false)}`;
    }
  }
}
