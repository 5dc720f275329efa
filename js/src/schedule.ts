// Redraw scheduling shared by the views: at most one drawing per animation frame.

/** Redraws on animation frames (throttled), with a timer for hidden tabs that get no frames. */
export class Scheduler {
  private raf = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private alive = true;

  constructor(private readonly draw: () => void) {}

  schedule(): void {
    if (!this.alive || this.raf || this.timer) return;
    if (typeof requestAnimationFrame === "function") this.raf = requestAnimationFrame(() => this.frame());
    this.timer = setTimeout(() => this.frame(), 120);
  }

  private frame(): void {
    this.cancel();
    if (this.alive) this.draw();
  }

  private cancel(): void {
    if (this.raf && typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.raf);
    if (this.timer) clearTimeout(this.timer);
    this.raf = 0;
    this.timer = null;
  }

  stop(): void {
    this.alive = false;
    this.cancel();
  }
}
