// Axis ticks and number formatting shared by the contour and curve views (pure functions):
// d3-array's nice ticks, d3-scale's log ticks, d3-format's number formats.

import { ticks as niceTicks, tickStep } from "d3-array";
import { format, precisionFixed } from "d3-format";
import { scaleLog } from "d3-scale";

/**
 * The count asked of d3 for about `count` ticks over [lo, hi] (lo < hi): d3 may round the step up
 * to leave a single tick in a small count's range; then twice as many are asked for.
 */
function tickCount(lo: number, hi: number, count: number): number {
  return lo < hi && niceTicks(lo, hi, count).length < 2 ? 2 * count : count;
}

/** Nice linear ticks (1, 2 or 5 × 10^k apart) inside [lo, hi], ascending, at least 2 if lo < hi. */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  return niceTicks(lo, hi, tickCount(lo, hi, count));
}

/** Mantissas kept on a log axis, by the number of decades it spans (1 or more). */
const LOG_MANTISSAS = (decades: number): number[] => (decades < 2 ? [1, 2, 5] : decades < 3 ? [1, 3] : [1]);

/**
 * Ticks for a log axis over [lo, hi] (lo > 0): powers of ten, with 2 and 5 multiples when the
 * range spans few decades, and plain linear ticks when it spans less than one.
 */
export function logTicks(lo: number, hi: number, count = 5): number[] {
  if (!(lo > 0) || !(hi > 0) || !Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo > hi) [lo, hi] = [hi, lo];
  const decades = Math.log10(hi / lo);
  if (decades < 1) return linearTicks(lo, hi, count).filter((v) => v > 0);
  // d3 gives every k × 10^d (k = 1..9) over few decades, strided powers of ten over many
  const keep = LOG_MANTISSAS(decades);
  return scaleLog()
    .domain([lo, hi])
    .ticks(count)
    .filter((v) => keep.includes(Math.round(v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9)))));
}

/** Ticks for an axis over [lo, hi], linear or log. */
export function ticks(lo: number, hi: number, count = 5, log = false): number[] {
  return log ? logTicks(lo, hi, count) : linearTicks(lo, hi, count);
}

/**
 * The spacing of the ticks `ticks(lo, hi, count, log)` gives, for {@link formatTick}: exact (no
 * rounding error from subtracting two ticks), 0 on a log axis (labels then need no common step).
 */
export function tickSpacing(lo: number, hi: number, count = 5, log = false): number {
  if (lo > hi) [lo, hi] = [hi, lo];
  const step = tickStep(lo, hi, tickCount(lo, hi, count));
  return log || !Number.isFinite(step) ? 0 : step;
}

const MINUS = "\u2212";
/** d3-format writes a real minus sign, but leaves the exponent of toExponential as "e-4" / "e+5". */
const exponent = (f: (v: number) => string) => (v: number) => f(v).replace("e+", "e").replace("e-", "e" + MINUS);
/** Outside [1e-3, 1e5) numbers are written with an exponent. */
const useExponent = (v: number) => Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3;

const tickExp = exponent(format(".3~e"));
const tickFree = format(".6~f");
const tickFixed = Array.from({ length: 7 }, (_, decimals) => format(`.${decimals}f`));
const valueExp = exponent(format(".3e"));
const valueFixed = format(".4r");
const coordExp = exponent(format(".2~e"));
const coordFixed = format(".3~r");

/**
 * A short label for a tick value: as many decimals as the spacing of its neighbours needs
 * (`step`, 0 if unknown: then as few as the value needs, at most 6), or exponent form.
 */
export function formatTick(v: number, step = 0): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  if (useExponent(v)) return tickExp(v);
  return step > 0 ? tickFixed[Math.min(6, precisionFixed(step))](v) : tickFree(v);
}

/** A readout value: 4 significant digits, exponent form outside [1e-3, 1e5). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+\u221e" : MINUS + "\u221e";
  if (v === 0) return "0";
  return useExponent(v) ? valueExp(v) : valueFixed(v);
}

/** A coordinate for titles: at most 3 significant digits, trailing zeros dropped (−0.2, 0.125). */
export function formatCoord(v: number): string {
  if (!Number.isFinite(v)) return formatValue(v);
  if (v === 0) return "0";
  return useExponent(v) ? coordExp(v) : coordFixed(v);
}
