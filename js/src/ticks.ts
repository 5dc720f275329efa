// Axis ticks and number formatting shared by the contour and curve views (pure functions).

/** A "nice" step (1, 2 or 5 × 10^k) giving about `count` intervals over [lo, hi]. */
export function niceStep(lo: number, hi: number, count: number): number {
  const span = Math.abs(hi - lo);
  if (!(span > 0) || !Number.isFinite(span)) return 0;
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  const m = f >= 7.5 ? 10 : f >= 3.5 ? 5 : f >= 1.5 ? 2 : 1;
  return m * p;
}

/** Nice linear ticks inside [lo, hi] (inclusive, with a little tolerance). */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) return [lo];
  const step = niceStep(lo, hi, count);
  const eps = step * 1e-9;
  const start = Math.ceil((lo - eps) / step);
  const stop = Math.floor((hi + eps) / step);
  const out: number[] = [];
  for (let k = start; k <= stop; k++) {
    const v = k * step;
    out.push(Math.abs(v) < eps ? 0 : v);
  }
  return out;
}

/**
 * Ticks for a log axis over [lo, hi] (lo > 0): powers of ten, with 2 and 5 multiples when the
 * range spans few decades, and plain linear ticks when it spans less than one.
 */
export function logTicks(lo: number, hi: number, count = 5): number[] {
  if (!(lo > 0) || !(hi > 0)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  const d0 = Math.floor(Math.log10(lo));
  const d1 = Math.ceil(Math.log10(hi));
  const decades = Math.log10(hi / lo);
  if (decades < 1) {
    const lin = linearTicks(lo, hi, count);
    return lin.filter((v) => v > 0);
  }
  const mults = decades < 2 ? [1, 2, 5] : decades < 3 ? [1, 3] : [1];
  const stride = Math.max(1, Math.ceil((d1 - d0) / Math.max(2, count + 2)));
  const out: number[] = [];
  for (let d = d0; d <= d1; d++) {
    if (mults.length === 1 && (d - d0) % stride !== 0) continue;
    for (const m of mults) {
      const v = m * Math.pow(10, d);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/** Ticks for an axis over [lo, hi], linear or log. */
export function ticks(lo: number, hi: number, count = 5, log = false): number[] {
  return log ? logTicks(lo, hi, count) : linearTicks(lo, hi, count);
}

const MINUS = "\u2212";

/** A short label for a tick value, given the spacing of its neighbours (`step`, 0 if unknown). */
export function formatTick(v: number, step = 0): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  let s: string;
  if (a >= 1e5 || a < 1e-3) {
    s = v.toExponential(Math.max(0, Math.min(3, significantDecimals(a)))).replace("e+", "e");
    s = s.replace(/\.?0+e/, "e");
  } else {
    const decimals = step > 0 ? Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))) : significantDecimals(a);
    s = v.toFixed(decimals);
  }
  return s.replace(/-/g, MINUS);
}

function significantDecimals(a: number): number {
  // how many decimals a nice tick value needs: 0.25 → 2, 1.5 → 1, 200 → 0
  for (let d = 0; d <= 6; d++) {
    const r = Math.round(a * Math.pow(10, d));
    if (Math.abs(r / Math.pow(10, d) - a) <= a * 1e-9) return d;
  }
  return 6;
}

/** A readout value: 4 significant digits, exponent form outside [1e-3, 1e5). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+\u221e" : MINUS + "\u221e";
  if (v === 0) return "0";
  const a = Math.abs(v);
  const s = a >= 1e5 || a < 1e-3 ? v.toExponential(3).replace("e+", "e") : v.toPrecision(4);
  return s.replace(/-/g, MINUS);
}

/** A coordinate for titles: at most 3 significant digits, trailing zeros dropped (−0.2, 0.125). */
export function formatCoord(v: number): string {
  if (!Number.isFinite(v)) return formatValue(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  let s = a >= 1e5 || a < 1e-3 ? v.toExponential(2).replace("e+", "e") : v.toPrecision(3);
  if (s.includes("e")) s = s.replace(/\.?0+e/, "e");
  else if (s.includes(".")) s = s.replace(/\.?0+$/, "");
  return s.replace(/-/g, MINUS);
}
