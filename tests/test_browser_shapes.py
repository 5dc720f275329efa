"""Browser end-to-end: the explorer's "shapes" panel in JupyterLab, in Debian's Chromium
through Playwright, with tests/test_browser.py's server and browser fixtures.

A notebook written here trains a digits MLP and explores it; the test opens the shapes panel,
waits for the label line and the gallery's curves (bqplot SVGs), clicks a curve and checks
that the axis took its direction and the view redrew. One notebook session: the whole module
runs in well under 90 s. The screenshot goes to test-output/lab-shapes.png (and /tmp).

    .venv/bin/python -m pytest tests/test_browser_shapes.py -q -s
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from test_browser import (  # noqa: F401  (browser and lab are fixtures used by name)
    COMPLETE,
    OUTPUT,
    VIEWPORT,
    Lab,
    PageErrors,
    assert_no_error_outputs,
    browser,
    lab,
    run_all_cells,
    wait_all_cells_ran,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "shapes.ipynb"
CARDS = ".lsw-shapes-panel .lsw-shape-card"
PICKED = "constructed v-side"

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
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(150):
    opt.zero_grad()
    F.cross_entropy(model(X), y).backward()
    opt.step()""",
    """\
e = lw.explore(model, (X, y), n=21)
e""",
]


def _notebook() -> dict[str, Any]:
    def cell(source: str) -> dict[str, Any]:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                "source": source}

    return {"cells": [cell(c) for c in CELLS], "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}


def axis_value(page: Any, axis: str) -> str:
    """The label selected in the explorer's "<axis> axis" dropdown."""
    select = page.locator(".lsw-explorer .widget-dropdown").filter(
        has=page.locator("label", has_text=re.compile(f"^{axis} axis$"))).locator("select")
    text = select.first.evaluate("s => s.options[s.selectedIndex].text")
    return str(text).replace("\xa0", " ")  # ipywidgets shows spaces as no-break spaces


def test_shapes_panel_labels_gallery_and_pick(browser: Any, lab: Lab) -> None:  # noqa: F811
    (lab.root / NOTEBOOK).write_text(json.dumps(_notebook()))
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = PageErrors(page)
    try:
        t0 = time.perf_counter()
        page.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        lab.wait_kernel_idle(NOTEBOOK)
        run_all_cells(page)
        page.wait_for_selector(COMPLETE, state="attached", timeout=60_000)
        wait_all_cells_ran(page, 60_000)
        lab.wait_kernel_idle(NOTEBOOK)
        assert_no_error_outputs(page)
        t_view = time.perf_counter() - t0

        page.locator(".lsw-explorer button", has_text="shapes").click()
        page.wait_for_function(
            """() => /^surface: \\S+ · x: \\S+ · y: \\S+/.test(
                document.querySelector('.lsw-shape-labels')?.textContent ?? '')""",
            timeout=30_000,
        )
        labels = page.locator(".lsw-shape-labels").inner_text()
        # Every card's curve drawn: an SVG path with points, under a title naming its kind.
        page.wait_for_function(
            """(sel) => {
                const cards = [...document.querySelectorAll(sel)];
                return cards.length >= 5 && cards.every((c) => {
                    const p = c.querySelector('.lsw-shape-plot svg path.line');
                    return p && (p.getAttribute('d') || '').length > 20;
                });
            }""",
            arg=CARDS, timeout=30_000,
        )
        t_gallery = time.perf_counter() - t0
        titles = page.locator(f"{CARDS} .widget-html").all_inner_texts()
        kinds = {"v-basin", "v-side", "w-basin", "w-peak", "vvv-basin", "flat", "other"}
        assert sum(t.strip() in kinds for t in titles) >= 5, titles
        print(f"\nlabels {labels!r}; gallery {titles}")

        # Click the constructed v-side's curve with the y axis as target.
        assert axis_value(page, "y") == "random #1"
        gen0 = int(page.locator(".lsw-contour").first.get_attribute("data-gen"))
        panel = page.locator(".lsw-shapes-panel")
        panel.locator("button", has_text=re.compile(r"^\s*y axis\s*$")).click()
        card = page.locator(CARDS).filter(has_text=PICKED)
        card.locator(".lsw-shape-plot").click()
        page.wait_for_function(
            """(gen0) => {
                const c = document.querySelector('.lsw-contour');
                return Number(c.dataset.gen) > gen0 && c.dataset.complete === 'true';
            }""",
            arg=gen0, timeout=30_000,
        )
        assert axis_value(page, "y") == PICKED
        assert axis_value(page, "x") == "random #0"
        # The card on the y axis is framed in the y colour (#3182bd).
        border = card.first.evaluate("c => getComputedStyle(c).borderTopColor")
        assert border == "rgb(49, 130, 189)", border
        print(f"view {t_view:.1f} s, gallery {t_gallery:.1f} s, pick redrawn "
              f"{time.perf_counter() - t0:.1f} s")
        explorer = page.locator(".lsw-explorer").first
        panel.scroll_into_view_if_needed()
        for path in (OUTPUT / "lab-shapes.png", "/tmp/lab-shapes.png"):
            explorer.screenshot(path=path)
        assert not errors, errors
    finally:
        context.close()
