"""Every notebook in notebooks/ executes headless (nbclient) without errors.

Each runs in a fresh python3 kernel of this interpreter, in a temporary working directory.
The notebooks are committed clean (no outputs); the cells that call `explore(...)` must
display the widget (an ipywidgets view output).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROBE = "import sys; print(sys.prefix); print(sys.executable)"


def test_the_quickstart_is_there() -> None:
    assert ROOT / "notebooks" / "quickstart.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{path.name} is saved with outputs (code cells {dirty}): clear them"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"

    # Our own Jupyter data dir: no user-level kernelspec can shadow the one of this venv
    # (whose "python" argv jupyter_client runs as sys.executable). One BLAS thread: tiny
    # matmuls on a busy 2-core machine are much faster without thread contention.
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / ".jupyter-data"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / ".ipython"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    work = tmp_path / "work"
    work.mkdir()
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails

    probe = nb.cells.pop()
    prefix, executable = "".join(o.get("text", "") for o in probe.outputs).split()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve(), (
        f"the kernel ran {executable}, not this environment's python ({sys.executable})"
    )
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"cell {i}: {errors}"
    explore_cells = [c for c in nb.cells if c.cell_type == "code" and "explore(" in c.source]
    if path.name == "quickstart.ipynb":
        assert explore_cells, "the quickstart no longer calls lw.explore(...)"
        png = work / "quickstart.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for cell in explore_cells:
        shown = [o for o in cell.outputs if WIDGET_VIEW in o.get("data", {})]
        assert shown, f"no widget displayed by:\n{cell.source}"
        assert shown[0]["data"][WIDGET_VIEW]["model_id"]
