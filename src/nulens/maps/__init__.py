"""Flat-sky map synthesis (numpy/scipy only; importing this never imports torch or pyccl)."""

from .grid import Grid, cl_on_grid
from .gaussian import draw_white, gaussian_factor, synthesize
from .lognormal import kappa0_hilbert, lognormal_gaussian_power, lognormal_transform
from .observe import add_noise, gaussian_beam, noise_power, pixel_noise_sigma, smooth

__all__ = [
    "Grid", "cl_on_grid", "draw_white", "gaussian_factor", "synthesize",
    "kappa0_hilbert", "lognormal_gaussian_power", "lognormal_transform",
    "add_noise", "gaussian_beam", "noise_power", "pixel_noise_sigma", "smooth",
]
