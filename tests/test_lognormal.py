"""Lognormal maps: target C_ell, the kappa > -kappa0 bound, the lognormal skewness, and no one-number leak."""

import numpy as np
import pytest
from scipy import stats

from nulens.maps import (Grid, cl_on_grid, draw_white, gaussian_factor, kappa0_hilbert,
                         lognormal_gaussian_power, lognormal_transform, synthesize)
from nulens.stats import mode_power


def lognormal_maps(spectra, grid, n, seed, draw_zero_mode=True):
    k0 = kappa0_hilbert(np.array([1.0]))
    cl_g, s2, clipped = lognormal_gaussian_power(cl_on_grid(spectra.ell, spectra.cl, grid.ell_full), k0, grid,
                                                 draw_zero_mode=draw_zero_mode)
    factor = gaussian_factor(cl_g[..., : grid.pixels // 2 + 1])
    rngs = [np.random.default_rng([seed, i]) for i in range(n)]
    g = synthesize(draw_white(rngs, 1, grid.pixels), factor, grid.delta)
    return lognormal_transform(g, k0, s2), k0[0], s2[0], clipped


def test_kappa0_reference():
    assert kappa0_hilbert(1.0) == pytest.approx(0.0298, abs=1e-4)


def test_recovered_power_min_and_skewness(fiducial_spectra):
    grid = Grid(128, 3.5)
    s = fiducial_spectra[0.1]
    n = 400
    maps, k0, s2, clipped = lognormal_maps(s, grid, n, seed=3)
    assert 0 <= clipped < 0.01
    # every map above -kappa0
    assert np.all(maps.min(axis=(-3, -2, -1)) > -k0)
    # power within 3 % of the target (or 3 standard errors) in bins up to ell_Nyquist / 2
    target = cl_on_grid(s.ell, s.cl, grid.ell_half)[0, 0]
    p = mode_power(maps, grid)[:, 0, 0]
    edges = np.geomspace(grid.ell_fundamental * 0.999, grid.ell_nyquist / 2, 9)
    idx = np.digitize(grid.ell_half, edges) - 1
    w = grid.multiplicity_half
    for b in range(8):
        sel = (idx == b) & (grid.ell_half > 0)
        est = (p[:, sel] * w[sel]).sum(1) / (target[sel] * w[sel]).sum()
        sem = est.std(ddof=1) / np.sqrt(n)
        assert abs(est.mean() - 1) < max(0.03, 3 * sem), (b, est.mean(), sem)
    # one-point skewness of a shifted lognormal: (e^s2 + 2) sqrt(e^s2 - 1), s2 the total variance of g
    predicted = (np.exp(s2) + 2) * np.sqrt(np.expm1(s2))
    groups = maps.reshape(20, -1)  # 20 groups of 20 maps: error from their scatter
    skews = stats.skew(groups, axis=1)
    assert predicted > 0.3
    assert abs(skews.mean() - predicted) < 3 * skews.std(ddof=1) / np.sqrt(20), (skews.mean(), predicted)


def leak_accuracy(x0, x1):
    """Accuracy of the best single threshold on one number: fitted on the first half, scored on the second."""
    h0, h1 = len(x0) // 2, len(x1) // 2
    train = np.concatenate([x0[:h0], x1[:h1]])
    y = np.r_[np.zeros(h0), np.ones(h1)]
    order = np.argsort(train)
    ys = y[order]
    # accuracy of "class 1 above t" for t between consecutive sorted values, and of its mirror
    above = (np.r_[0, np.cumsum(1 - ys)] + np.r_[np.cumsum(ys[::-1])[::-1], 0]) / ys.size
    k = int(np.argmax(np.maximum(above, 1 - above)))
    sign = 1 if above[k] >= 1 - above[k] else -1
    t = np.r_[-np.inf, train[order]][k]
    test = np.concatenate([x0[h0:], x1[h1:]])
    yt = np.r_[np.zeros(len(x0) - h0), np.ones(len(x1) - h1)]
    pred = (test > t) if sign == 1 else (test <= t)
    return np.mean(pred == yt)


def test_no_one_number_leak(fiducial_spectra):
    """mean(ln(1 + kappa/kappa0)) must not tell the classes apart (DESIGN 3); it does when g's zero mode is fixed."""
    grid = Grid(128, 3.5)
    n = 1000
    res = {}
    for drawn in (True, False):
        stat = []
        for c, m in enumerate((0.0, 0.1)):
            maps, k0, _, _ = lognormal_maps(fiducial_spectra[m], grid, n, seed=100 + c, draw_zero_mode=drawn)
            stat.append(np.log1p(maps / k0).mean(axis=(-3, -2, -1)))
        res[drawn] = leak_accuracy(*stat)
    assert res[True] <= 0.57, res
    assert res[False] > 0.99, res  # the artifact the drawn zero mode removes
