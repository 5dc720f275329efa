"""The explorer's Hessian directions: eigenpairs computed in the background, put in the bank,
shown in the `HessianPanel`.

One thread ("ls-widget-hessian") at a time computes the requested eigenpairs from both ends of
the spectrum, then the spectral density; the latest request wins. Results are cached per
(k, tol). The eigenvectors enter the bank scaled to its norm (`DirectionBank.hessian_entries`);
the axes that showed eigenvectors follow them by rank. Errors (a KeyboardInterrupt raised in
the loss included) show in the panel's status line, never in the kernel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..curvature import Density, Eigen
from ..engine.landscape import Landscape
from .bank import DirectionBank
from .controls import AxisControls, same_shown
from .faults import describe, fatal
from .panels import HessianPanel, fmt

_Axes = tuple[tuple[str, str, float], ...]


class HessianDirections:
    """The Hessian's extreme eigenvectors as bank directions, computed in a thread.

    Attributes:
        eigen: the `lw.Eigen` record of the eigenvectors in the bank (unit vectors), or None.
        density: the SLQ spectral density once computed (after the eigenpairs), else None.
        error: the error of the last computation, or None.
    """

    def __init__(
        self, landscape: Landscape, bank: DirectionBank, controls: AxisControls,
        panel: HessianPanel, restart: Callable[[], None],
    ) -> None:
        self._landscape, self._bank, self._controls = landscape, bank, controls
        self._panel, self._restart = panel, restart
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next: tuple[int, float, bool] | None = None
        self._done = threading.Event()
        self._done.set()
        self._closed = False
        self._cache: dict[tuple[int, float], Eigen] = {}
        self.eigen: Eigen | None = None
        self.density: Density | None = None
        self.error: str | None = None
        for row in controls.axes.values():
            row.direction.observe(self.highlight, names="value")

    def request(self, k: int, tol: float, select: bool) -> None:
        """Compute (or take from the cache) k eigenpairs from each end and the density, and
        put the eigenvectors in the bank; see `Explorer.add_hessian`."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        size = self._landscape.hessian.size
        if k > size:
            raise ValueError(
                f"k={k} exceeds the number of parameters in the Hessian ({size}); "
                f"ask for at most {size} eigenpairs"
            )
        key = (k, float(tol))
        with self._lock:
            cached = key in self._cache and self.density is not None and self._thread is None
            if not cached:
                self._next = (k, float(tol), select)
                self._done.clear()
                if self._thread is None:
                    self._start()
        if cached:
            eig = self._cache[key]
            self.install(eig, k, select, self._controls.state())
            self._panel.show_status(f"{_summary(eig)} (cached)")

    def _start(self) -> None:
        thread = threading.Thread(target=self._work, name="ls-widget-hessian", daemon=True)
        try:
            thread.start()
        except BaseException:  # e.g. "can't start new thread": nothing pending
            self._next = None
            self._done.set()
            raise
        self._thread = thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the computation has finished (or failed). True if within `timeout`."""
        return self._done.wait(timeout)

    def close(self) -> None:
        """Drop pending requests; a computation under way finishes but is not installed."""
        with self._lock:
            self._closed = True
            self._next = None

    # ----------------------------------------------------------------- thread
    def _work(self) -> None:
        while True:
            with self._lock:
                req, self._next = self._next, None
                if req is None or self._closed:
                    self._thread = None
                    self._done.set()
                    return
            try:
                self._compute(*req)
            except BaseException as exc:  # never into the kernel: a thread has no caller
                if fatal(exc):
                    raise
                self._failed("update", exc)

    def _compute(self, k: int, tol: float, select: bool) -> None:
        panel, hess = self._panel, self._landscape.hessian
        axes = self._controls.state()
        t0 = time.perf_counter()
        self.error = None
        eig = self._cache.get((k, tol))
        if eig is None:
            panel.show_status(f"computing Hessian eigenpairs (k={k} from each end)…")
            panel.compute_button.disabled = True
            try:
                eig = hess.eigen(k, which="both", tol=tol)
            except BaseException as exc:  # the user's model or loss failed (a
                if fatal(exc):  # KeyboardInterrupt too): show it, keep going
                    raise
                self._failed("eigenpairs", exc)
                return
            self._cache[(k, tol)] = eig
        if self._closed:
            return
        self.install(eig, k, select, axes)
        summary = _summary(eig)
        if self.density is None:
            panel.show_status(f"{summary}; computing the spectral density…")
            try:
                dens = hess.density()
            except BaseException as exc:
                if fatal(exc):
                    raise
                self._failed("spectral density", exc, prefix=f"{summary}; ")
                return
            self.density = dens
            panel.set_density(dens.grid, dens.density)
            summary += f" (+ {dens.hvps} for the density)"
        panel.show_status(f"{summary} · {time.perf_counter() - t0:.1f} s")
        panel.compute_button.disabled = False

    def _failed(self, what: str, exc: BaseException, prefix: str = "") -> None:
        self.error = describe(exc)
        self._panel.show_status(f"{prefix}Hessian {what} failed: {self.error}", error=True)
        self._panel.compute_button.disabled = False

    # ----------------------------------------------------------------- bank and panel
    def install(self, eig: Eigen, k: int, select: bool, axes: _Axes) -> None:
        """Put the eigenvectors of `eig` in the bank in place of the previous ones (axes on
        those follow by rank) and in the panel; with `select`, λ1 and λmin become the axes
        unless they changed since `axes`. Restarts the view if an axis changed."""
        entries = self._bank.hessian_entries(eig, k)
        controls = self._controls
        with controls.quiet():
            shown = controls.shown()
            remap = self._bank.replace_hessian(entries)
            self.eigen = eig
            controls.set_options(remap)
            if select and controls.state() == axes:
                labels = list(entries)
                controls.select("x", labels[0])
                controls.select("y", labels[-1])
            # A label can stay while its direction is new (k changed: same value printed,
            # but a recomputed vector, possibly of the other sign).
            changed = not same_shown(controls.shown(), shown)
            ranks = [str(d.provenance["rank"]) for d in entries.values()]
            self._panel.set_eigen(eig.values.tolist(), ranks, list(entries))
            self.highlight()
        if changed:
            self._restart()

    def highlight(self, _: Any = None) -> None:
        """Mark the eigenvectors on the axes in the panel (follows the dropdowns)."""
        axes = self._controls.axes
        self._panel.set_selection(axes["x"].direction.value, axes["y"].direction.value)


def _summary(eig: Eigen) -> str:
    return f"λmax = {fmt(eig.values[0], 4)}, λmin = {fmt(eig.values[-1], 4)}, {eig.hvps} HVPs"
