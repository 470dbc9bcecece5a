"""Shape noise and smoothing."""

import numpy as np
import pytest

from nulens.maps import Grid, add_noise, gaussian_beam, noise_power, pixel_noise_sigma, smooth
from nulens.stats import mode_power


@pytest.mark.parametrize("n_gal", [10.0, 30.0, 100.0])
def test_noise_power(n_gal):
    grid = Grid(128, 3.5)
    sigma = pixel_noise_sigma(0.26, n_gal, grid.pixel_arcmin)
    maps = np.zeros((50, 1, 128, 128))
    add_noise(maps, [np.random.default_rng([5, i]) for i in range(50)], sigma)
    p = mode_power(maps, grid)[:, 0, 0]
    measured = np.average(p[:, grid.ell_half > 0], weights=np.broadcast_to(grid.multiplicity_half[grid.ell_half > 0],
                                                                          p[:, grid.ell_half > 0].shape))
    assert measured == pytest.approx(noise_power(0.26, n_gal), rel=0.02)
    # sigma_e^2 / n_gal with n_gal per steradian, written out
    n_sr = n_gal * (180 * 60 / np.pi) ** 2
    assert noise_power(0.26, n_gal) == pytest.approx(0.26**2 / n_sr, rel=1e-12)


def test_pixel_sigma_uses_arcmin2():
    # 3.5 deg / 128 px = 1.640625 arcmin pixels
    assert pixel_noise_sigma(0.26, 30, 1.640625) == pytest.approx(0.26 / np.sqrt(30 * 1.640625**2))


def test_smoothing_is_the_gaussian_kernel():
    grid = Grid(64, 3.5)
    delta = np.zeros((1, 1, 64, 64))
    delta[0, 0, 0, 0] = 1.0
    out = smooth(delta, grid, sigma_arcmin=5.0)
    # an impulse becomes a unit-sum Gaussian of std 5 arcmin (periodic, far from the edges of the box)
    assert out.sum() == pytest.approx(1.0, rel=1e-10)
    x = (np.fft.fftfreq(64) * 64) * grid.pixel_arcmin
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    var = (out[0, 0] * r2).sum() / 2
    assert np.sqrt(var) == pytest.approx(5.0, rel=0.01)
    assert gaussian_beam(np.array([0.0]), 3.0)[0] == 1.0
