"""The flat-sky periodic grid of DESIGN 3.

A square of side L degrees with N x N pixels; Delta = L/N in radians, A = L^2
in steradians, ell = 2 pi fftfreq(N, Delta) along each axis.  Fourier
convention: kappa_k = Delta^2 sum_x kappa(x) exp(-i k.x), so that
<kappa_k kappa_k'^*> = A delta_kk' C(|ell|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Grid", "cl_on_grid"]


@dataclass(frozen=True)
class Grid:
    """Geometry of an N x N periodic flat-sky map of side ``side_deg`` degrees."""

    pixels: int
    side_deg: float

    @property
    def delta(self) -> float:
        """Pixel side [rad]."""
        return math.radians(self.side_deg) / self.pixels

    @property
    def area(self) -> float:
        """Map area A [sr]."""
        return math.radians(self.side_deg) ** 2

    @property
    def pixel_arcmin(self) -> float:
        """Pixel side [arcmin]."""
        return self.side_deg * 60.0 / self.pixels

    @property
    def ell_fundamental(self) -> float:
        """Lowest non-zero multipole on the grid, 2 pi / L."""
        return 2 * math.pi / math.radians(self.side_deg)

    @property
    def ell_nyquist(self) -> float:
        return math.pi / self.delta

    @property
    def ell_max(self) -> float:
        """Largest |ell| on the grid (the corner mode)."""
        return math.sqrt(2) * self.ell_nyquist

    @cached_property
    def ell_full(self) -> np.ndarray:
        """|ell| on the full N x N grid (numpy fft layout)."""
        k = 2 * np.pi * np.fft.fftfreq(self.pixels, self.delta)
        return np.hypot(k[:, None], k[None, :])

    @cached_property
    def ell_half(self) -> np.ndarray:
        """|ell| on the rfft2 half grid, shape (N, N//2 + 1)."""
        return np.ascontiguousarray(self.ell_full[:, : self.pixels // 2 + 1])

    @cached_property
    def multiplicity_half(self) -> np.ndarray:
        """How many full-grid modes each rfft2 mode stands for (1 or 2).

        Columns 0 and N/2 are their own mirror images; every other column's
        conjugate lies in the omitted half.
        """
        w = np.full((self.pixels, self.pixels // 2 + 1), 2.0)
        w[:, 0] = 1.0
        w[:, -1] = 1.0
        return w

    def tabulation_ell(self, n: int = 320) -> np.ndarray:
        """Log-spaced multipoles on which to tabulate C_ell for this grid (2 .. 1.02 ell_max)."""
        return np.geomspace(2.0, 1.02 * self.ell_max, n)


def cl_on_grid(ell_tab: np.ndarray, cl_tab: np.ndarray, ell: np.ndarray) -> np.ndarray:
    """Interpolate tabulated spectra onto grid multipoles.

    ``cl_tab`` has shape (..., n_ell).  Auto-spectra (positive everywhere) are
    interpolated as a cubic spline in log C vs log ell; spectra that change sign
    or touch zero (cross-spectra can) linearly in C vs log ell.  C = 0 for
    ell < 2 (including the ell = 0 mode), guarding the log.
    """
    from scipy.interpolate import CubicSpline

    ell_tab = np.asarray(ell_tab, dtype=np.float64)
    cl_tab = np.asarray(cl_tab, dtype=np.float64)
    flat = cl_tab.reshape(-1, ell_tab.size)
    x = np.log(np.clip(ell, ell_tab[0], ell_tab[-1]))
    lx = np.log(ell_tab)
    out = np.empty((flat.shape[0],) + ell.shape)
    for r, row in enumerate(flat):
        if np.all(row > 0):
            out[r] = np.exp(CubicSpline(lx, np.log(row))(x))
        else:
            out[r] = np.interp(x, lx, row)
    out[:, ell < 2] = 0.0
    return out.reshape(cl_tab.shape[:-1] + ell.shape)
