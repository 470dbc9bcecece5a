"""The likelihood-ratio optimum and the Fisher bound."""

import numpy as np
import pytest
from conftest import gaussian_batch

from nulens.config import Cosmology
from nulens.cosmology import convergence_cl
from nulens.maps import (Grid, add_noise, cl_on_grid, draw_white, gaussian_factor, kappa0_hilbert,
                         lognormal_gaussian_power, lognormal_transform, pixel_noise_sigma, synthesize)
from nulens.optimal import (accuracy_auc, analytic_accuracy, fisher_sigma, gaussian_llr, gaussian_llr_moments,
                            lognormal_loglike, mode_covariance)


def spectra_for(grid):
    ell = grid.tabulation_ell()
    return {m: convergence_cl(ell, Cosmology(m_nu=m)) for m in (0.0, 0.1)}


def test_design_reference_accuracies():
    """DESIGN 3: exact optimal accuracy 0.997 (noiseless), 0.912 (n_gal 100), 0.779 (n_gal 30) at N = 128."""
    grid = Grid(128, 3.5)
    s = spectra_for(grid)
    for n_gal, ref in ((0, 0.997), (100, 0.912), (30, 0.779)):
        t0, t1 = (mode_covariance(s[m].ell, s[m].cl, grid, n_gal) for m in (0.0, 0.1))
        assert analytic_accuracy(t0, t1, grid) == pytest.approx(ref, abs=0.002)


def test_llr_accuracy_matches_analytic_prediction():
    grid = Grid(64, 3.5)
    s = spectra_for(grid)
    n_gal = 30
    t0, t1 = (mode_covariance(s[m].ell, s[m].cl, grid, n_gal) for m in (0.0, 0.1))
    sigma = pixel_noise_sigma(0.26, n_gal, grid.pixel_arcmin)
    scores, labels = [], []
    for c, m in enumerate((0.0, 0.1)):
        maps = gaussian_batch(s[m], grid, 2000, seed=[40, c])
        add_noise(maps, [np.random.default_rng([41, c, i]) for i in range(len(maps))], sigma)
        llr = gaussian_llr(maps, t0, t1, grid)
        scores.append(llr)
        labels.append(np.full(len(maps), c))
    moments = gaussian_llr_moments(t0, t1, grid)
    for c in (0, 1):  # the class-conditional mean and spread of the LLR, not just the accuracy
        mu, var = moments[c]
        assert abs(scores[c].mean() - mu) < 4 * np.sqrt(var / len(scores[c]))
        assert scores[c].std() == pytest.approx(np.sqrt(var), rel=0.05)
    acc, err, auc = accuracy_auc(np.concatenate(scores), np.concatenate(labels))
    predicted = analytic_accuracy(t0, t1, grid)
    assert 0.65 < predicted < 0.85
    assert abs(acc - predicted) < 2 * err, (acc, predicted, err)
    assert auc > acc


def test_fisher_bound_scales_with_area():
    """Side doubled at fixed pixel scale: four times the area, sigma(M_nu) halves."""
    for n_gal in (0.0, 30.0):
        a = fisher_sigma(Cosmology(), 0.1, Grid(32, 3.5), n_gal=n_gal)
        b = fisher_sigma(Cosmology(), 0.1, Grid(64, 7.0), n_gal=n_gal)
        assert a / b == pytest.approx(2.0, rel=0.01)


def test_fisher_step_is_stable_and_noise_hurts():
    grid = Grid(64, 3.5)
    a = fisher_sigma(Cosmology(), 0.1, grid, step=0.02)
    b = fisher_sigma(Cosmology(), 0.1, grid, step=0.01)
    assert a == pytest.approx(b, rel=0.01)
    assert fisher_sigma(Cosmology(), 0.1, grid, n_gal=30) > 1.3 * a
    # forward difference at M_nu = 0 works and is finite
    assert np.isfinite(fisher_sigma(Cosmology(), 0.0, grid))


def brute_force_lognormal_loglike(kappa, cl_g, sigma_g2, kappa0, grid):
    """Dense pixel covariance of g and the Jacobian of g(kappa), N^2 x N^2."""
    n = grid.pixels
    xi = np.fft.ifft2(cl_g).real * n * n / grid.area  # xi_g(r) on the grid
    iy, ix = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    iy, ix = iy.ravel(), ix.ravel()
    cov = xi[(iy[:, None] - iy[None, :]) % n, (ix[:, None] - ix[None, :]) % n]
    g = (np.log1p(kappa / kappa0) + 0.5 * sigma_g2).ravel()
    sign, logdet = np.linalg.slogdet(2 * np.pi * cov)
    assert sign > 0
    return -0.5 * (g @ np.linalg.solve(cov, g) + logdet) - np.sum(np.log(kappa0 + kappa))


def test_lognormal_loglike_against_brute_force():
    grid = Grid(8, 3.5)
    ell = Grid(8, 3.5).tabulation_ell()
    k0 = float(kappa0_hilbert(1.0))
    for m in (0.0, 0.1):
        s = convergence_cl(ell, Cosmology(m_nu=m))
        cl_g, s2, _ = lognormal_gaussian_power(cl_on_grid(s.ell, s.cl, grid.ell_full), np.array([k0]), grid)
        factor = gaussian_factor(cl_g[..., :5])
        g = synthesize(draw_white([np.random.default_rng(9)], 1, 8), factor, grid.delta)
        kappa = lognormal_transform(g, np.array([k0]), s2)[0, 0]
        fast = lognormal_loglike(kappa[None], cl_g[0, 0], float(s2[0]), k0, grid)[0]
        slow = brute_force_lognormal_loglike(kappa, cl_g[0, 0], float(s2[0]), k0, grid)
        assert fast == pytest.approx(slow, abs=1e-8, rel=0)


def test_gaussian_llr_multichannel_reduces_to_single():
    """With two identical-noise uncorrelated channels the LLR is the sum of the single-channel LLRs."""
    grid = Grid(32, 3.5)
    s = spectra_for(grid)
    t = {m: mode_covariance(s[m].ell, s[m].cl, grid, 30) for m in (0.0, 0.1)}
    maps = gaussian_batch(s[0.0], grid, 3, seed=2) + 0.01 * np.random.default_rng(0).normal(size=(3, 1, 32, 32))
    pair = np.concatenate([maps, maps[::-1]], axis=1)
    block = {m: np.zeros(t[m].shape[:2] + (2, 2)) for m in t}
    for m in t:
        block[m][..., 0, 0] = block[m][..., 1, 1] = t[m][..., 0, 0]
    two = gaussian_llr(pair, block[0.0], block[0.1], grid)
    one = gaussian_llr(maps, t[0.0], t[0.1], grid)
    np.testing.assert_allclose(two, one + one[::-1], rtol=1e-10)
