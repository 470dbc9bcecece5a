"""Convergence angular power spectra C_ell from pyccl with CAMB HMcode-2020.

Conventions (DESIGN 3): Omega_m is *total* matter including massive neutrinos,
so Omega_c = Omega_m - Omega_b - Omega_nu with Omega_nu from pyccl; the
nonlinear matter power is CAMB's HMcode-2020 (``halofit_version='mead2020'``,
which is calibrated with massive neutrinos; pyccl's default 'mead' is
HMcode-2016) with ``kmax = 100 / Mpc``; C_ell is the Limber convergence
spectrum of ``pyccl.WeakLensingTracer``s with narrow Gaussian n(z) around each
source plane.  C_ell = 0 for ell < 2.

Results are cached on disk (``$NULENS_CACHE``, default ``~/.cache/nulens``)
under a SHA-256 of every input, the ell array and the pyccl/CAMB versions, and
in memory for the life of the process.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Cosmology
from .errors import InputError

__all__ = ["ConvergenceSpectra", "convergence_cl", "pyccl_cosmology", "omega_nu", "source_nz", "CAMB_KMAX"]

CAMB_KMAX = 100.0  # 1/Mpc; CAMB's default of 10 is too low for ell ~ 5e4
_CACHE_SCHEMA = 1
_memory: dict[str, "ConvergenceSpectra"] = {}


@dataclass(frozen=True)
class ConvergenceSpectra:
    """C_ell^{ij} of the convergence for one cosmology and a set of source planes.

    ``cl`` has shape (n_z, n_z, n_ell), symmetric in its first two axes;
    ``sigma8``, ``Omega_c`` and ``A_s`` are those of the cosmology pyccl built
    (``A_s`` is NaN when sigma8 was fixed instead).
    """

    ell: np.ndarray
    cl: np.ndarray
    z_source: tuple[float, ...]
    sigma8: float
    Omega_c: float
    A_s: float


def omega_nu(m_nu: float, h: float, mass_split: str = "equal") -> float:
    """Omega_nu of massive neutrinos today, from pyccl's own neutrino model."""
    import pyccl

    cosmo = pyccl.Cosmology(
        Omega_c=0.25, Omega_b=0.05, h=h, n_s=0.96, A_s=2.1e-9, m_nu=m_nu, mass_split=mass_split
    )
    return float(cosmo["Omega_nu_mass"])


def pyccl_cosmology(c: Cosmology):
    """The pyccl Cosmology for ``c``, with Omega_c derived from total Omega_m."""
    import pyccl

    omega_c = c.Omega_m - c.Omega_b - omega_nu(c.m_nu, c.h, c.mass_split)
    if omega_c <= 0:
        raise InputError(f"Omega_m = {c.Omega_m} leaves Omega_c = {omega_c:.4f} <= 0")
    norm = {"A_s": c.A_s} if c.sigma8 is None else {"sigma8": c.sigma8}
    cosmo = pyccl.Cosmology(
        Omega_c=omega_c,
        Omega_b=c.Omega_b,
        h=c.h,
        n_s=c.n_s,
        w0=c.w0,
        m_nu=c.m_nu,
        mass_split=c.mass_split,
        transfer_function="boltzmann_camb",
        matter_power_spectrum="camb",
        extra_parameters={"camb": {"halofit_version": "mead2020", "kmax": CAMB_KMAX}},
        **norm,
    )
    total = float(cosmo["Omega_m"])
    if abs(total - c.Omega_m) > 1e-10:  # the trap of DESIGN 3: pyccl adds Omega_nu on top
        raise RuntimeError(f"pyccl Omega_m = {total} differs from the requested {c.Omega_m}")
    return cosmo


def source_nz(z_s: float, width: float, n: int = 401) -> tuple[np.ndarray, np.ndarray]:
    """Narrow Gaussian n(z) of standard deviation ``width`` around ``z_s`` (+-6 sigma)."""
    z = np.linspace(z_s - 6 * width, z_s + 6 * width, n)
    return z, np.exp(-0.5 * ((z - z_s) / width) ** 2)


def _key(c: Cosmology, z_source, nz_width, ell) -> str:
    from importlib.metadata import version  # versions without importing pyccl/CAMB: a cache hit stays cheap

    payload = {
        "schema": _CACHE_SCHEMA,
        "cosmology": c.as_dict(),
        "z_source": [float(z) for z in z_source],
        "nz_width": float(nz_width),
        "ell_sha": hashlib.sha256(np.ascontiguousarray(ell, dtype=np.float64).tobytes()).hexdigest(),
        "pyccl": version("pyccl"),
        "camb": version("camb"),
        "kmax": CAMB_KMAX,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cache_dir() -> Path:
    return Path(os.environ.get("NULENS_CACHE", Path.home() / ".cache" / "nulens"))


def _compute(c: Cosmology, z_source, nz_width, ell) -> ConvergenceSpectra:
    import pyccl

    cosmo = pyccl_cosmology(c)
    tracers = [pyccl.WeakLensingTracer(cosmo, dndz=source_nz(z, nz_width)) for z in z_source]
    n = len(z_source)
    cl = np.zeros((n, n, ell.size))
    valid = ell >= 2
    for i in range(n):
        for j in range(i, n):
            if valid.any():
                cl[i, j, valid] = pyccl.angular_cl(cosmo, tracers[i], tracers[j], ell[valid])
            cl[j, i] = cl[i, j]
    a_s = float(cosmo["A_s"]) if c.sigma8 is None else float("nan")
    return ConvergenceSpectra(
        ell=ell.copy(),
        cl=cl,
        z_source=tuple(float(z) for z in z_source),
        sigma8=float(pyccl.sigma8(cosmo)),
        Omega_c=float(cosmo["Omega_c"]),
        A_s=a_s,
    )


def convergence_cl(
    ell,
    cosmology: Cosmology | None = None,
    z_source=(1.0,),
    nz_width: float = 0.01,
    cache: bool = True,
) -> ConvergenceSpectra:
    """Convergence C_ell^{ij}(ell) [dimensionless, per steradian] for source planes ``z_source``.

    Parameters
    ----------
    ell : multipoles (any shape is flattened); C_ell = 0 where ell < 2.
    cosmology : :class:`~nulens.config.Cosmology` (default: the MassiveNuS fiducial, massless).
    z_source : source redshifts, one tracer each; cross-spectra for every pair.
    nz_width : standard deviation of each narrow Gaussian n(z).
    cache : use the on-disk and in-memory cache (a changed input never hits a stale entry).
    """
    cosmology = cosmology or Cosmology()
    ell = np.asarray(ell, dtype=np.float64).ravel()
    if not np.all(np.isfinite(ell)) or np.any(ell < 0):
        raise InputError("ell must be finite and >= 0")
    z_source = tuple(float(z) for z in np.atleast_1d(z_source))
    if not cache:
        return _compute(cosmology, z_source, nz_width, ell)
    key = _key(cosmology, z_source, nz_width, ell)
    if key in _memory:
        return _memory[key]
    path = _cache_dir() / f"cl-{key}.npz"
    spectra = None
    if path.is_file():
        try:
            with np.load(path) as f:
                spectra = ConvergenceSpectra(
                    ell=f["ell"], cl=f["cl"], z_source=tuple(f["z_source"].tolist()),
                    sigma8=float(f["sigma8"]), Omega_c=float(f["Omega_c"]), A_s=float(f["A_s"]),
                )
        except (OSError, ValueError, KeyError):
            spectra = None  # a damaged entry is recomputed and replaced
    if spectra is None:
        spectra = _compute(cosmology, z_source, nz_width, ell)
        _write_cache(path, spectra)
    _memory[key] = spectra
    return spectra


def _write_cache(path: Path, s: ConvergenceSpectra) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, ell=s.ell, cl=s.cl, z_source=np.array(s.z_source),
                     sigma8=s.sigma8, Omega_c=s.Omega_c, A_s=s.A_s)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs time
