"""One-point PDF of kappa in bins of kappa / scale (one fixed scale per dataset)."""

from __future__ import annotations

import numpy as np

__all__ = ["pdf"]


def pdf(maps: np.ndarray, edges: np.ndarray, scale: float) -> np.ndarray:
    """Fraction of pixels in each bin of kappa/scale: (B, C * n_bins); pixels outside all bins are not counted."""
    maps = np.asarray(maps)
    if maps.ndim == 3:
        maps = maps[:, None]
    b, c = maps.shape[:2]
    nb = edges.size - 1
    idx = np.digitize(maps.reshape(b, c, -1) / scale, edges) - 1
    ok = (idx >= 0) & (idx < nb)
    lin = (np.arange(b * c).reshape(b, c, 1) * nb + idx)[ok]
    counts = np.bincount(lin, minlength=b * c * nb).reshape(b, c * nb)
    return counts / (maps.shape[-1] * maps.shape[-2])
