"""Peak and minimum counts: pixels above (below) all 8 neighbours on the periodic grid."""

from __future__ import annotations

import numpy as np

__all__ = ["local_extrema", "extremum_counts"]

_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def local_extrema(maps: np.ndarray, kind: str = "peak") -> np.ndarray:
    """Boolean mask of strict local maxima (``kind='peak'``) or minima (``'minimum'``) of (..., N, N) maps."""
    maps = np.asarray(maps)
    mask = np.ones(maps.shape, dtype=bool)
    sign = 1.0 if kind == "peak" else -1.0
    m = sign * maps
    for dy, dx in _OFFSETS:
        mask &= m > np.roll(m, (dy, dx), axis=(-2, -1))
    return mask


def extremum_counts(maps: np.ndarray, edges: np.ndarray, scale: float, kind: str = "peak") -> np.ndarray:
    """Number of peaks (or minima) per map with height kappa/scale in each bin of ``edges``.

    ``maps``: (B, N, N) or (B, C, N, N) (channels are counted separately, concatenated).
    ``scale``: one fixed rms for the whole dataset, never each map's own.
    Returns (B, C * n_bins) counts.
    """
    maps = np.asarray(maps)
    if maps.ndim == 3:
        maps = maps[:, None]
    b, c = maps.shape[:2]
    nb = edges.size - 1
    mask = local_extrema(maps, kind)
    nu = maps / scale
    idx = np.digitize(nu, edges) - 1
    ok = mask & (idx >= 0) & (idx < nb)
    flat = (np.arange(b * c).reshape(b, c, 1, 1) * nb + idx)[ok]
    return np.bincount(flat, minlength=b * c * nb).reshape(b, c * nb).astype(np.float64)
