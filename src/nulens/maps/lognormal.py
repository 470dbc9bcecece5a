"""Lognormal convergence fields with a target C_ell (DESIGN 3).

kappa = kappa0 (exp(g - sigma_g^2 / 2) - 1), g Gaussian with variance sigma_g^2.
The Gaussian field's power follows from the correlation function on the grid,
xi_g = ln(1 + xi_kappa / kappa0^2) (Hilbert, Hartlap & Schneider 2011, A&A 536,
A85), so the lognormal map has the target C_ell up to the clipped negative
Gaussian power (reported).

The zero mode of g is drawn, never fixed: it gets the power C_g at the lowest
grid multipole, i.e. the patch mean of g has variance ~C_g(ell -> 0)/A, and
sigma_g^2 is the total variance including it.  Fixing it to zero makes
mean(ln(1 + kappa/kappa0)) = -sigma_g^2/2 exactly, a one-number artifact that
separates the classes perfectly.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .grid import Grid

__all__ = ["kappa0_hilbert", "lognormal_gaussian_power", "lognormal_transform"]


def kappa0_hilbert(z_s) -> np.ndarray:
    """Minimum convergence (lognormal shift) kappa0(z_s), Hilbert et al. 2011 eq. (14) fit.

    kappa0 = 0.008 z + 0.029 z^2 - 0.0079 z^3 + 0.00065 z^4; kappa0(1.0) = 0.0298.
    """
    z = np.asarray(z_s, dtype=np.float64)
    return 0.008 * z + 0.029 * z**2 - 0.0079 * z**3 + 0.00065 * z**4


def lognormal_gaussian_power(cl_full: np.ndarray, kappa0: np.ndarray, grid: Grid, draw_zero_mode: bool = True):
    """Power of the Gaussian field g that gives lognormal maps with power ``cl_full``.

    Parameters
    ----------
    cl_full : (C, C, N, N) target C^{ij}_kappa on the full grid (zero at ell = 0).
    kappa0 : (C,) lognormal shifts.
    grid : the map grid.
    draw_zero_mode : give g's ell = 0 mode the power at the lowest multipole
        (True, the physical choice) or zero (only to demonstrate the artifact).

    Returns
    -------
    cl_g : (C, C, N, N) Gaussian-field power on the full grid, positive semi-definite
        at every mode (negative eigenvalues clipped).
    sigma_g2 : (C,) total pixel variance of g, (1/A) sum_grid C_g^{ii}.
    clipped_fraction : sum of clipped negative eigenvalues / sum of |eigenvalues|.
    """
    n = grid.pixels
    k0 = np.asarray(kappa0, dtype=np.float64)
    # xi(r) = (1/A) sum_k C(k) exp(i k r) = (N^2 / A) ifft2(C)
    xi = scipy.fft.ifft2(cl_full, axes=(-2, -1)).real * (n * n / grid.area)
    xi_g = np.log1p(xi / (k0[:, None, None, None] * k0[None, :, None, None]))
    cl_g = scipy.fft.fft2(xi_g, axes=(-2, -1)).real * (grid.area / (n * n))
    mat = np.moveaxis(cl_g, (0, 1), (-2, -1))
    mat = 0.5 * (mat + np.swapaxes(mat, -1, -2))
    mat[0, 0] = 0.0  # the zero mode is set below, not clipped
    vals, vecs = np.linalg.eigh(mat)
    neg = np.clip(vals, None, 0.0)
    clipped_fraction = float(-neg.sum() / np.abs(vals).sum())
    vals = np.clip(vals, 0.0, None)
    mat = (vecs * vals[..., None, :]) @ np.swapaxes(vecs, -1, -2)
    if draw_zero_mode:
        lowest = [(1, 0), (0, 1), (n - 1, 0), (0, n - 1)]
        mat[0, 0] = np.mean([mat[i, j] for i, j in lowest], axis=0)
    else:
        mat[0, 0] = 0.0
    cl_g = np.moveaxis(mat, (-2, -1), (0, 1))
    sigma_g2 = np.einsum("iixy->i", cl_g) / grid.area
    return np.ascontiguousarray(cl_g), sigma_g2, clipped_fraction


def lognormal_transform(g: np.ndarray, kappa0: np.ndarray, sigma_g2: np.ndarray) -> np.ndarray:
    """kappa = kappa0 (exp(g - sigma_g^2/2) - 1) per channel; g has shape (B, C, N, N)."""
    k0 = np.asarray(kappa0, dtype=np.float64)[None, :, None, None]
    s2 = np.asarray(sigma_g2, dtype=np.float64)[None, :, None, None]
    return k0 * np.expm1(g - 0.5 * s2)
