"""nulens: the neutrino mass in weak-lensing convergence maps, with deep learning.

Importing nulens is cheap: pyccl, h5py and torch load only when a function
that needs them is called.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Cosmology",
    "SimConfig",
    "InputError",
    "simulate",
    "open_dataset",
    "convergence_cl",
]

from .config import Cosmology, SimConfig
from .errors import InputError


def __getattr__(name):  # lazy: keep `import nulens` free of pyccl/h5py/torch
    if name == "simulate":
        from .api import simulate
        return simulate
    if name == "open_dataset":
        from .store import open_dataset
        return open_dataset
    if name == "convergence_cl":
        from .cosmology import convergence_cl
        return convergence_cl
    raise AttributeError(f"module 'nulens' has no attribute {name!r}")
