"""Gaussian random fields on the flat-sky grid, jointly over channels.

DESIGN 3: w ~ N(0, 1) per pixel, kappa = irfft2(rfft2(w) * sqrt(C(|ell|))) / Delta,
the ell = 0 mode zero (as C(0) = 0).  Several channels (source planes) are
correlated through the cross-spectrum matrix: kappa^i_k = sum_j L^{ij}_k w^j_k / Delta
with L L^T = C at every mode, so <kappa^i_k kappa^j_k*> = A C^{ij}.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

__all__ = ["gaussian_factor", "draw_white", "synthesize"]


def gaussian_factor(cl: np.ndarray) -> np.ndarray:
    """Matrix square root L of C^{ij} at every mode, L L^T = C.

    ``cl`` has shape (C, C, *grid) (C channels).  Returns shape (*grid, C, C).
    Uses the symmetric eigendecomposition so that rank-deficient matrices (two
    identical planes) work; negative eigenvalues from round-off are set to zero.
    For one channel this is sqrt(C).
    """
    cl = np.asarray(cl, dtype=np.float64)
    nch = cl.shape[0]
    if nch == 1:
        return np.sqrt(np.clip(cl[0, 0], 0.0, None))[..., None, None]
    mat = np.moveaxis(cl, (0, 1), (-2, -1))
    vals, vecs = np.linalg.eigh(mat)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]


def draw_white(rngs: list[np.random.Generator], channels: int, pixels: int) -> np.ndarray:
    """One (channels, N, N) standard-normal draw per generator, stacked: (B, C, N, N) float64."""
    out = np.empty((len(rngs), channels, pixels, pixels))
    for b, rng in enumerate(rngs):
        rng.standard_normal(out=out[b])
    return out


def synthesize(white: np.ndarray, factor: np.ndarray, delta: float, workers: int = 1) -> np.ndarray:
    """Correlated Gaussian maps from white noise.

    Parameters
    ----------
    white : (B, C, N, N) standard normals.
    factor : (N, N//2+1, C, C) from :func:`gaussian_factor` on the rfft2 half grid.
    delta : pixel side [rad].
    workers : threads for scipy.fft (over the batch; results do not depend on it).

    Returns
    -------
    (B, C, N, N) float64 maps with <|kappa_k|^2> = A C(|ell|) in DESIGN 3's convention.
    """
    n = white.shape[-1]
    wk = scipy.fft.rfft2(white, axes=(-2, -1), workers=workers)
    if factor.shape[-1] == 1:
        wk *= factor[..., 0, 0]
    else:
        wk = np.einsum("xyij,bjxy->bixy", factor, wk, optimize=True)
    kappa = scipy.fft.irfft2(wk, s=(n, n), axes=(-2, -1), workers=workers, overwrite_x=True)
    kappa /= delta
    return kappa
