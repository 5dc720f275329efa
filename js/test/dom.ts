// A minimal DOM for views in node: elements with classes, data attributes, children and event
// listeners, and canvases whose 2D context records nothing but answers what drawings ask.

type Listener = (ev: unknown) => void;

/** A 2D context that accepts every call and measures text at 6 px per character. */
export function nullContext(canvas: unknown): CanvasRenderingContext2D {
  const state: Record<string | symbol, unknown> = { canvas, measureText: (s: string) => ({ width: 6 * s.length }) };
  return new Proxy(state, {
    get: (t, k) => (k in t ? t[k] : () => {}),
    set: (t, k, v) => {
      t[k] = v;
      return true;
    },
  }) as unknown as CanvasRenderingContext2D;
}

export class FakeElement {
  className = "";
  style: Record<string, string> = {};
  dataset: Record<string, string> = {};
  hidden = false;
  textContent: string | null = "";
  type = "";
  title = "";
  width = 0;
  height = 0;
  children: FakeElement[] = [];
  parent: FakeElement | null = null;
  readonly attributes: Record<string, string> = {};
  private readonly listeners = new Map<string, Set<Listener>>();
  private ctx: CanvasRenderingContext2D | null = null;

  constructor(readonly tagName: string) {}

  readonly classList = {
    contains: (c: string) => this.className.split(/\s+/).includes(c),
    add: (c: string) => {
      if (!this.classList.contains(c)) this.className = `${this.className} ${c}`.trim();
    },
    remove: (c: string) => {
      this.className = this.className
        .split(/\s+/)
        .filter((x) => x && x !== c)
        .join(" ");
    },
    toggle: (c: string, on?: boolean) => {
      const want = on ?? !this.classList.contains(c);
      if (want) this.classList.add(c);
      else this.classList.remove(c);
      return want;
    },
  };

  appendChild(child: FakeElement): FakeElement {
    child.remove();
    child.parent = this;
    this.children.push(child);
    return child;
  }

  append(...children: FakeElement[]): void {
    for (const c of children) this.appendChild(c);
  }

  remove(): void {
    if (this.parent) this.parent.children = this.parent.children.filter((c) => c !== this);
    this.parent = null;
  }

  setAttribute(key: string, value: string): void {
    this.attributes[key] = value;
  }

  addEventListener(type: string, fn: Listener): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(fn);
  }

  removeEventListener(type: string, fn: Listener): void {
    this.listeners.get(type)?.delete(fn);
  }

  /** Calls the listeners of `type` with `ev`. */
  dispatch(type: string, ev: unknown = {}): void {
    for (const fn of this.listeners.get(type) ?? []) fn(ev);
  }

  listenerCount(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  getBoundingClientRect(): { left: number; top: number; width: number; height: number } {
    return { left: 0, top: 0, width: parseFloat(this.style.width) || 0, height: parseFloat(this.style.height) || 0 };
  }

  getContext(): CanvasRenderingContext2D {
    this.ctx ??= nullContext(this);
    return this.ctx;
  }

  /** Every element below this one (depth first) with class `cls`. */
  findAll(cls: string): FakeElement[] {
    const out: FakeElement[] = [];
    for (const c of this.children) {
      if (c.classList.contains(cls)) out.push(c);
      out.push(...c.findAll(cls));
    }
    return out;
  }
}

/** Installs the fake `document` (and `ImageData`) on the global object. */
export function installDom(): void {
  const g = globalThis as unknown as Record<string, unknown>;
  g.document = { createElement: (tag: string) => new FakeElement(tag) };
  g.ImageData ??= class {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  };
}
