"""Browser end-to-end: a saved notebook keeps the widget's last picture (widget/snapshot.py).

A small notebook runs `lw.explore` in JupyterLab (Chromium at 2 device pixels per CSS pixel);
once the surface is complete, the static picture output below the widget holds exactly the
view's pixels and stays hidden while the view is live; after a click it holds the cross-sections
too. The notebook is saved (Ctrl+S), its
.ipynb carries the PNG, `jupyter nbconvert --to html` of it shows the picture in a page opened
with the network blocked, and JupyterLab shows it on reopening (no widget model any more).

The server, browser and helpers are those of tests/test_browser.py (same isolation: temporary
Jupyter dirs, 127.0.0.1, a token; Debian's Chromium, never downloaded). Screenshots go to
test-output/.

    .venv/bin/python -m pytest tests/test_browser_snapshot.py -q -s     # -s shows the timings
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from test_browser import (
    CHROMIUM_ARGS,
    COMPLETE,
    OUTPUT,
    Lab,
    PageErrors,
    _chromium,
    _free_port,
    assert_no_error_outputs,
    run_all_cells,
    wait_all_cells_ran,
)

pytestmark = pytest.mark.browser

DPR = 2  # the picture is taken at the screen's density (capped at 2)
CSS_SIZE = (480 + 12 + 330, 400)  # contour, gap, cross-sections (js/src/index.ts, snapshot.ts)
NOTEBOOK = "snapshot.ipynb"
CELLS = [
    """import torch
from torch import nn
import ls_widget as lw

torch.manual_seed(0)
X, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))""",
    """w = lw.explore(model, (X, y), n=21)
w""",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _rgb(png: bytes) -> np.ndarray:
    """RGB pixels of a PNG, transparent parts over white (as the page shows them)."""
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, im).convert("RGB")).astype(np.int32)


def _data_url_bytes(url: str) -> bytes:
    assert url.startswith("data:image/png;base64,"), url[:60]
    return base64.b64decode(url.split(",", 1)[1])


def _assert_a_picture(rgb: np.ndarray, what: str) -> None:
    """Not blank: many colours (the colormap's) and spread-out values."""
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert colours > 200 and float(rgb.std()) > 20, (
        f"{what} looks blank: {colours} colours, std {rgb.std():.1f}")


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, dict[str, str]]]:
    """JupyterLab on 127.0.0.1 (random port, token, own Jupyter dirs) serving the notebook;
    also the environment, for nbconvert."""
    _chromium()
    tmp = tmp_path_factory.mktemp("lab-snapshot")
    root = tmp / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / NOTEBOOK)
    settings = tmp / "settings"
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "IPYTHONDIR": str(tmp / "ipython"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
    ]  # fmt: skip
    log_path = tmp / "jupyterlab.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    try:
        status = f"http://127.0.0.1:{port}/api/status?token={token}"
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(status, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield Lab(port, token, root), env
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------ in the page
STATIC_OUTPUTS = """() => [...document.querySelectorAll('.jp-OutputArea-child')].flatMap((c) => {
    const img = c.querySelector('img');
    return img ? [{ width: img.naturalWidth, height: img.naturalHeight, src: img.src,
                    hidden: getComputedStyle(c).display === 'none',
                    visible: img.getBoundingClientRect().width > 0 }] : [];
})"""


def _canvas_png(page: Any, selector: str) -> bytes:
    url = page.locator(selector).first.evaluate("c => c.toDataURL('image/png')")
    return _data_url_bytes(url)


def _canvas_rgba(page: Any, selector: str) -> np.ndarray:
    from PIL import Image

    png = _canvas_png(page, selector)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.float64)


def _saved_outputs(path: Path) -> list[dict[str, Any]]:
    nb = nbformat.read(path, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" and "explore(" in c.source
            for o in c.outputs]


def _saved_png(path: Path) -> bytes | None:
    """The PNG of the static picture in the saved notebook, once it is a real one."""
    for out in _saved_outputs(path):
        b64 = out.get("data", {}).get("image/png")
        if b64 and len(b64) > 1000:
            return base64.b64decode(b64)
    return None


# ------------------------------------------------------------------------------ the test
def test_saved_notebook_and_its_html_show_the_last_picture(browser: Any, lab: Any,
                                                           tmp_path: Path) -> None:
    server, env = lab
    OUTPUT.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    context = browser.new_context(viewport={"width": 1300, "height": 900},
                                  device_scale_factor=DPR)
    page = context.new_page()
    errors = PageErrors(page)
    try:
        page.goto(server.url(f"lab/tree/{NOTEBOOK}"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        server.wait_kernel_idle(NOTEBOOK)
        run_all_cells(page)
        page.wait_for_selector(COMPLETE, state="attached", timeout=120_000)
        wait_all_cells_ran(page)
        assert_no_error_outputs(page)
        t_surface = time.perf_counter() - t0

        # Live: the static output below the widget receives the view's picture (update_display
        # after the cell finished) and stays hidden while the view shows.
        page.wait_for_function(f"() => ({STATIC_OUTPUTS})().some((o) => o.width > 1)",
                               timeout=30_000)
        t_picture = time.perf_counter() - t0
        (static,) = page.evaluate(STATIC_OUTPUTS)
        assert static["hidden"] and not static["visible"], static
        assert (static["width"], static["height"]) == (CSS_SIZE[0] * DPR, CSS_SIZE[1] * DPR)
        assert page.locator(".lsw-root").count() == 1
        page.locator(".lsw-explorer").first.scroll_into_view_if_needed()
        page.screenshot(path=OUTPUT / "snapshot-lab-live.png")

        # Exactly the view's pixels: the contour canvas, then the cross-sections canvas.
        picture = _rgb(_data_url_bytes(static["src"]))
        contour = _rgb(_canvas_png(page, ".lsw-contour"))
        curves = _rgb(_canvas_png(page, ".lsw-curves"))
        ch, cw = contour.shape[:2]
        assert (cw, ch) == (480 * DPR, 400 * DPR)
        assert np.array_equal(picture[:ch, :cw], contour), "the picture's contour differs"
        left = (480 + 12) * DPR
        assert np.array_equal(picture[: curves.shape[0], left:], curves)
        assert (picture[:, cw:left] == 255).all()  # the gap
        _assert_a_picture(picture[:ch, :cw], "the static picture")

        # A click: the cross-sections and the picked point join the picture (not the probe).
        plot = json.loads(page.locator(".lsw-contour").first.get_attribute("data-plot"))
        box = page.locator(".lsw-overlay").first.bounding_box()
        page.mouse.click(box["x"] + plot["x"] + 0.75 * plot["w"],
                         box["y"] + plot["y"] + 0.7 * plot["h"])
        page.mouse.move(2, 2)  # off the contour: the live overlay keeps only the picked point
        page.wait_for_function(
            f"(old) => ({STATIC_OUTPUTS})().some((o) => o.width > 1 && o.src !== old)",
            arg=static["src"], timeout=30_000)
        (static,) = page.evaluate(STATIC_OUTPUTS)
        picture = _rgb(_data_url_bytes(static["src"]))
        curves = _rgb(_canvas_png(page, ".lsw-curves"))
        assert np.array_equal(picture[: curves.shape[0], left:], curves)
        assert len(np.unique(curves.reshape(-1, 3), axis=0)) > 50, "no cross-sections drawn"
        overlay = _canvas_rgba(page, ".lsw-overlay")
        alpha = overlay[..., 3:] / 255.0
        shown = contour * (1 - alpha) + overlay[..., :3] * alpha
        assert (alpha > 0).sum() > 50, "no picked point on the overlay"
        assert np.abs(picture[:ch, :cw] - shown).max() <= 2  # blending may round differently

        # Save (Ctrl+S) and read the file: the picture is in the outputs, sized in CSS px.
        page.locator(".jp-Cell .jp-InputPrompt").first.click()
        page.keyboard.press("Control+s")
        saved = server.root / NOTEBOOK
        deadline = time.monotonic() + 30
        while (png := _saved_png(saved)) is None:
            assert time.monotonic() < deadline, "the saved notebook has no picture"
            time.sleep(0.2)
        t_saved = time.perf_counter() - t0
        outs = _saved_outputs(saved)
        assert [WIDGET_VIEW in o["data"] for o in outs] == [True, False]
        assert outs[1]["metadata"] == {"image/png": {"width": CSS_SIZE[0],
                                                     "height": CSS_SIZE[1]}}
        assert np.array_equal(_rgb(png), picture)
        print(f"\nstatic picture: {len(png) / 1024:.0f} KB for "
              f"{picture.shape[1]}×{picture.shape[0]} px")
        assert not errors, errors
    finally:
        context.close()

    # nbconvert --to html, opened with every request that is not a local file refused.
    t1 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(saved),
                    "--output-dir", str(tmp_path)], check=True, env=env, capture_output=True)
    t_convert = time.perf_counter() - t1
    html = tmp_path / "snapshot.html"
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    blocked: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    try:
        page.goto(html.as_uri(), wait_until="load")
        img = page.locator("img[src^='data:image/png']")
        assert img.count() == 1
        natural = img.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight]")
        assert natural == [True, CSS_SIZE[0] * DPR, CSS_SIZE[1] * DPR]
        box = img.bounding_box()
        assert (round(box["width"]), round(box["height"])) == CSS_SIZE
        drawn = _rgb(img.screenshot())  # what the page shows, at its 1 px per CSS px
        _assert_a_picture(drawn, "the nbconvert page's picture")
        page.screenshot(path=OUTPUT / "snapshot-nbconvert.png", full_page=True)
        page.screenshot(path="/tmp/lsw-snapshot-nbconvert.png", full_page=True)
        print(f"offline page: {len(blocked)} requests refused ({sorted(set(blocked))[:3]}...)")
    finally:
        context.close()

    # Reopened in JupyterLab (a fresh kernel: the widget's model is gone): the picture shows.
    (server.root / "reopened.ipynb").write_bytes(saved.read_bytes())
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.url("lab/tree/reopened.ipynb") + "&reset")  # not the other tab too
        page.wait_for_selector(".jp-OutputArea-output img", timeout=60_000)
        page.wait_for_function(
            f"() => ({STATIC_OUTPUTS})().some((o) => o.width > 1 && o.visible && !o.hidden)",
            timeout=30_000)
        shown = page.locator(".jp-OutputArea-output img").filter(visible=True).first
        _assert_a_picture(_rgb(shown.screenshot()), "the reopened notebook's picture")
        page.screenshot(path=OUTPUT / "snapshot-lab-reopened.png")
    finally:
        context.close()
    print(f"surface {t_surface:.1f} s, picture in the output {t_picture:.1f} s, saved "
          f"{t_saved:.1f} s, nbconvert {t_convert:.1f} s, total {time.perf_counter() - t0:.1f} s")
