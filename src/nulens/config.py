"""Configuration of a simulation: cosmology, map geometry, survey noise.

Plain frozen dataclasses, validated on construction; every failure is an
:class:`~nulens.errors.InputError` with one line naming the offending key.
A TOML file holds the same keys as the dataclasses (cosmology in a
``[cosmology]`` table); unknown keys are refused, never ignored.

Units: angles in degrees (``side_deg``) or arcmin (``smoothing_sigma_arcmin``),
galaxy densities in arcmin^-2, neutrino masses in eV (sum of the three).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = [
    "Cosmology",
    "SimConfig",
    "NOISE_PRESETS",
    "MASS_SPLITS",
    "FIELDS",
    "load_toml",
    "sim_config_from_dict",
]

#: Galaxy number densities [arcmin^-2] of the survey presets (DESIGN 3).
NOISE_PRESETS: dict[str, float | None] = {
    "noiseless": None,
    "lsst-y1": 10.0,
    "lsst-y10": 27.0,
    "euclid": 30.0,
    "deep": 100.0,
}
MASS_SPLITS = ("equal", "normal", "inverted", "single")
FIELDS = ("gaussian", "lognormal")

#: Omega_nu h^2 per eV of summed mass (non-relativistic limit), used only for the
#: quick plausibility check in :class:`Cosmology`; the exact value comes from pyccl.
_OMEGA_NU_H2_PER_EV = 1.0 / 93.14


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True)
class Cosmology:
    """Flat wCDM cosmology with massive neutrinos (MassiveNuS fiducial by default).

    Parameters
    ----------
    m_nu : sum of neutrino masses [eV].
    Omega_m : total matter density today, *including* massive neutrinos
        (Omega_c = Omega_m - Omega_b - Omega_nu is derived).
    Omega_b, h, n_s, w0 : as usual.
    A_s : primordial amplitude; the default normalisation.  Give ``sigma8``
        instead (and leave ``A_s`` unset) to fix sigma8; never both.
    mass_split : how the sum splits into three masses (pyccl ``mass_split``).
    """

    m_nu: float = 0.0
    Omega_m: float = 0.3
    Omega_b: float = 0.046
    h: float = 0.7
    n_s: float = 0.97
    A_s: float | None = None
    sigma8: float | None = None
    w0: float = -1.0
    mass_split: str = "equal"

    def __post_init__(self) -> None:
        for name in ("m_nu", "Omega_m", "Omega_b", "h", "n_s", "w0"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        if self.m_nu < 0:
            raise InputError(f"m_nu must be >= 0 eV, got {self.m_nu}")
        if not 0 < self.h < 2:
            raise InputError(f"h must lie in (0, 2), got {self.h}")
        if self.Omega_b <= 0:
            raise InputError(f"Omega_b must be > 0, got {self.Omega_b}")
        omega_nu = self.m_nu * _OMEGA_NU_H2_PER_EV / self.h**2
        if self.Omega_m - self.Omega_b - omega_nu <= 0:
            raise InputError(
                f"Omega_m = {self.Omega_m} leaves no cold dark matter after Omega_b = "
                f"{self.Omega_b} and Omega_nu = {omega_nu:.4f} (Omega_m includes neutrinos)"
            )
        if self.Omega_m >= 1:
            raise InputError(f"Omega_m must be < 1 in a flat universe, got {self.Omega_m}")
        if self.mass_split not in MASS_SPLITS:
            raise InputError(f"mass_split must be one of {', '.join(MASS_SPLITS)}, got {self.mass_split!r}")
        if self.A_s is not None and self.sigma8 is not None:
            raise InputError("give A_s or sigma8, not both (the other is derived)")
        if self.A_s is None and self.sigma8 is None:
            object.__setattr__(self, "A_s", 2.1e-9)
        if self.A_s is not None:
            a_s = _finite("A_s", self.A_s)
            if not 1e-11 < a_s < 1e-7:
                raise InputError(f"A_s must lie in (1e-11, 1e-7), got {a_s}")
            object.__setattr__(self, "A_s", a_s)
        if self.sigma8 is not None:
            s8 = _finite("sigma8", self.sigma8)
            if not 0.1 < s8 < 2:
                raise InputError(f"sigma8 must lie in (0.1, 2), got {s8}")
            object.__setattr__(self, "sigma8", s8)
        if not -3 < self.w0 < 0:
            raise InputError(f"w0 must lie in (-3, 0), got {self.w0}")

    def with_m_nu(self, m_nu: float) -> "Cosmology":
        return dataclasses.replace(self, m_nu=m_nu)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated dataset.

    Map ``i`` (0-based, over the whole file) belongs to class ``i % len(m_nu)``
    and is drawn from its own generator, seeded from
    ``SeedSequence(seed, spawn_key=(i,))``: any subset, shard or worker count
    gives bit-identical maps.

    Geometry: a periodic ``pixels`` x ``pixels`` square of side ``side_deg``.
    ``z_source`` lists the source planes, one channel each (jointly synthesised).
    Noise: ``noise`` preset, or ``n_gal`` [arcmin^-2] (``noise`` then ignored) with
    ``sigma_e`` per shear component.  ``smoothing_sigma_arcmin`` is the standard
    deviation of a Gaussian kernel (0 = none), applied to signal plus noise.
    ``subtract_mean`` removes each map's mean (mass-sheet degeneracy), off by default.
    """

    m_nu: tuple[float, ...] = (0.0, 0.1)
    n_per_class: int = 100
    seed: int = 0
    pixels: int = 128
    side_deg: float = 3.5
    z_source: tuple[float, ...] = (1.0,)
    nz_width: float = 0.01
    field: str = "gaussian"
    noise: str = "noiseless"
    n_gal: float | None = None
    sigma_e: float = 0.26
    smoothing_sigma_arcmin: float = 0.0
    subtract_mean: bool = False
    cosmology: Cosmology = dc_field(default_factory=Cosmology)
    shard_size: int | None = None
    workers: int = 1

    def __post_init__(self) -> None:
        m = tuple(_finite("m_nu", v) for v in _as_tuple(self.m_nu))
        if not m:
            raise InputError("m_nu needs at least one class")
        if any(v < 0 for v in m):
            raise InputError(f"m_nu must be >= 0 eV, got {min(m)}")
        if len(set(m)) != len(m):
            raise InputError(f"m_nu lists a class twice: {list(m)}")
        object.__setattr__(self, "m_nu", tuple(sorted(m)))
        for v in self.m_nu:  # each class must be a valid cosmology
            self.cosmology.with_m_nu(v)
        z = tuple(_finite("z_source", v) for v in _as_tuple(self.z_source))
        if not z or any(not 0 < v <= 10 for v in z):
            raise InputError(f"z_source must be one or more redshifts in (0, 10], got {list(z)}")
        object.__setattr__(self, "z_source", z)
        width = _finite("nz_width", self.nz_width)
        if not 0 < width < min(z):
            raise InputError(f"nz_width must lie in (0, min z_source), got {width}")
        for name in ("n_per_class", "pixels", "workers", "seed"):
            _int(name, getattr(self, name))
        if self.shard_size is None:  # a function of the geometry only, so maps never depend on the machine
            object.__setattr__(self, "shard_size", int(min(64, max(1, 2**22 // (self.pixels**2 * len(z))))))
        _int("shard_size", self.shard_size)
        if self.n_per_class < 1:
            raise InputError(f"n_per_class must be >= 1, got {self.n_per_class}")
        if self.pixels < 8:
            raise InputError(f"pixels must be >= 8, got {self.pixels}")
        if self.pixels % 2:
            raise InputError(f"pixels must be even, got {self.pixels}")
        if self.seed < 0:
            raise InputError(f"seed must be >= 0, got {self.seed}")
        if self.shard_size < 1 or self.workers < 1:
            raise InputError("shard_size and workers must be >= 1")
        side = _finite("side_deg", self.side_deg)
        if not 0 < side <= 30:
            raise InputError(f"side_deg must lie in (0, 30] (flat sky), got {self.side_deg}")
        object.__setattr__(self, "side_deg", side)
        if self.field not in FIELDS:
            raise InputError(f"field must be one of {', '.join(FIELDS)}, got {self.field!r}")
        if self.noise not in NOISE_PRESETS:
            raise InputError(f"unknown noise preset {self.noise!r}; choose one of {', '.join(NOISE_PRESETS)}")
        if self.n_gal is not None:
            n_gal = _finite("n_gal", self.n_gal)
            if n_gal <= 0:
                raise InputError(f"n_gal must be > 0 arcmin^-2, got {n_gal}")
            object.__setattr__(self, "n_gal", n_gal)
        sigma_e = _finite("sigma_e", self.sigma_e)
        if sigma_e <= 0:
            raise InputError(f"sigma_e must be > 0, got {sigma_e}")
        object.__setattr__(self, "sigma_e", sigma_e)
        smooth = _finite("smoothing_sigma_arcmin", self.smoothing_sigma_arcmin)
        if smooth < 0:
            raise InputError(f"smoothing_sigma_arcmin must be >= 0, got {smooth}")
        object.__setattr__(self, "smoothing_sigma_arcmin", smooth)
        if not isinstance(self.subtract_mean, bool):
            raise InputError(f"subtract_mean must be true or false, got {self.subtract_mean!r}")

    @property
    def galaxy_density(self) -> float | None:
        """Galaxies per arcmin^2, or None for noiseless maps."""
        return self.n_gal if self.n_gal is not None else NOISE_PRESETS[self.noise]

    @property
    def n_classes(self) -> int:
        return len(self.m_nu)

    @property
    def n_maps(self) -> int:
        return self.n_per_class * self.n_classes

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["m_nu"] = list(self.m_nu)
        d["z_source"] = list(self.z_source)
        d["cosmology"] = {k: v for k, v in self.cosmology.as_dict().items() if v is not None and k != "m_nu"}
        return d

    def physics_dict(self) -> dict[str, Any]:
        """The keys that determine the maps (not how the work is split)."""
        d = self.as_dict()
        d.pop("workers")
        d.pop("shard_size")
        return d


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    return value


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is an InputError."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"config file {p} is not valid TOML: {exc}") from None


def sim_config_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> SimConfig:
    """Build a :class:`SimConfig` from a TOML-style dict; ``overrides`` (flags) win.

    Unknown keys, at the top level or in ``[cosmology]``, are refused by name.
    """
    data = dict(data)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    cosmo_data = data.pop("cosmology", {}) or {}
    if not isinstance(cosmo_data, dict):
        raise InputError("[cosmology] must be a table")
    cosmo_data = dict(cosmo_data)
    cosmo_data.update(overrides.pop("cosmology", {}) or {})
    sim_keys = {f.name for f in dataclasses.fields(SimConfig)} - {"cosmology"}
    cosmo_keys = {f.name for f in dataclasses.fields(Cosmology)} - {"m_nu"}
    for key in data:
        if key not in sim_keys:
            raise InputError(f"unknown config key {key!r} (known: {', '.join(sorted(sim_keys))}, [cosmology])")
    for key in cosmo_data:
        if key not in cosmo_keys:
            raise InputError(f"unknown config key 'cosmology.{key}' (known: {', '.join(sorted(cosmo_keys))})")
    data.update(overrides)
    try:
        cosmology = Cosmology(**cosmo_data)
        return SimConfig(cosmology=cosmology, **data)
    except TypeError as exc:  # a wrongly typed value the dataclass could not take
        raise InputError(f"bad config: {exc}") from None
