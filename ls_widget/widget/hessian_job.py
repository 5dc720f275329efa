"""The explorer's Hessian directions: eigenpairs computed in the background, put in the bank,
shown in the `HessianPanel`.

One thread ("ls-widget-hessian") at a time computes the requested eigenpairs from both ends of
the spectrum, then the spectral density; the latest request wins. H is taken over the bank's
parameter scope (`DirectionBank.hessian`), the tensors its random directions move; when the
scope changes, eigenpairs that were computed are computed again over the new one (`rescope`).
Results are cached per (scope, k, tol). The eigenvectors enter the bank scaled to its norm
(`DirectionBank.hessian_entries`); the axes that showed eigenvectors follow them by rank.
Errors (a KeyboardInterrupt raised in the loss included) show in the panel's status line,
never in the kernel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..curvature import Density, Eigen
from ..directions import Direction
from .bank import DirectionBank
from .controls import AxisControls, same_shown
from .faults import describe, fatal
from .panels import HessianPanel, fmt
from .scope import ParamScope

_Axes = tuple[tuple[str, str, float], ...]
_Key = tuple[tuple[str, ...], int, float]  # (scope names, k, tol)


class HessianDirections:
    """The Hessian's extreme eigenvectors as bank directions, computed in a thread.

    Attributes:
        eigen: the `lw.Eigen` record of the eigenvectors in the bank (unit vectors), or None.
        density: the SLQ spectral density once computed (after the eigenpairs), else None.
        error: the error of the last computation, or None.
    """

    def __init__(
        self, bank: DirectionBank, controls: AxisControls, panel: HessianPanel,
        restart: Callable[[], None],
    ) -> None:
        self._bank, self._controls = bank, controls
        self._panel, self._restart = panel, restart
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next: tuple[int, float, bool] | None = None
        self._done = threading.Event()
        self._done.set()
        self._closed = False
        self._cache: dict[_Key, Eigen] = {}
        self._densities: dict[tuple[str, ...], Density] = {}
        self._last: tuple[int, float] | None = None  # (k, tol) last asked for
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
        size = self._bank.hessian().size
        if k > size:
            raise ValueError(
                f"k={k} exceeds the number of parameters in the Hessian ({size}); "
                f"ask for at most {size} eigenpairs"
            )
        names = self._bank.scope.names
        key = (names, k, float(tol))
        with self._lock:
            self._last = (k, float(tol))
            cached = key in self._cache and names in self._densities and self._thread is None
            if not cached:
                self._next = (k, float(tol), select)
                self._done.clear()
                if self._thread is None:
                    self._start()
        if cached:
            eig, scope = self._cache[key], self._bank.scope
            self.install(eig, k, select, self._controls.state(), scope)
            self.density = dens = self._densities[names]
            self._panel.set_density(dens.grid, dens.density)
            self._panel.show_status(f"{_summary(eig, scope)} (cached)")

    def rescope(self) -> None:
        """The bank's scope changed: compute the eigenpairs last asked for again over it
        (from the cache when it was computed before), if any were asked for."""
        with self._lock:
            last = None if self._closed else self._last
        if last is not None:
            self.request(*last, select=False)

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
        panel = self._panel
        with self._controls.lock:  # the scope and its H, as one (the kernel may rescope)
            scope, hess = self._bank.scope, self._bank.hessian()
        axes = self._controls.state()
        t0 = time.perf_counter()
        self.error = None
        key = (scope.names, k, tol)
        eig = self._cache.get(key)
        if eig is None:
            panel.show_status(f"computing Hessian eigenpairs (k={k} from each end)…")
            panel.compute_button.disabled = True
            try:
                eig = hess.eigen(k, which="both", tol=tol, progress=False)
            except BaseException as exc:  # the user's model or loss failed (a
                if fatal(exc):  # KeyboardInterrupt too): show it, keep going
                    raise
                self._failed("eigenpairs", exc)
                return
            self._cache[key] = eig
        if self._closed or not self.install(eig, k, select, axes, scope):
            return  # closed, or the scope changed meanwhile: a newer request is pending
        summary = _summary(eig, scope)
        dens = self._densities.get(scope.names)
        if dens is None:
            panel.show_status(f"{summary}; computing the spectral density…")
            try:
                dens = hess.density(progress=False)
            except BaseException as exc:
                if fatal(exc):
                    raise
                self._failed("spectral density", exc, prefix=f"{summary}; ")
                return
            self._densities[scope.names] = dens
            summary += f" (+ {dens.hvps} for the density)"
        if self._bank.scope is not scope:
            return
        self.density = dens
        panel.set_density(dens.grid, dens.density)
        panel.show_status(f"{summary} · {time.perf_counter() - t0:.1f} s")
        panel.compute_button.disabled = False

    def _failed(self, what: str, exc: BaseException, prefix: str = "") -> None:
        self.error = describe(exc)
        self._panel.show_status(f"{prefix}Hessian {what} failed: {self.error}", error=True)
        self._panel.compute_button.disabled = False

    # ----------------------------------------------------------------- bank and panel
    def install(
        self, eig: Eigen, k: int, select: bool, axes: _Axes, scope: ParamScope
    ) -> bool:
        """Put the eigenvectors of `eig` (H over `scope`) in the bank in place of the previous
        ones (axes on those follow by rank) and in the panel; with `select`, λ1 and λmin
        become the axes unless they changed since `axes`. Restarts the view if an axis
        changed. Does nothing, and returns False, if the bank's scope is no longer `scope`."""
        controls = self._controls
        with controls.quiet():
            if self._bank.scope is not scope:
                return False
            entries = self._bank.hessian_entries(eig, k, scope)
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
        return True

    def highlight(self, _: Any = None) -> None:
        """Mark the eigenvectors on the axes in the panel (follows the dropdowns)."""
        axes = self._controls.axes
        self._panel.set_selection(axes["x"].direction.value, axes["y"].direction.value)


class HessianMethods:
    """The explorer's Hessian methods (a mixin of `Explorer`, kept beside the job they drive).

    The class using it sets `_hessian` (a `HessianDirections`) and `bank` (its bank).
    """

    _hessian: HessianDirections
    bank: DirectionBank

    def add_hessian(self, k: int = 5, *, select: bool = False, tol: float = 1e-6) -> None:
        """Compute the k largest and k smallest eigenpairs of H in the background, then the
        spectral density, and put the 2k eigenvectors in the bank. H is taken over the
        parameters the explorer moves (`Explorer.params`), and computed again when they change.

        Returns at once; progress and errors show in the panel's status line, the result in
        `eigen` and `density` (wait with `wait_hessian`). Results are cached: asking again for
        the same k computes nothing. The bank labels are "λ1 = …", "λ2 = …" (descending) and
        "λmin+1 = …", "λmin = …" (the most negative last). Each eigenvector is scaled to the
        norm of the bank's first random direction (≈ ‖θ‖ when filter-normalized), so the span
        slider means the same on every axis and the mix slider blends directions of one size;
        Böttcher & Wheeler's unit eigenvectors are `eigen.vectors`.

        Args:
            k: eigenpairs from each end of the spectrum.
            select: when done, put λ1 on the x axis and λmin on the y axis (Böttcher &
                Wheeler's saddle-revealing plane), unless the axes were changed meanwhile.
            tol: relative accuracy of the Lanczos eigenpairs (ARPACK's `tol`). The bottom of
                a network's spectrum is a dense cluster near 0 where tighter tolerances cost
                many more Hessian-vector products (digits MLP, k=3: 249 at 1e-4, 701 at 1e-6,
                about 2000 at 1e-8); 1e-6 is ample for choosing plot directions.
        """
        self._hessian.request(k, tol, select)

    def wait_hessian(self, timeout: float | None = None) -> bool:
        """Block until the Hessian computation has finished (or failed: see `hessian_error`).
        True if it finished within `timeout` seconds."""
        return self._hessian.wait(timeout)

    @property
    def eigen(self) -> Eigen | None:
        """The `lw.Eigen` record of the eigenvectors in the bank (unit vectors), or None
        before they are computed."""
        return self._hessian.eigen

    @property
    def density(self) -> Density | None:
        """The SLQ spectral density of H once computed (after the eigenpairs), else None."""
        return self._hessian.density

    @property
    def hessian_error(self) -> str | None:
        """The error of the last Hessian computation, or None."""
        return self._hessian.error

    @property
    def hessian_labels(self) -> list[str]:
        """Bank labels of the Hessian eigenvectors, by descending eigenvalue."""
        return self.bank.hessian_labels

    def hessian_entries(self, eig: Eigen, k: int) -> dict[str, Direction]:
        """Bank label → eigenvector scaled to the bank's random-direction norm (see
        `add_hessian`); its provenance adds "rank", "scale", "scaled_to" and the parameters
        the explorer moves (`DirectionBank.hessian_entries`)."""
        return self.bank.hessian_entries(eig, k)


def _summary(eig: Eigen, scope: ParamScope) -> str:
    over = f" over {scope.short}" if scope.restricted else ""
    return (f"λmax = {fmt(eig.values[0], 4)}, λmin = {fmt(eig.values[-1], 4)}, "
            f"{eig.hvps} HVPs{over}")
