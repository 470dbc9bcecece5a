"""The Python API: the CLI's verbs as functions usable from a notebook."""

from __future__ import annotations

from pathlib import Path

from .config import SimConfig, load_toml, sim_config_from_dict

__all__ = ["simulate"]


def simulate(out: str | Path, config: SimConfig | str | Path | None = None, progress: bool = False, **kwargs):
    """Simulate a dataset into the HDF5 file ``out``.

    ``config`` is a :class:`~nulens.config.SimConfig`, a TOML file, or None;
    keyword arguments override it (the same names as the TOML keys, e.g.
    ``n_per_class=500, pixels=128, field="lognormal", noise="euclid",
    m_nu=[0.0, 0.1], cosmology={"Omega_m": 0.3}``).  Returns a SimSummary.
    """
    from .simulate import simulate as _simulate

    if isinstance(config, SimConfig):
        base = config.as_dict()
    elif config is None:
        base = {}
    else:
        base = load_toml(config)
    return _simulate(out, sim_config_from_dict(base, kwargs), progress=progress)
