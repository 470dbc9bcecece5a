"""Binned power spectra with DESIGN 3's estimator.

C_hat(ell) = |Delta^2 rfft2(kappa)|^2 / A per mode; a bin averages its modes,
each counted by its multiplicity in the full Fourier plane (rfft2 columns
other than 0 and N/2 stand for two modes).  Cross-spectra use
Re(k_i k_j^*) / A.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..maps.grid import Grid

__all__ = ["mode_power", "bin_edges", "binned_power"]


def mode_power(maps: np.ndarray, grid: Grid, workers: int = 1) -> np.ndarray:
    """Per-mode cross power Re(k_i k_j*)/A on the rfft2 half grid: (B, C, C, N, N//2+1).

    ``maps`` is (B, C, N, N) (or (B, N, N) for one channel).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 3:
        maps = maps[:, None]
    k = scipy.fft.rfft2(maps, axes=(-2, -1), workers=workers) * grid.delta**2
    return np.real(k[:, :, None] * np.conj(k[:, None, :])) / grid.area


def bin_edges(grid: Grid, n_bins: int = 20, ell_min: float | None = None, ell_max: float | None = None) -> np.ndarray:
    """Log-spaced bin edges from the fundamental mode to the Nyquist multipole by default."""
    lo = ell_min if ell_min is not None else grid.ell_fundamental * 0.999
    hi = ell_max if ell_max is not None else grid.ell_nyquist
    return np.geomspace(lo, hi, n_bins + 1)


def binned_power(maps: np.ndarray, grid: Grid, edges: np.ndarray, cross: bool = True, workers: int = 1):
    """Binned power spectra of a batch.

    Returns
    -------
    ell_eff : (n_bins,) mode-weighted mean |ell| per bin.
    power : (B, C, C, n_bins) if ``cross`` else (B, C, n_bins) auto-spectra.
    n_modes : (n_bins,) number of full-plane modes per bin.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 3:
        maps = maps[:, None]
    ell = grid.ell_half.ravel()
    w = grid.multiplicity_half.ravel()
    idx = np.digitize(ell, edges) - 1
    nb = edges.size - 1
    ok = (idx >= 0) & (idx < nb) & (ell > 0)
    # weights matrix (modes, bins) to bin by one matmul
    n_modes = np.bincount(idx[ok], weights=w[ok], minlength=nb)
    ell_eff = np.bincount(idx[ok], weights=(w * ell)[ok], minlength=nb) / np.maximum(n_modes, 1)
    k = scipy.fft.rfft2(maps, axes=(-2, -1), workers=workers) * grid.delta**2
    k = k.reshape(*k.shape[:2], -1)[..., ok]
    wsel = (w[ok] / grid.area)
    onehot = np.zeros((ok.sum(), nb))
    onehot[np.arange(ok.sum()), idx[ok]] = wsel
    onehot /= np.maximum(n_modes, 1)
    if cross:
        p = np.real(k[:, :, None] * np.conj(k[:, None, :])) @ onehot
    else:
        p = (k.real**2 + k.imag**2) @ onehot
    return ell_eff, p, n_modes
