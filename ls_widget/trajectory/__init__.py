"""Training runs: record snapshots (`Recorder`), read them back (`Trajectory`), and place
them in a plane (`Trajectory.project` → `Path`), as in Li et al. 2018, §7 (Figs. 8–9).

PCA directions of a trajectory are `lw.directions.pca`.
"""

from .path import Path
from .recorder import Recorder
from .trajectory import Trajectory

__all__ = ["Path", "Recorder", "Trajectory"]
