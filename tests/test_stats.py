"""Summary statistics against analytic results."""

import numpy as np
import pytest
from conftest import gaussian_batch

from nulens.maps import Grid
from nulens.stats import (FeatureSpec, binned_power, compute_features, extremum_counts, gaussian_minkowski,
                          local_extrema, minkowski, pdf, sigma01)


def test_minkowski_functionals_of_gaussian_maps(fiducial_spectra):
    """Tomita (1986): V0, V1, V2 of a Gaussian field from sigma_0, sigma_1 of the pixelised field."""
    grid = Grid(128, 3.5)
    maps = gaussian_batch(fiducial_spectra[0.1], grid, 200, seed=21)
    s0, s1 = sigma01(maps, grid)
    edges = np.linspace(-3, 3, 13)
    mf = minkowski(maps, grid, edges, scale=s0)[:, 0]  # (200, 3, 12)
    mean = mf.mean(0)
    sem = mf.std(0, ddof=1) / np.sqrt(len(mf))
    theory = gaussian_minkowski(edges, s0, s1)
    z = (mean - theory) / sem
    assert np.all(np.abs(z) < 3.5), np.round(z, 1)
    # and the shapes are what they should be: V2 odd in nu, V1 even
    assert np.sign(theory[2, 0]) == -1 and np.sign(theory[2, -1]) == 1


def test_minkowski_sanity_on_a_disc():
    """A smooth bump: V0 = area fraction above threshold, V1 ~ perimeter/(4A), V2 ~ (Euler number 1)/A."""
    grid = Grid(256, 3.5)
    n = 256
    x = (np.arange(n) - n / 2) * grid.delta
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    w = 40 * grid.delta
    bump = np.exp(-r2 / (2 * w**2))[None, None]
    u = np.exp(-0.5)  # contour at r = w
    edges = np.array([u - 0.01, u + 0.01])
    v = minkowski(bump, grid, edges, scale=1.0)[0, 0, :, 0]
    area = grid.area
    assert v[0] == pytest.approx(np.pi * w**2 / area, rel=0.03)
    assert v[1] == pytest.approx(2 * np.pi * w / (4 * area), rel=0.03)
    assert v[2] == pytest.approx(1 / area, rel=0.05)


def test_peaks_and_minima_counting():
    maps = np.zeros((1, 16, 16))
    maps[0, 3, 3] = 5.0
    maps[0, 10, 12] = 2.0
    maps[0, 0, 0] = -4.0  # periodic neighbours wrap around
    assert local_extrema(maps).sum() == 2
    assert local_extrema(maps, "minimum").sum() == 1
    counts = extremum_counts(maps, np.array([0.0, 1.0, 3.0, 6.0]), scale=1.0)
    np.testing.assert_array_equal(counts, [[0, 1, 1]])
    mins = extremum_counts(maps, np.array([-5.0, -3.0]), scale=1.0, kind="minimum")
    np.testing.assert_array_equal(mins, [[1]])


def test_fixed_scale_not_per_map_rms(fiducial_spectra):
    """Scaling one map by 1.05 changes its statistics (the signal is the variance; a per-map rms would erase it)."""
    grid = Grid(64, 3.5)
    maps = gaussian_batch(fiducial_spectra[0.0], grid, 2, seed=3)
    maps[1] = maps[0] * 1.05
    spec = FeatureSpec(grid, scale=float(np.std(maps[0])))
    f = compute_features(maps, spec)
    for key in ("peaks", "minima", "mf", "pdf"):
        assert not np.allclose(f[key][0], f[key][1]), key
    np.testing.assert_allclose(f["ps"][1], 1.05**2 * f["ps"][0], rtol=1e-9)


def test_pdf_and_binned_power_shapes(fiducial_spectra):
    grid = Grid(32, 3.5)
    maps = gaussian_batch(fiducial_spectra[0.0], grid, 3, seed=1)
    p = pdf(maps, np.linspace(-10, 10, 41), scale=float(maps.std()))
    np.testing.assert_allclose(p.sum(1), 1.0)
    ell, power, nmodes = binned_power(maps, grid, np.geomspace(grid.ell_fundamental * 0.99, grid.ell_max * 1.01, 6))
    assert power.shape == (3, 1, 1, 5) and nmodes.sum() == 32 * 32 - 1  # every mode but ell = 0, counted once
