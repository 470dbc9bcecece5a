"""The ceiling: likelihood-ratio classifiers and the Fisher bound on M_nu (DESIGN 3).

Gaussian maps with class spectra P_c, noise power N and smoothing beam B have
Fourier modes d_k (DESIGN 3 convention) with <d_k d_k^dagger> = A T_c,
T_c = B^2 (P_c + N 1) (channel matrices for tomography).  Summed over the full
grid, k != 0:

    LLR = 1/2 sum_k [ d_k^dagger (T_0^-1 - T_1^-1) d_k / A - ln det(T_1 T_0^-1) ],   class 1 where LLR > 0,
    F   = 1/2 sum_k tr(T^-1 dT/dM T^-1 dT/dM),   sigma(M_nu) >= F^-1/2.

On the rfft2 half grid each mode is weighted by its multiplicity / 2.  The
LLR is a sum of many independent terms, so its class-conditional mean and
variance give the analytic (Gaussian-approximation) accuracy.

For noiseless, unsmoothed lognormal maps, kappa = kappa0 (exp(g - sigma_g^2/2) - 1)
is an invertible pointwise transform of a Gaussian field g (zero mode
included), so the exact field-level likelihood is
    ln p(kappa) = -1/2 sum_k [ |g_k|^2 / (A C_g) + ln(2 pi C_g / Delta^2) ] - sum_x ln(kappa0 + kappa_x)
with g = ln(1 + kappa/kappa0) + sigma_g^2/2; the Jacobian is the same for both
classes when kappa0 is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.stats import norm

from .maps.grid import Grid, cl_on_grid
from .maps.lognormal import kappa0_hilbert, lognormal_gaussian_power
from .maps.observe import gaussian_beam, noise_power

__all__ = [
    "mode_covariance", "gaussian_llr", "gaussian_llr_moments", "analytic_accuracy",
    "lognormal_loglike", "fisher_sigma", "Optimum", "dataset_optimum", "accuracy_auc",
]


def _half_weights(grid: Grid) -> np.ndarray:
    """Weight of each rfft2 mode in a full-grid sum (multiplicity), zero for the ell = 0 mode."""
    w = grid.multiplicity_half.copy()
    w[0, 0] = 0.0
    return w


def mode_covariance(ell_tab, cl_tab, grid: Grid, n_gal: float = 0.0, sigma_e: float = 0.26,
                    smoothing_sigma_arcmin: float = 0.0) -> np.ndarray:
    """T = B^2 (P + N) on the half grid, shape (N, N//2+1, C, C), from tabulated C^{ij}(ell)."""
    p = cl_on_grid(ell_tab, cl_tab, grid.ell_half)  # (C, C, N, M)
    c = p.shape[0]
    t = np.moveaxis(p, (0, 1), (-2, -1)).copy()
    if n_gal and n_gal > 0:
        t += noise_power(sigma_e, n_gal) * np.eye(c)
    if smoothing_sigma_arcmin > 0:
        t *= (gaussian_beam(grid.ell_half, smoothing_sigma_arcmin) ** 2)[..., None, None]
    return t


def _usable(t0, t1) -> np.ndarray:
    """Modes where both covariances are numerically positive definite (the beam can kill high ell)."""
    d0 = np.linalg.eigvalsh(t0)[..., 0]
    d1 = np.linalg.eigvalsh(t1)[..., 0]
    scale = max(np.max(np.abs(t0)), np.max(np.abs(t1)))
    return (d0 > 1e-14 * scale) & (d1 > 1e-14 * scale)


def _prepared(t0, t1, grid: Grid):
    """Weights, M = T0^-1 - T1^-1 and ln det T1 - ln det T0 per mode; unusable modes weigh zero."""
    ok = _usable(t0, t1)
    ok[0, 0] = False
    eye = np.eye(t0.shape[-1])
    t0 = np.where(ok[..., None, None], t0, eye)
    t1 = np.where(ok[..., None, None], t1, eye)
    m = np.linalg.inv(t0) - np.linalg.inv(t1)
    lr = np.linalg.slogdet(t1)[1] - np.linalg.slogdet(t0)[1]
    return _half_weights(grid) * ok, m, lr, t0, t1


def _fourier(maps: np.ndarray, grid: Grid) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 3:
        maps = maps[:, None]
    return scipy.fft.rfft2(maps, axes=(-2, -1)) * grid.delta**2  # (B, C, N, M)


def gaussian_llr(maps: np.ndarray, t0: np.ndarray, t1: np.ndarray, grid: Grid) -> np.ndarray:
    """Per-map log-likelihood ratio ln p_1(d)/p_0(d) of Gaussian maps (B, [C,] N, N)."""
    w, m, lr, _, _ = _prepared(t0, t1, grid)
    d = _fourier(maps, grid)
    if m.shape[-1] == 1:
        quad = (d[:, 0].real ** 2 + d[:, 0].imag ** 2) * m[..., 0, 0]
    else:
        quad = np.einsum("bixy,xyij,bjxy->bxy", np.conj(d), m, d, optimize=True).real
    return 0.5 * np.sum(w * (quad / grid.area - lr), axis=(-2, -1))


def gaussian_llr_moments(t0: np.ndarray, t1: np.ndarray, grid: Grid):
    """Mean and variance of the LLR under each class: ((mu0, var0), (mu1, var1))."""
    w, m, lr, t0, t1 = _prepared(t0, t1, grid)
    # self-conjugate modes (weight 1) are real Gaussians: the variance of the quadratic form doubles
    real = grid.multiplicity_half == 1
    out = []
    for t in (t0, t1):
        mt = m @ t
        tr = np.trace(mt, axis1=-2, axis2=-1)
        tr2 = np.trace(mt @ mt, axis1=-2, axis2=-1)
        mean = 0.5 * np.sum(w * (tr - lr))
        var = np.sum((0.5 * w) ** 2 * np.where(real, 2.0, 1.0) * tr2)
        out.append((float(mean), float(var)))
    return tuple(out)


def analytic_accuracy(t0: np.ndarray, t1: np.ndarray, grid: Grid) -> float:
    """Balanced accuracy of the LLR > 0 rule in the Gaussian approximation of the LLR's distribution."""
    (m0, v0), (m1, v1) = gaussian_llr_moments(t0, t1, grid)
    return float(0.5 * (norm.cdf(-m0 / np.sqrt(v0)) + norm.cdf(m1 / np.sqrt(v1))))


def lognormal_loglike(maps: np.ndarray, cl_g: np.ndarray, sigma_g2: float, kappa0: float, grid: Grid) -> np.ndarray:
    """Exact log-likelihood of single-channel noiseless lognormal maps (B, N, N) or (B, 1, N, N).

    ``cl_g`` is the Gaussian field's power on the full grid (N, N), zero mode included,
    as :func:`nulens.maps.lognormal_gaussian_power` returns it for the class.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 4:
        maps = maps[:, 0]
    n = grid.pixels
    cg = np.maximum(cl_g[:, : n // 2 + 1], 1e-300)
    g = np.log1p(maps / kappa0) + 0.5 * sigma_g2
    gk = scipy.fft.rfft2(g, axes=(-2, -1)) * grid.delta**2
    w = grid.multiplicity_half
    quad = np.sum(w * (gk.real**2 + gk.imag**2) / (grid.area * cg), axis=(-2, -1))
    logdet = np.sum(np.log(2 * np.pi * np.maximum(cl_g, 1e-300) / grid.delta**2))
    jac = -np.sum(np.log(kappa0 + maps), axis=(-2, -1))
    return -0.5 * (quad + logdet) + jac


def fisher_sigma(cosmology, m_nu: float, grid: Grid, z_source=(1.0,), nz_width: float = 0.01, n_gal: float = 0.0,
                 sigma_e: float = 0.26, smoothing_sigma_arcmin: float = 0.0, step: float = 0.02) -> float:
    """Cramer-Rao bound sigma(M_nu) [eV] from one Gaussian map of this setting, at fiducial ``m_nu``.

    dT/dM by finite differences of C_ell through :func:`nulens.cosmology.convergence_cl`:
    central (M +- step), or second-order forward (M, M+step, M+2 step) where M - step < 0.
    For n independent maps the bound is this / sqrt(n).
    """
    from .cosmology import convergence_cl

    ell = grid.tabulation_ell()

    def cov(m):
        s = convergence_cl(ell, cosmology.with_m_nu(m), z_source, nz_width)
        return mode_covariance(s.ell, s.cl, grid, n_gal, sigma_e, smoothing_sigma_arcmin)

    t = cov(m_nu)
    if m_nu - step >= 0:
        dt = (cov(m_nu + step) - cov(m_nu - step)) / (2 * step)
    else:
        dt = (-3 * t + 4 * cov(m_nu + step) - cov(m_nu + 2 * step)) / (2 * step)
    w, _, _, t, _ = _prepared(t, t, grid)
    tinv = np.linalg.inv(t)
    a = tinv @ dt
    f = 0.5 * np.sum(w * np.trace(a @ a, axis1=-2, axis2=-1))
    return float(1.0 / np.sqrt(f))


def accuracy_auc(score: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Accuracy of score > 0, its binomial standard error, and the ROC AUC (Mann-Whitney)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels)
    acc = float(np.mean((score > 0) == (labels == 1)))
    err = float(np.sqrt(acc * (1 - acc) / labels.size))
    r = rankdata(score)
    n1 = np.sum(labels == 1)
    n0 = labels.size - n1
    auc = float((r[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n0 * n1)) if n0 and n1 else float("nan")
    return acc, err, auc


@dataclass
class Optimum:
    """The best classifier a dataset admits: ``kind`` is 'gaussian' (exact), 'lognormal' (exact,
    field level) or 'gaussian-llr' (built from measured spectra: a yardstick, not an optimum)."""

    kind: str
    grid: Grid
    t0: np.ndarray | None = None
    t1: np.ndarray | None = None
    lognormal: tuple | None = None  # ((cl_g0, s2_0), (cl_g1, s2_1), kappa0)

    @property
    def is_optimal(self) -> bool:
        return self.kind in ("gaussian", "lognormal")

    def llr(self, maps: np.ndarray) -> np.ndarray:
        if self.kind == "lognormal":
            (c0, s0), (c1, s1), k0 = self.lognormal
            return (lognormal_loglike(maps, c1, s1, k0, self.grid) - lognormal_loglike(maps, c0, s0, k0, self.grid))
        return gaussian_llr(maps, self.t0, self.t1, self.grid)

    def analytic_accuracy(self) -> float | None:
        return analytic_accuracy(self.t0, self.t1, self.grid) if self.kind == "gaussian" else None


def measured_covariance(ds, label: int, grid: Grid, n_bins: int = 64, batch: int = 256) -> np.ndarray:
    """Class-mean mode covariance (N, N//2+1, C, C) estimated from a dataset's maps in ``n_bins`` log bins."""
    from .stats.power import binned_power

    edges = np.geomspace(grid.ell_fundamental * 0.999, grid.ell_max * 1.0001, n_bins + 1)
    idx = np.flatnonzero(ds.labels == label)
    total = None
    for maps, _ in ds.batches(batch, idx):
        ell_eff, p, _ = binned_power(maps, grid, edges, cross=True)
        total = p.sum(0) if total is None else total + p.sum(0)
    mean = total / idx.size  # (C, C, n_bins)
    b = np.clip(np.digitize(grid.ell_half, edges) - 1, 0, n_bins - 1)
    t = np.moveaxis(mean[..., b], (0, 1), (-2, -1))
    return t


def dataset_optimum(ds, train=None) -> Optimum | None:
    """The optimum a dataset admits (see :class:`Optimum`), from its stored spectra and observation settings.

    Gaussian simulated datasets: exact LLR with the stored C_ell, noise and beam.  Noiseless,
    unsmoothed, single-channel lognormal datasets: exact field-level LLR.  Anything else with two
    classes: the Gaussian LLR from the class power spectra measured on ``train`` (or ``ds``).
    """
    if len(np.unique(ds.labels)) != 2:
        return None
    grid = Grid(ds.pixels, ds.side_deg)
    attrs = ds.attrs
    field = attrs.get("field")
    n_gal = float(attrs.get("n_gal", 0.0) or 0.0)
    smooth = float(attrs.get("smoothing_sigma_arcmin", 0.0) or 0.0)
    cl = ds.cl()
    if field == "gaussian" and cl is not None:
        ell, c = cl
        t0, t1 = (mode_covariance(ell, c[k], grid, n_gal, float(attrs["sigma_e"]), smooth) for k in (0, 1))
        return Optimum("gaussian", grid, t0, t1)
    if (field == "lognormal" and cl is not None and n_gal == 0 and smooth == 0 and ds.channels == 1
            and not int(attrs.get("subtract_mean", 0))):
        ell, c = cl
        k0 = float(kappa0_hilbert(attrs["z_source"][0]))
        parts = []
        for k in (0, 1):
            cl_g, s2, _ = lognormal_gaussian_power(cl_on_grid(ell, c[k], grid.ell_full), np.array([k0]), grid)
            parts.append((cl_g[0, 0], float(s2[0])))
        return Optimum("lognormal", grid, lognormal=(parts[0], parts[1], k0))
    src = train if train is not None else ds
    t0, t1 = (measured_covariance(src, k, grid) for k in (0, 1))
    return Optimum("gaussian-llr", grid, t0, t1)
