// The colour scale the panels of a comparison share: one range, hence one colour for one value
// and the same isolines on every panel.

import type { ColorRange } from "./protocol";

/** A closed range of values. */
export interface Range {
  min: number;
  max: number;
}

/** The smallest range holding every given one; null when none is given. */
export function unionRange(ranges: ReadonlyArray<Range | null | undefined>): Range | null {
  let min = Infinity;
  let max = -Infinity;
  for (const r of ranges) {
    if (!r) continue;
    if (r.min < min) min = r.min;
    if (r.max > max) max = r.max;
  }
  return min <= max ? { min, max } : null;
}

/** What the panels show: their (common) generation, the metric drawn and the scale. */
export interface ScaleKey {
  gen: number;
  metric: string;
  log: boolean;
}

/**
 * The range every panel draws with: the union of the panels' own ranges (what each shows now)
 * and the kernel's shared range when it is of the same generation, metric and scale (it may
 * hold values whose tiles are still on their way). Null when nothing is known.
 */
export function sharedRange(own: ReadonlyArray<Range | null>, kernel: ColorRange | null, key: ScaleKey): Range | null {
  const fromKernel = kernel && kernel.gen === key.gen && kernel.metric === key.metric && kernel.log === key.log ? { min: kernel.lo, max: kernel.hi } : null;
  return unionRange([...own, fromKernel]);
}
