"""The feature vectors of the classical baselines, with one fixed scale per dataset.

Thresholds are in units of ``scale``: the pooled pixel rms of the *training*
maps (both classes), stored with the features and reused for every other set,
so no map is ever divided by its own rms (the signal is a few per cent of the
variance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..maps.grid import Grid
from .minkowski import minkowski
from .pdf import pdf
from .peaks import extremum_counts
from .power import binned_power

__all__ = ["FeatureSpec", "FEATURE_SETS", "compute_features"]

FEATURE_SETS = {
    "PS": ("ps",),
    "PS+peaks": ("ps", "peaks"),
    "PS+peaks+minima+MFs+PDF": ("ps", "peaks", "minima", "mf", "pdf"),
}


@dataclass(frozen=True)
class FeatureSpec:
    """Binning of every statistic; ``scale`` is the fixed rms thresholds are measured in."""

    grid: Grid
    scale: float
    n_ps_bins: int = 24
    peak_edges: np.ndarray = field(default_factory=lambda: np.linspace(-2.0, 5.0, 15))
    minimum_edges: np.ndarray = field(default_factory=lambda: np.linspace(-5.0, 2.0, 15))
    mf_edges: np.ndarray = field(default_factory=lambda: np.linspace(-3.0, 4.0, 15))
    pdf_edges: np.ndarray = field(default_factory=lambda: np.linspace(-3.5, 5.0, 18))

    @property
    def ps_edges(self) -> np.ndarray:
        # from the fundamental mode to the corner: every mode the optimum uses; bins that would
        # hold no mode of the grid (the sparse lowest multipoles) are merged into the next
        edges = np.geomspace(self.grid.ell_fundamental * 0.999, self.grid.ell_max * 1.0001, self.n_ps_bins + 1)
        ell = self.grid.ell_half[self.grid.ell_half > 0]
        counts = np.histogram(ell, edges)[0]
        keep = np.r_[True, counts > 0]
        return edges[keep]


def compute_features(maps: np.ndarray, spec: FeatureSpec, parts=("ps", "peaks", "minima", "mf", "pdf"),
                     workers: int = 1) -> dict[str, np.ndarray]:
    """Features of a batch (B, C, N, N) as a dict part -> (B, n_features)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 3:
        maps = maps[:, None]
    b, c = maps.shape[:2]
    out = {}
    if "ps" in parts:
        _, p, _ = binned_power(maps, spec.grid, spec.ps_edges, cross=True, workers=workers)
        iu = np.triu_indices(c)
        out["ps"] = p[:, iu[0], iu[1]].reshape(b, -1)
    if "peaks" in parts:
        out["peaks"] = extremum_counts(maps, spec.peak_edges, spec.scale, "peak")
    if "minima" in parts:
        out["minima"] = extremum_counts(maps, spec.minimum_edges, spec.scale, "minimum")
    if "mf" in parts:
        out["mf"] = minkowski(maps, spec.grid, spec.mf_edges, spec.scale, workers).reshape(b, -1)
    if "pdf" in parts:
        out["pdf"] = pdf(maps, spec.pdf_edges, spec.scale)
    return out
