import { describe, expect, it } from "vitest";
import { sharedRange, unionRange } from "../src/scale";

describe("shared colour scale", () => {
  it("is the union of the panels' ranges, null when none knows a value", () => {
    expect(unionRange([{ min: 0, max: 2 }, null, { min: 1, max: 5 }])).toEqual({ min: 0, max: 5 });
    expect(unionRange([null, undefined])).toBeNull();
    expect(unionRange([])).toBeNull();
  });

  it("takes the kernel's range only for the generation, metric and scale shown", () => {
    const own = [{ min: 0.5, max: 1 }, null];
    const kernel = { gen: 4, metric: "loss", log: true, lo: 0.25, hi: 3 };
    const key = { gen: 4, metric: "loss", log: true };
    expect(sharedRange(own, kernel, key)).toEqual({ min: 0.25, max: 3 });
    expect(sharedRange(own, kernel, { ...key, gen: 5 })).toEqual({ min: 0.5, max: 1 });
    expect(sharedRange(own, kernel, { ...key, metric: "accuracy" })).toEqual({ min: 0.5, max: 1 });
    expect(sharedRange(own, kernel, { ...key, log: false })).toEqual({ min: 0.5, max: 1 });
    expect(sharedRange([null, null], null, key)).toBeNull();
    // panels showing more than the kernel reported yet (tiles ahead of the trait) widen it
    expect(sharedRange([{ min: 0.1, max: 1 }], kernel, key)).toEqual({ min: 0.1, max: 3 });
  });
});
