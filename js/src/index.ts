// anywidget entry of the single view: one panel (panel.ts) wired to a Session, redrawn on
// animation frames, with a toolbar (progress, Save PNG) and a PNG snapshot for the kernel, which
// a saved notebook keeps (snapshot.ts).

import type { Initialize, Render } from "@anywidget/types";
import { FONT_FAMILY } from "./contour";
import { savePng } from "./export";
import { PanelView, devicePixelRatio, h, type PanelStyle } from "./panel";
import type { Model, Traits } from "./protocol";
import { Scheduler } from "./schedule";
import { Session, type Dirty } from "./session";
import { PictureSender, hideStaticPicture } from "./snapshot";
import "./widget.css";

/** CSS size of the contour view and of the curves panel. */
export const CONTOUR_SIZE = { width: 480, height: 400 };
export const CURVES_SIZE = { width: 330, height: 400 };

/** Renders one view of the widget into `el`; returns its cleanup. */
export function renderView(model: Model, el: HTMLElement): () => void {
  const root = h("div", "lsw-root");
  root.style.fontFamily = FONT_FAMILY;
  const main = h("div", "lsw-main", root);
  const bar = h("div", "lsw-toolbar", main);
  const save = h("button", "lsw-save");
  save.type = "button";
  save.textContent = "Save PNG";
  save.title = "Download the contour view as landscape.png, exactly as drawn";

  const dirty = new Set<Dirty>(["figure", "curves", "status"]);
  const scheduler = new Scheduler(draw);
  const session = new Session(model, (what) => {
    what.forEach((w) => dirty.add(w));
    scheduler.schedule();
  });
  const panel = new PanelView(session, { contour: CONTOUR_SIZE, curves: CURVES_SIZE });
  bar.append(panel.progress, save);
  main.append(panel.stage, panel.readout);
  const side = h("div", "lsw-side", root);
  side.appendChild(panel.curves);
  el.appendChild(root);
  const pictures = new PictureSender(session, panel);
  const showStaticPicture = hideStaticPicture(el);

  const style = (): PanelStyle => ({
    metric: session.trait("metric"),
    log: session.trait("log_scale"),
    colormap: session.trait("colormap"),
    nLevels: session.trait("n_levels"),
  });

  function draw(): void {
    if (panel.resize(devicePixelRatio())) dirty.add("figure").add("curves");
    const s = style();
    if (dirty.has("figure")) panel.drawFigure(s);
    if (dirty.has("curves")) panel.drawSide(s);
    panel.drawStatus();
    panel.drawOverlay();
    dirty.clear();
    pictures.drawn(); // a complete surface drawn: its PNG for the kernel, once the view is still
  }

  const onMove = (ev: PointerEvent) => {
    const at = panel.eventPoint(ev);
    panel.probe(at?.data ?? null, at?.pixel);
  };
  const onLeave = () => panel.probe(null);
  const onClick = (ev: MouseEvent) => {
    const pt = panel.eventPoint(ev)?.data;
    // picks are in the current plane: not while an older picture is still on screen
    if (pt && panel.pickable) session.pick(pt[0], pt[1]);
  };
  const onSave = () => {
    savePng(panel.contour, "landscape.png").catch((e) => console.warn("ls-widget: save failed", e));
  };
  panel.overlay.addEventListener("pointermove", onMove);
  panel.overlay.addEventListener("pointerleave", onLeave);
  panel.overlay.addEventListener("click", onClick);
  save.addEventListener("click", onSave);

  draw();
  session.start();

  return () => {
    pictures.stop();
    showStaticPicture();
    scheduler.stop();
    session.stop();
    panel.overlay.removeEventListener("pointermove", onMove);
    panel.overlay.removeEventListener("pointerleave", onLeave);
    panel.overlay.removeEventListener("click", onClick);
    save.removeEventListener("click", onSave);
    root.remove();
  };
}

const initialize: Initialize<Traits> = () => {
  // all state lives in the views: each view says "ready" and the kernel replays to it
};

const render: Render<Traits> = ({ model, el }) => renderView(model, el);

export default { initialize, render };
