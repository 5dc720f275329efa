"""Browser end-to-end: `lw.compare` (two panels, one colour scale, linked hover and clicks) and
`lw.explore(..., trajectory=...)` (the training path over the contours) in JupyterLab, in
Debian's Chromium through Playwright, with tests/test_browser.py's server and browser fixtures.

A notebook written here trains two digits MLPs (minibatches of 32, and full batch with its
trajectory recorded), then shows the comparison and the trajectory. Screenshots go to
test-output/ (lab-compare.png, lab-trajectory.png).

    .venv/bin/python -m pytest tests/test_browser_compare.py -q -s
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from test_browser import (  # noqa: F401  (browser and lab are fixtures used by name)
    COMPLETE_TIMEOUT_MS,
    OUTPUT,
    VIEWPORT,
    Canvas,
    Lab,
    PageErrors,
    _decode_png,
    assert_no_error_outputs,
    browser,
    data_to_css,
    lab,
    run_all_cells,
    series_pixels,
    wait_all_cells_ran,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "compare.ipynb"
PANELS = ".lsw-compare-root .lsw-compare-panel"
SNAPSHOTS = 60

CELLS = [
    """\
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

import ls_widget as lw

digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target, dtype=torch.long)


def train(batch, steps, record=False):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    rec = lw.Recorder(model) if record else None
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, len(X), (batch,), generator=g) if batch else slice(None)
        opt.zero_grad()
        loss = F.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
        if rec is not None:
            rec.step(step=step, train_loss=loss.item())
    return model, rec


small, _ = train(32, 150)
full, rec = train(None, {SNAPSHOTS}, record=True)
""".replace("{SNAPSHOTS}", str(SNAPSHOTS)),
    """\
cmp = lw.compare({"batch 32": small, "full batch": full}, (X, y), n=21)
cmp""",
    """\
e = lw.explore(full, (X, y), trajectory=rec.trajectory, n=21)
e""",
    """\
assert cmp.wait(300) and e.wait(300)
fig = cmp.figure()
print("colorbars:", sum(ax.get_label() == "<colorbar>" for ax in fig.axes))""",
]


def _notebook() -> dict[str, Any]:
    def cell(source: str) -> dict[str, Any]:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                "source": source}

    return {"cells": [cell(c) for c in CELLS], "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}


def read_nth_canvas(page: Any, selector: str, k: int) -> Canvas:
    loc = page.locator(selector).nth(k)
    url = loc.evaluate("c => c.toDataURL('image/png')")
    width = loc.evaluate("c => c.getBoundingClientRect().width")
    return Canvas(_decode_png(url), float(width))


def panel_attr(page: Any, k: int, what: str, attr: str) -> Any:
    raw = page.locator(f"{PANELS} {what}").nth(k).get_attribute(attr)
    return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def compare_page(browser: Any, lab: Lab) -> Iterator[Any]:  # noqa: F811
    """The notebook above opened in JupyterLab, every cell run, both views complete."""
    (lab.root / NOTEBOOK).write_text(json.dumps(_notebook()))
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = PageErrors(page)
    t0 = time.perf_counter()
    page.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    lab.wait_kernel_idle(NOTEBOOK)
    run_all_cells(page)
    page.wait_for_function(
        """(sel) => document.querySelectorAll(sel + ' .lsw-contour[data-complete="true"]')
                    .length === 2""",
        arg=PANELS, timeout=COMPLETE_TIMEOUT_MS,
    )
    wait_all_cells_ran(page)
    lab.wait_kernel_idle(NOTEBOOK)
    print(f"\ncompare notebook: both panels complete, all cells {time.perf_counter() - t0:.1f} s")
    page.page_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def test_two_panels_share_one_colour_scale(compare_page: Any) -> None:
    page = compare_page
    assert_no_error_outputs(page)
    assert page.locator(PANELS).count() == 2
    titles = page.locator(".lsw-compare-title").all_inner_texts()
    assert titles == ["batch 32", "full batch"]
    scales = [panel_attr(page, k, ".lsw-contour", "data-scale") for k in range(2)]
    own = [panel_attr(page, k, ".lsw-contour", "data-own") for k in range(2)]
    print(f"\nshared scale {scales[0]['min']:.4g}..{scales[0]['max']:.4g}; own ranges "
          f"{[(round(o['min'], 4), round(o['max'], 4)) for o in own]}")
    assert scales[0] == scales[1], "the panels' colour scales and isolines differ"
    assert len(scales[0]["levels"]) == 12
    assert own[0] != own[1], "the two models' losses span different ranges"
    assert scales[0]["min"] == pytest.approx(min(o["min"] for o in own), rel=1e-6)
    assert scales[0]["max"] == pytest.approx(max(o["max"] for o in own), rel=1e-6)
    # one colorbar, beside the last panel: its gradient is there, not beside the first
    plots = [panel_attr(page, k, ".lsw-contour", "data-plot") for k in range(2)]
    for k, want in ((0, False), (1, True)):
        canvas = read_nth_canvas(page, f"{PANELS} .lsw-contour", k)
        p = plots[k]
        bar = canvas.region(p["x"] + p["w"] + 16, p["y"] + 10, 8, p["h"] - 20)
        colourful = float((bar.max(axis=-1) - bar.min(axis=-1) > 40).mean())
        assert (colourful > 0.5) is want, (k, colourful)
    # the saved figure (last cell) has one colorbar
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert any("colorbars: 1" in text for text in outputs), outputs
    assert not page.page_errors, page.page_errors


def test_hover_moves_the_probe_on_both_panels(compare_page: Any) -> None:
    page = compare_page
    plot = panel_attr(page, 0, ".lsw-contour", "data-plot")
    page.locator(".lsw-compare").first.scroll_into_view_if_needed()
    box = page.locator(f"{PANELS} .lsw-overlay").nth(0).bounding_box()
    x, y = data_to_css(plot, 0.5 * plot["x1"], 0.4 * plot["y0"])
    page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_function(
        """(sel) => [...document.querySelectorAll(sel + ' .lsw-overlay')]
                    .every((o) => o.dataset.hover)""",
        arg=PANELS, timeout=10_000,
    )
    hovers = [panel_attr(page, k, ".lsw-overlay", "data-hover") for k in range(2)]
    assert hovers[0] == hovers[1]
    assert hovers[0]["x"] == pytest.approx(0.5 * plot["x1"], abs=0.06)
    readouts = page.locator(f"{PANELS} .lsw-readout").all_inner_texts()
    assert all("loss =" in r and "α = " in r for r in readouts), readouts
    assert readouts[0].split("loss")[0] == readouts[1].split("loss")[0], "the same (α, β)"
    # the probe is drawn at that point on both overlays: a white dot in a dark ring
    for k in range(2):
        p = panel_attr(page, k, ".lsw-contour", "data-plot")
        px, py = data_to_css(p, hovers[k]["x"], hovers[k]["y"])
        overlay = read_nth_canvas(page, f"{PANELS} .lsw-overlay", k)
        assert overlay.at(px, py).min() > 200, f"no probe on panel {k}"
    page.locator(".lsw-compare-root").first.screenshot(path=OUTPUT / "lab-compare-hover.png")
    # and leaving one panel clears both
    page.mouse.move(box["x"] - 30, box["y"] - 30)
    page.wait_for_function(
        """(sel) => [...document.querySelectorAll(sel + ' .lsw-overlay')]
                    .every((o) => !o.dataset.hover)""",
        arg=PANELS, timeout=10_000,
    )
    assert not page.page_errors, page.page_errors


def test_a_click_draws_the_cross_sections_on_both_panels(compare_page: Any) -> None:
    page = compare_page
    plot = panel_attr(page, 1, ".lsw-contour", "data-plot")
    page.locator(".lsw-compare").first.scroll_into_view_if_needed()
    box = page.locator(f"{PANELS} .lsw-overlay").nth(1).bounding_box()
    x, y = data_to_css(plot, -0.4 * plot["x1"], 0.3 * plot["y1"])
    page.mouse.click(box["x"] + x, box["y"] + y)
    deadline = time.monotonic() + 60
    while (n := [series_pixels(read_nth_canvas(page, f"{PANELS} .lsw-curves", k))
                 for k in range(2)]) and min(n) < 300:
        assert time.monotonic() < deadline, f"cross-sections drawn: {n} curve pixels per panel"
        time.sleep(0.1)
    page.locator(".lsw-compare").first.scroll_into_view_if_needed()
    page.locator(".lsw-compare").first.screenshot(path=OUTPUT / "lab-compare.png")
    assert not page.page_errors, page.page_errors


def test_the_trajectory_is_drawn_and_its_snapshots_answer_hover(compare_page: Any) -> None:
    page = compare_page
    contour = page.locator(".lsw-root .lsw-contour").first
    page.wait_for_function(
        """() => document.querySelector('.lsw-root .lsw-contour').dataset.complete === 'true'""",
        timeout=COMPLETE_TIMEOUT_MS,
    )
    assert contour.get_attribute("data-path") == str(SNAPSHOTS)
    plot = json.loads(contour.get_attribute("data-plot"))
    overlay = page.locator(".lsw-root .lsw-overlay").first
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    # the last snapshot is the model itself, at the origin: hovering it names its step
    x, y = data_to_css(plot, 0.0, 0.0)
    page.mouse.move(box["x"] + x, box["y"] + y)
    readout = page.locator(".lsw-root .lsw-readout").first
    page.wait_for_function(
        "() => /^step \\d+ · loss /.test(document.querySelector('.lsw-root .lsw-readout')"
        ".textContent)", timeout=10_000,
    )
    assert readout.inner_text().startswith(f"step {SNAPSHOTS - 1} · loss ")
    # the path is drawn in its colour (red-orange) on the contour
    canvas = read_nth_canvas(page, ".lsw-root .lsw-contour", 0)
    inside = canvas.region(plot["x"], plot["y"], plot["w"], plot["h"]).reshape(-1, 3)
    red = np.linalg.norm(inside - np.array([0xE8, 0x41, 0x2C]), axis=-1) < 40
    print(f"\ntrajectory: {int(red.sum())} path pixels; readout {readout.inner_text()!r}")
    assert red.sum() > 100
    page.locator(".lsw-explorer").first.screenshot(path=OUTPUT / "lab-trajectory.png")
    assert not page.page_errors, page.page_errors
