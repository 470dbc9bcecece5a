"""Minkowski functionals V0, V1, V2 of excursion sets, and their Gaussian-field prediction.

Estimators (per unit area, thresholds u = nu * scale in kappa units; derivatives
per radian, computed spectrally on the periodic grid with the Nyquist
frequency's odd derivative set to zero):

    V0(u) = fraction of the area with kappa > u
    V1(u) = 1/4 < delta(kappa - u) |grad kappa| >
    V2(u) = 1/(2 pi) < delta(kappa - u) (2 k_x k_y k_xy - k_x^2 k_yy - k_y^2 k_xx) / |grad kappa|^2 >

with delta replaced by the indicator of a threshold bin divided by its width
(the estimate is the bin average of V1, V2).  For a Gaussian field of pixel
variance sigma_0^2 and sigma_1^2 = <|grad kappa|^2> (Tomita 1986, Prog. Theor.
Phys. 76, 952; Matsubara 2010):

    V0 = erfc(nu / sqrt 2) / 2
    V1 = sigma_1 / (8 sqrt 2 sigma_0) exp(-nu^2/2)            [per unit kappa, per rad]
    V2 = sigma_1^2 / (2 (2 pi)^{3/2} sigma_0^2) nu exp(-nu^2/2) [per unit kappa, per rad^2]

(nu = u / sigma_0 here).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.special import erf, erfc

from ..maps.grid import Grid

__all__ = ["derivatives", "minkowski", "gaussian_minkowski", "sigma01"]


def _wavenumbers(grid: Grid):
    n = grid.pixels
    k = 2 * np.pi * np.fft.fftfreq(n, grid.delta)
    k[n // 2] = 0.0  # the Nyquist mode has no defined odd derivative on a real grid
    ky = k[:, None]
    kx = k[None, : n // 2 + 1]
    return ky, kx


def derivatives(maps: np.ndarray, grid: Grid, workers: int = 1):
    """Spectral first and second derivatives [per rad]: (k_x, k_y, k_xx, k_yy, k_xy), each like ``maps``."""
    ky, kx = _wavenumbers(grid)
    f = scipy.fft.rfft2(maps, axes=(-2, -1), workers=workers)
    n = grid.pixels

    def inv(mult):
        return scipy.fft.irfft2(f * mult, s=(n, n), axes=(-2, -1), workers=workers)

    return inv(1j * kx), inv(1j * ky), inv(-kx * kx), inv(-ky * ky), inv(-kx * ky)


def minkowski(maps: np.ndarray, grid: Grid, edges: np.ndarray, scale: float, workers: int = 1) -> np.ndarray:
    """V0 at the bin centres and bin-averaged V1, V2 of (B, [C,] N, N) maps, thresholds ``edges * scale``.

    Returns (B, C, 3, n_bins): V0, V1, V2 in kappa units per radian (see module notes).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 3:
        maps = maps[:, None]
    kx, ky, kxx, kyy, kxy = derivatives(maps, grid, workers)
    g2 = kx**2 + ky**2
    grad = np.sqrt(g2)
    with np.errstate(invalid="ignore", divide="ignore"):
        curv = np.where(g2 > 0, (2 * kx * ky * kxy - kx**2 * kyy - ky**2 * kxx) / g2, 0.0)
    u = edges * scale
    centres = 0.5 * (u[1:] + u[:-1])
    width = np.diff(u)
    nb = centres.size
    b, c = maps.shape[:2]
    npix = maps.shape[-1] * maps.shape[-2]
    out = np.empty((b, c, 3, nb))
    flat = maps.reshape(b, c, -1)
    out[:, :, 0] = (flat[..., None] > centres).mean(axis=2)
    idx = np.digitize(flat, u) - 1
    ok = (idx >= 0) & (idx < nb)
    lin = (np.arange(b * c).reshape(b, c, 1) * nb + idx)[ok]
    for j, w in ((1, 0.25 * grad), (2, curv / (2 * np.pi))):
        s = np.bincount(lin, weights=w.reshape(b, c, -1)[ok], minlength=b * c * nb).reshape(b, c, nb)
        out[:, :, j] = s / (npix * width)
    return out


def sigma01(maps: np.ndarray, grid: Grid) -> tuple[float, float]:
    """sigma_0 and sigma_1 = <|grad kappa|^2>^{1/2} of the pixelised field, pooled over maps (spectral derivatives)."""
    maps = np.asarray(maps, dtype=np.float64)
    kx, ky = derivatives(maps, grid)[:2]
    return float(np.sqrt(np.mean(maps**2))), float(np.sqrt(np.mean(kx**2 + ky**2)))


def gaussian_minkowski(edges_nu: np.ndarray, sigma0: float, sigma1: float) -> np.ndarray:
    """Gaussian prediction (3, n_bins) for threshold bins ``edges_nu`` in units of sigma0:
    V0 at the bin centres, V1 and V2 averaged over each bin (as the estimator is)."""
    a, b = edges_nu[:-1], edges_nu[1:]
    centres = 0.5 * (a + b)
    v0 = 0.5 * erfc(centres / np.sqrt(2))
    du = (b - a) * sigma0  # bin width in kappa
    # int exp(-nu^2/2) dnu = sqrt(pi/2) [erf(b/sqrt2) - erf(a/sqrt2)];  int nu exp(-nu^2/2) dnu = e^{-a^2/2} - e^{-b^2/2}
    i0 = np.sqrt(np.pi / 2) * (erf(b / np.sqrt(2)) - erf(a / np.sqrt(2)))
    i1 = np.exp(-a**2 / 2) - np.exp(-b**2 / 2)
    v1 = sigma1 / (8 * np.sqrt(2) * sigma0) * i0 * sigma0 / du
    v2 = sigma1**2 / (2 * (2 * np.pi) ** 1.5 * sigma0**2) * i1 * sigma0 / du
    return np.stack([v0, v1, v2])
