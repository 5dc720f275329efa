// PNG export of exactly what is on screen: the canvas backing store, which is the CSS size times
// devicePixelRatio, encoded as it is (no re-rendering, no resampling).

/** The PNG bytes of a canvas as drawn. */
export function canvasPng(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) => {
    if (typeof canvas.toBlob === "function") {
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("canvas.toBlob gave nothing"))), "image/png");
    } else {
      try {
        resolve(dataUrlToBlob(canvas.toDataURL("image/png")));
      } catch (e) {
        reject(e);
      }
    }
  });
}

/** A Blob from a base64 data URL. */
export function dataUrlToBlob(url: string): Blob {
  const comma = url.indexOf(",");
  const mime = /^data:([^;,]+)/.exec(url)?.[1] ?? "application/octet-stream";
  const bin = atob(url.slice(comma + 1));
  const bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  return new Blob([bytes], { type: mime });
}

/** The PNG bytes of a canvas as an ArrayBuffer (for a custom message buffer). */
export async function canvasPngBytes(canvas: HTMLCanvasElement): Promise<ArrayBuffer> {
  const blob = await canvasPng(canvas);
  return blob.arrayBuffer();
}

/** Offers `blob` as a download named `filename`. */
export function download(blob: Blob, filename: string, doc: Document = document): void {
  const url = URL.createObjectURL(blob);
  const a = doc.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  a.style.display = "none";
  doc.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Downloads the canvas as `filename` (default landscape.png). */
export async function savePng(canvas: HTMLCanvasElement, filename = "landscape.png"): Promise<void> {
  download(await canvasPng(canvas), filename, canvas.ownerDocument ?? document);
}

/** Width and height of a PNG from its IHDR chunk (for checks), or null if not a PNG. */
export function pngSize(bytes: ArrayBuffer | Uint8Array): { width: number; height: number } | null {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (b.length < 24 || sig.some((v, k) => b[k] !== v)) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { width: dv.getUint32(16, false), height: dv.getUint32(20, false) };
}
