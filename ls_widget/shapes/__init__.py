"""Shapes of loss curves and surfaces (Xu et al. 2024): classify, construct, mine, survey.

- `classify`: a curve as v-basin, v-side, w-basin, w-peak, vvv-basin, flat or other
  (classify.py), with its located extrema and a margin;
- `classify_surface`: a plane as basin, valley, saddle, wine-bottle or other (surface.py),
  with its located critical points;
- `survey`: the kinds of curves along many random directions (survey.py);
- constructions and mining run on a Landscape: ``land.construct``, ``land.mine``,
  ``land.mine_plane`` (construct.py, mine.py, mine_plane.py).

> Yichu Xu, Xin-Chun Li, Lan Li, De-Chuan Zhan. *Visualizing, Rethinking, and Mining the Loss
> Landscape of Deep Neural Networks.* arXiv:2405.12493, 2024.
"""

from .classify import KINDS, CurveShape, Extremum, classify
from .mine import Mined
from .mine_plane import MinedPlane
from .surface import SURFACE_KINDS, CriticalPoint, SurfaceShape, classify_surface
from .survey import Survey, survey

__all__ = [
    "KINDS",
    "SURFACE_KINDS",
    "CriticalPoint",
    "CurveShape",
    "Extremum",
    "Mined",
    "MinedPlane",
    "SurfaceShape",
    "Survey",
    "classify",
    "classify_surface",
    "survey",
]
