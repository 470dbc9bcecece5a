"""Observation: shape noise, Gaussian smoothing, mean subtraction (DESIGN 3).

Shape noise is white: sigma_pix = sigma_e / sqrt(n_gal [arcmin^-2] * A_pix [arcmin^2]),
power N = sigma_e^2 / n_gal [sr^-1].  Smoothing is a Gaussian kernel of standard
deviation ``sigma_arcmin``, applied in Fourier space to signal plus noise.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from .grid import Grid

__all__ = ["pixel_noise_sigma", "noise_power", "gaussian_beam", "add_noise", "smooth"]

ARCMIN2_PER_SR = (180 * 60 / math.pi) ** 2


def pixel_noise_sigma(sigma_e: float, n_gal: float, pixel_arcmin: float) -> float:
    """Noise rms per pixel: sigma_e / sqrt(n_gal * A_pix), n_gal in arcmin^-2, pixel side in arcmin."""
    return sigma_e / math.sqrt(n_gal * pixel_arcmin**2)


def noise_power(sigma_e: float, n_gal: float) -> float:
    """White shape-noise power sigma_e^2 / n_gal with n_gal in sr^-1 [sr]."""
    return sigma_e**2 / (n_gal * ARCMIN2_PER_SR)


def gaussian_beam(ell: np.ndarray, sigma_arcmin: float) -> np.ndarray:
    """Fourier transform of a unit-integral Gaussian kernel: exp(-ell^2 sigma^2 / 2), sigma in arcmin."""
    s = math.radians(sigma_arcmin / 60.0)
    return np.exp(-0.5 * (np.asarray(ell) * s) ** 2)


def add_noise(maps: np.ndarray, rngs: list[np.random.Generator], sigma_pix: float) -> np.ndarray:
    """Add white noise of rms ``sigma_pix`` in place; map b draws from ``rngs[b]``."""
    for b, rng in enumerate(rngs):
        maps[b] += sigma_pix * rng.standard_normal(maps.shape[1:])
    return maps


def smooth(maps: np.ndarray, grid: Grid, sigma_arcmin: float, workers: int = 1) -> np.ndarray:
    """Convolve (B, C, N, N) maps with a periodic Gaussian kernel of std ``sigma_arcmin``."""
    if sigma_arcmin <= 0:
        return maps
    mk = scipy.fft.rfft2(maps, axes=(-2, -1), workers=workers)
    mk *= gaussian_beam(grid.ell_half, sigma_arcmin)
    return scipy.fft.irfft2(mk, s=maps.shape[-2:], axes=(-2, -1), workers=workers, overwrite_x=True)
