r"""The command line: ``ls-widget line|plane|hessian|pca`` over the same API as Python.

::

    ls-widget plane --model pkg.models:build --weights ckpt.pt --data pkg.data:train \\
        --n 51 --span 1 --out run.npz
    ls-widget plane ... --out run.npz --resume    # after a kill: only the rest is computed

``--model`` names a function returning the ``nn.Module`` (``module:function`` or
``file.py:function``), ``--weights`` a ``torch.save``d state dict (or a dict with it under
``"state_dict"`` or ``"model"``), ``--data`` a function without arguments returning anything
`lw.Landscape` accepts. Directions are seeded (``--seed``; the plane's second is seed + 1).
A line or plane is checkpointed beside its output as it goes (``run.npz.partial.npz``), and
``--resume`` continues it without computing a finished tile again: the output is the same
file, bit for bit, as a run never stopped. A bad argument ends with status 2 and a last line
naming the value; a failure while running with status 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from ._cli_errors import CliError
from ._cli_grid import Interrupted, Terminated
from ._cli_hessian import hessian
from ._cli_jobs import line_or_plane, pca
from ._cli_load import SPEC_HELP
from .engine.memory import parse_memory

__all__ = ["build_parser", "main"]

PROG = "ls-widget"
_NEGATIVE_VALUED = ("--span", "--xrange", "--yrange")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _points(text: str) -> tuple[int, ...]:
    """``51`` or ``51,31`` (x, y), each at least 2."""
    try:
        ns = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of points; e.g. 51, or 51,31 for x and y") from None
    if not 1 <= len(ns) <= 2 or min(ns) < 2:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give 1 or 2 numbers of points, each at least 2 (e.g. 51 or 51,31)")
    return ns


def _pair(text: str) -> tuple[float, float]:
    """``lo,hi`` with lo < hi, both finite."""
    try:
        lo, hi = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range lo,hi (e.g. -0.5,1.5)") from None
    if not (abs(lo) < float("inf") and abs(hi) < float("inf") and lo < hi):
        raise argparse.ArgumentTypeError(f"{text!r}: need finite lo < hi (e.g. -0.5,1.5)")
    return lo, hi


def _span(text: str) -> float | tuple[float, float]:
    """``s`` (meaning -s,s) or ``lo,hi``."""
    if "," in text:
        return _pair(text)
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number s or a range lo,hi") from None
    if not 0 < s < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be positive (the grid runs from -s to s)")
    return s


def _memory(text: str) -> int:
    try:
        return parse_memory(text, "--memory")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more seconds")
    return value


def _tol(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive fraction, e.g. 0.01")
    return value


def _params(text: str) -> str | list[str]:
    """``trainable``, ``all``, ``biasbn`` (hessian) or comma-separated glob patterns."""
    if text in ("trainable", "all", "biasbn"):
        return text
    return [p for p in text.split(",") if p]


def _choice(*names: str) -> Callable[[str], str | None]:
    """An argument type: one of `names`, or ``none`` for None."""
    def parse(text: str) -> str | None:
        if text == "none":
            return None
        if text not in names:
            raise argparse.ArgumentTypeError(
                f"{text!r}: choose from {', '.join(names)} or none")
        return text
    return parse


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _common(p: argparse.ArgumentParser, *, weights: bool = True) -> None:
    """The options of every command: what to evaluate, where, and how to run."""
    g = p.add_argument_group("model and data")
    g.add_argument("--model", required=True, metavar="SPEC",
                   help=f"a function returning the torch.nn.Module: {SPEC_HELP}")
    if weights:
        g.add_argument("--weights", metavar="FILE",
                       help="a torch.save'd state dict (or a dict with 'state_dict' or 'model')")
    g.add_argument("--data", required=True, metavar="SPEC",
                   help="a function without arguments returning the data: (X, y), a Dataset, a "
                   f"DataLoader... ({SPEC_HELP})")
    g.add_argument("--loss", metavar="SPEC", help="a torch.nn.functional loss (mse_loss) or "
                   f"{SPEC_HELP}; default: the model's own loss, else cross-entropy")
    g.add_argument("--metric", action="append", default=[], metavar="SPEC",
                   help="another value per point: accuracy, error, or [name=]" + SPEC_HELP +
                   " (repeatable)")
    r = p.add_argument_group("running")
    r.add_argument("--device", default="auto",
                   help="cpu, cuda, cuda:N, or auto (CUDA when present; default)")
    r.add_argument("--memory", type=_memory, default="512MB",
                   help="the engine's memory budget beyond data and model (default 512MB)")
    r.add_argument("--batch-size", type=_positive_int, metavar="N",
                   help="samples per batch (default: the largest that fits the budget)")
    r.add_argument("--out", required=True, metavar="FILE", help="the output file")
    r.add_argument("--force", action="store_true", help="overwrite an existing output")
    r.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")
    r.add_argument("--debug", action="store_true", help="show the traceback of an error")


def _grid_options(p: argparse.ArgumentParser, k: int, *, pca: bool = False) -> None:
    g = p.add_argument_group("grid")
    default = "1.25 × the path's reach" if pca else "1"
    g.add_argument("--n", type=_points, default=(51,) if k == 1 else (41,),
                   help="points per axis" + ("" if k == 1 else " (or NX,NY)") +
                   f" (default {51 if k == 1 else 41})")
    g.add_argument("--span", type=_span, default=None,
                   help=f"s for the range -s..s, or lo,hi (default {default})")
    g.add_argument("--xrange", type=_pair, metavar="LO,HI", help="the x range (overrides --span)")
    if k == 2:
        g.add_argument("--yrange", type=_pair, metavar="LO,HI",
                       help="the y range (overrides --span)")
    g.add_argument("--adaptive", action="store_true",
                   help="evaluate finer levels only where interpolation misses")
    g.add_argument("--tol", type=_tol, default=0.01,
                   help="adaptive tolerance, a fraction of the value range (default 0.01)")
    g.add_argument("--max-points", type=_positive_int, metavar="N",
                   help="refuse grids over N points (default 1,000,000)")
    j = p.add_argument_group("resuming")
    j.add_argument("--resume", action="store_true",
                   help="continue a stopped job from the checkpoint beside --out")
    j.add_argument("--checkpoint-every", type=_seconds, default=5.0, metavar="SECONDS",
                   help="write the checkpoint at most this often (0: after every tile; "
                   "default 5)")


def _direction_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("directions")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of the first direction; the second's is seed + 1 (default 0)")
    g.add_argument("--norm", type=_choice("filter", "layer", "model"), default="filter",
                   help="normalization: filter (default), layer, model or none")
    g.add_argument("--ignore", type=_choice("biasbn"), default="biasbn",
                   help="biasbn (default: biases and BatchNorm stay still) or none")
    g.add_argument("--params", type=_params, default="trainable",
                   help="which tensors move: trainable (default), all, or glob,glob")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ls-widget`` and its four commands."""
    parser = argparse.ArgumentParser(prog=PROG, description="Loss landscapes of PyTorch models "
                                     "from the command line (see `ls-widget COMMAND -h`).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, k, what in (("line", 1, "the loss along one seeded random direction"),
                          ("plane", 2, "the loss over the plane of two seeded directions")):
        p = sub.add_parser(name, help=what, description=what)
        _common(p)
        _grid_options(p, k)
        _direction_options(p)
    p = sub.add_parser("pca", help="the plane of a training run's principal directions",
                       description="PCA directions of checkpoints (files or a Recorder "
                       "folder), the plane around the last one, the run's path in meta['path']")
    _common(p, weights=False)
    p.add_argument("--checkpoints", nargs="+", required=True, metavar="FILE",
                   help="checkpoint files in training order, or a lw.Recorder folder")
    p.add_argument("--ignore", type=_choice("biasbn"), default="biasbn",
                   help="biasbn (default) or none")
    _grid_options(p, 2, pca=True)
    p = sub.add_parser("hessian", help="eigenvalues, trace and density of the Hessian",
                       description="extreme eigenvalues of H (and its trace, spectral density) "
                       "to .json or .npz")
    _common(p)
    h = p.add_argument_group("hessian")
    h.add_argument("--k", type=_count, default=5, help="eigenpairs at each end (0: none)")
    h.add_argument("--which", choices=["top", "bottom", "both"], default="both")
    h.add_argument("--method", choices=["lanczos", "arpack"], default="lanczos")
    h.add_argument("--trace", choices=["hutchinson", "projection"],
                   help="also estimate tr H this way")
    h.add_argument("--samples", type=_positive_int, default=100, help="trace samples")
    h.add_argument("--density", action="store_true", help="also the spectral density (SLQ)")
    h.add_argument("--iterations", type=_positive_int, default=80, help="SLQ Lanczos steps")
    h.add_argument("--vectors", type=_positive_int, default=4, help="SLQ random vectors")
    h.add_argument("--seed", type=int, default=0, help="seed of the random start vectors")
    h.add_argument("--params", type=_params, default="trainable",
                   help="H over: trainable (default), all, biasbn (no biases/BN) or glob,glob")
    return parser


def _joined(argv: Sequence[str]) -> list[str]:
    """``--span -1,2`` as ``--span=-1,2``: argparse takes a value starting with "-" for an
    option unless it is a plain negative number."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in _NEGATIVE_VALUED:
            nxt = next(it, None)
            if nxt is not None and nxt[:1] == "-" and nxt[1:2] in "0123456789.":
                out.append(f"{arg}={nxt}")
                continue
            out.append(arg)
            if nxt is not None:
                out.append(nxt)
            continue
        out.append(arg)
    return out


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "line": line_or_plane, "plane": line_or_plane, "pca": pca, "hessian": hessian,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ls-widget`` with `argv` (default: the process's); returns the exit status."""
    args = build_parser().parse_args(_joined(sys.argv[1:] if argv is None else argv))
    try:
        with _sigterm_unwinds():
            return COMMANDS[args.command](args)
    except CliError as exc:
        return _fail(args, exc, f"{PROG} {args.command}: error: {exc}", exc.status)
    except Interrupted as exc:
        return _fail(args, exc, f"{PROG} {args.command}: {exc}", exc.status)
    except KeyboardInterrupt as exc:
        return _fail(args, exc, f"{PROG} {args.command}: interrupted", 130)
    except Terminated as exc:
        return _fail(args, exc, f"{PROG} {args.command}: terminated", 143)
    except Exception as exc:
        return _fail(args, exc, f"{PROG} {args.command}: error: {type(exc).__name__}: {exc} "
                     "(--debug shows where)", 1)


def _fail(args: argparse.Namespace, exc: BaseException, line: str, status: int) -> int:
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(" ".join(line.split()), file=sys.stderr)
    return status


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a scheduler ending the job) raises `Terminated` in the main thread, so the job
    unwinds and keeps its finished tiles, as on Ctrl-C; the old handler comes back after."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)

