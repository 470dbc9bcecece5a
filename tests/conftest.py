"""Shared fixtures.  C_ell computed here are cached on disk under .pytest_cache
(keyed by a hash of every input, so never stale) and shared by xdist workers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NULENS_CACHE", str(ROOT / ".pytest_cache" / "nulens-cl"))


@pytest.fixture(scope="session")
def fiducial_spectra():
    """Tabulated C_ell (z_s = 1) of the two fiducial classes on a 128-pixel grid's ell range."""
    from nulens.config import Cosmology
    from nulens.cosmology import convergence_cl
    from nulens.maps import Grid

    ell = Grid(512, 3.5).tabulation_ell()
    return {m: convergence_cl(ell, Cosmology(m_nu=m)) for m in (0.0, 0.1)}


def gaussian_batch(spectra, grid, n, seed, factor_fn=None):
    """n Gaussian maps (n, 1, N, N) drawn from tabulated spectra on ``grid``."""
    from nulens.maps import cl_on_grid, draw_white, gaussian_factor, synthesize

    rng = np.random.default_rng(seed)
    factor = gaussian_factor(cl_on_grid(spectra.ell, spectra.cl, grid.ell_half))
    white = rng.standard_normal((n, spectra.cl.shape[0], grid.pixels, grid.pixels))
    return synthesize(white, factor, grid.delta)
