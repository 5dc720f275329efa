// A training trajectory over the contour view: the snapshots projected on the plane, joined in
// training order, with start and end markers (Li et al. 2018, Fig. 9). Pure geometry (pixels,
// hit tests) apart from the canvas calls, so that it is unit-tested without a browser.

import { dataToPixel, type ContourLayout } from "./contour";
import type { TrajectoryPath } from "./protocol";

/** The line and markers of a path: red-orange on a white halo, readable on every colormap. */
export const PATH_COLOR = "#e8412c";
export const PATH_HALO = "rgba(255, 255, 255, 0.9)";
/** How close (CSS px) the pointer must come to a snapshot to show it. */
export const SNAPSHOT_RADIUS = 8;

/** CSS pixel of each snapshot, or null where its coordinates are not finite. */
export function pathPixels(L: ContourLayout, path: TrajectoryPath): Array<[number, number] | null> {
  const out: Array<[number, number] | null> = [];
  for (let k = 0; k < path.count; k++) {
    const a = path.alpha[k];
    const b = path.beta[k];
    out.push(Number.isFinite(a) && Number.isFinite(b) ? dataToPixel(L, a, b) : null);
  }
  return out;
}

/** Whether a CSS pixel lies in the plot area of `L`. */
function inPlot(L: ContourLayout, p: [number, number]): boolean {
  const { x, y, w, h } = L.plot;
  return p[0] >= x && p[0] <= x + w && p[1] >= y && p[1] <= y + h;
}

/**
 * The snapshot nearest to the CSS pixel (px, py) within `radius` px that is inside the plot
 * area, or -1; of snapshots at the same distance, the latest (drawn on top).
 */
export function nearestSnapshot(
  L: ContourLayout,
  pixels: ReadonlyArray<[number, number] | null>,
  px: number,
  py: number,
  radius = SNAPSHOT_RADIUS,
): number {
  let best = -1;
  let bestD = radius * radius;
  pixels.forEach((p, k) => {
    if (!p || !inPlot(L, p)) return;
    const d = (p[0] - px) ** 2 + (p[1] - py) ** 2;
    if (d <= bestD) {
      best = k;
      bestD = d;
    }
  });
  return best;
}

/** The hover text of snapshot k: its label ("step 120 · loss 0.41"), else its step. */
export function snapshotText(path: TrajectoryPath, k: number): string {
  const label = path.labels[k];
  return label && label.trim() ? label : `step ${path.steps[k]}`;
}

/**
 * Draws the path on `ctx` (CSS px transform set, clipped to the plot area by the caller): the
 * polyline through the snapshots on a halo, a dot per snapshot, a hollow circle at the first
 * and a filled square at the last. Breaks the line where a snapshot has no coordinates.
 */
export function drawPath(ctx: CanvasRenderingContext2D, L: ContourLayout, path: TrajectoryPath): void {
  const pixels = pathPixels(L, path);
  const line = (width: number, color: string) => {
    ctx.beginPath();
    let open = false;
    for (const p of pixels) {
      if (!p) {
        open = false;
        continue;
      }
      if (open) ctx.lineTo(p[0], p[1]);
      else ctx.moveTo(p[0], p[1]);
      open = true;
    }
    ctx.lineWidth = width;
    ctx.strokeStyle = color;
    ctx.stroke();
  };
  ctx.save();
  ctx.lineJoin = "round";
  ctx.lineCap = "round";
  line(4, PATH_HALO);
  line(1.8, PATH_COLOR);
  ctx.fillStyle = PATH_COLOR;
  for (const p of pixels) {
    if (!p) continue;
    ctx.beginPath();
    ctx.arc(p[0], p[1], 1.9, 0, 2 * Math.PI);
    ctx.fill();
  }
  const present = pixels.filter((p): p is [number, number] => p !== null);
  if (present.length > 0) {
    const [sx, sy] = present[0];
    ctx.beginPath();
    ctx.arc(sx, sy, 4.5, 0, 2 * Math.PI);
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = PATH_COLOR;
    ctx.stroke();
  }
  if (present.length > 1) {
    const [ex, ey] = present[present.length - 1];
    ctx.fillStyle = PATH_COLOR;
    ctx.strokeStyle = PATH_HALO;
    ctx.lineWidth = 1.5;
    ctx.fillRect(ex - 4, ey - 4, 8, 8);
    ctx.strokeRect(ex - 4, ey - 4, 8, 8);
  }
  ctx.restore();
}

/** A ring around snapshot k (the one under the pointer). */
export function drawSnapshotRing(ctx: CanvasRenderingContext2D, L: ContourLayout, path: TrajectoryPath, k: number): void {
  const p = pathPixels(L, path)[k];
  if (!p) return;
  ctx.save();
  ctx.beginPath();
  ctx.arc(p[0], p[1], 6.5, 0, 2 * Math.PI);
  ctx.lineWidth = 3;
  ctx.strokeStyle = PATH_HALO;
  ctx.stroke();
  ctx.lineWidth = 1.6;
  ctx.strokeStyle = "#1a1a1a";
  ctx.stroke();
  ctx.restore();
}
