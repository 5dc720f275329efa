// Little-endian buffers as the kernel sends them, and a fake anywidget model.

import type { ModelLike, Traits } from "../src/protocol";

export function f32le(values: number[]): ArrayBuffer {
  const buf = new ArrayBuffer(values.length * 4);
  const dv = new DataView(buf);
  values.forEach((v, k) => dv.setFloat32(4 * k, v, true));
  return buf;
}

export function i32le(values: number[]): ArrayBuffer {
  const buf = new ArrayBuffer(values.length * 4);
  const dv = new DataView(buf);
  values.forEach((v, k) => dv.setInt32(4 * k, v, true));
  return buf;
}

export const linspace = (lo: number, hi: number, n: number): number[] =>
  Array.from({ length: n }, (_, k) => lo + ((hi - lo) * k) / (n - 1));

/** A tile message and its buffers for points (rows[k], cols[k]) with metric values per name. */
export function tileMsg(
  gen: number,
  level: number,
  rows: number[],
  cols: number[],
  metrics: Record<string, number[]>,
  exact = true,
): [Record<string, unknown>, DataView[]] {
  const names = Object.keys(metrics);
  const values = names.flatMap((m) => metrics[m]);
  return [
    { type: "tile", gen, level, count: rows.length, metrics: names, exact },
    [new DataView(i32le(rows)), new DataView(i32le(cols)), new DataView(f32le(values))],
  ];
}

/** All (i, j) of rows × cols, row-major. */
export function product(rows: number[], cols: number[]): { rows: number[]; cols: number[] } {
  const r: number[] = [];
  const c: number[] = [];
  for (const i of rows) for (const j of cols) (r.push(i), c.push(j));
  return { rows: r, cols: c };
}

type Handler = (...args: never[]) => void;

/** A minimal anywidget model: typed traits, change events, custom messages, sent messages. */
export class FakeModel implements ModelLike {
  readonly handlers = new Map<string, Set<Handler>>();
  readonly sent: Array<{ content: unknown; buffers?: ArrayBuffer[] | ArrayBufferView[] }> = [];
  constructor(public state: Traits) {}
  get<K extends keyof Traits>(key: K): Traits[K] {
    return this.state[key];
  }
  on(event: string, callback: Handler): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(callback);
  }
  off(event?: string | null, callback?: Handler | null): void {
    if (event && callback) this.handlers.get(event)?.delete(callback);
  }
  send(content: unknown, _callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void {
    this.sent.push({ content, buffers });
  }
  /** Sets several traits, then fires their change events: one sync, as the kernel's. */
  sync(values: Partial<Traits>): void {
    Object.assign(this.state, values);
    for (const k of Object.keys(values)) for (const cb of this.handlers.get(`change:${k}`) ?? []) (cb as () => void)();
  }
  /** A custom message from the kernel (anywidget hands buffers over as DataViews). */
  custom(content: unknown, buffers: DataView[] = []): void {
    for (const cb of this.handlers.get("msg:custom") ?? []) (cb as (c: unknown, b: DataView[]) => void)(content, buffers);
  }
  listenerCount(): number {
    let n = 0;
    for (const s of this.handlers.values()) n += s.size;
    return n;
  }
}
