// Little-endian buffers as the kernel sends them.

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
