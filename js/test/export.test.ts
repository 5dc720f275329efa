import { describe, expect, it } from "vitest";
import { dataUrlToBlob, pngSize } from "../src/export";

// 1 × 1 transparent PNG
const PNG_1x1 =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

describe("PNG export helpers", () => {
  it("decode a data URL into PNG bytes and read their size", async () => {
    const blob = dataUrlToBlob(PNG_1x1);
    expect(blob.type).toBe("image/png");
    const bytes = new Uint8Array(await blob.arrayBuffer());
    expect(pngSize(bytes)).toEqual({ width: 1, height: 1 });
    expect(pngSize(new Uint8Array([1, 2, 3]))).toBeNull();
  });
});
