"""``nulens simulate``: datasets of convergence maps for several M_nu classes.

Pipeline per class: C_ell^{ij} tabulated by :mod:`nulens.cosmology` (cached),
interpolated onto the grid; the Gaussian factor sqrt(C) (Gaussian field) or
the Gaussian-field power of the lognormal model; then per map: white noise from
the map's own generator, synthesis, lognormal transform, shape noise,
smoothing, optional mean subtraction.

Map ``i`` is class ``i % n_classes`` and draws from
``default_rng(SeedSequence(seed, spawn_key=(i,)))``: signal white noise first,
then shape noise.  Work is split into fixed shards of ``shard_size`` maps
(a function of the geometry, not of the machine) written in place into a
preallocated ``OUT.partial/data.h5``; a killed run resumes from the finished
shards, and the finished file is renamed onto OUT (never a partial file at OUT).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .config import SimConfig
from .errors import InputError
from .maps.gaussian import draw_white, gaussian_factor, synthesize
from .maps.grid import Grid, cl_on_grid
from .maps.lognormal import kappa0_hilbert, lognormal_gaussian_power, lognormal_transform
from .maps.observe import add_noise, pixel_noise_sigma, smooth
from .store import check_output_path, create_preallocated, finish_dataset, map_offsets

__all__ = ["ClassPlan", "SimSummary", "class_spectra", "make_plans", "map_generator", "synthesize_maps", "simulate"]


@dataclass
class ClassPlan:
    """What a worker needs to draw maps of one class (no cosmology code involved)."""

    m_nu: float
    field: str
    factor: np.ndarray  # (N, N//2+1, C, C) matrix square root of the (Gaussian-field) power
    kappa0: np.ndarray | None = None  # lognormal only
    sigma_g2: np.ndarray | None = None
    clipped_fraction: float = 0.0


@dataclass
class SimSummary:
    path: str
    n_maps: int
    shape: tuple[int, ...]
    classes: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    resumed_shards: int = 0


def map_generator(seed: int, index: int) -> np.random.Generator:
    """The generator of map ``index`` of a dataset with base ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(index),)))


def class_spectra(config: SimConfig):
    """ConvergenceSpectra per class, tabulated on the grid's log-spaced ell (cached)."""
    from .cosmology import convergence_cl

    grid = Grid(config.pixels, config.side_deg)
    ell = grid.tabulation_ell()
    return [
        convergence_cl(ell, config.cosmology.with_m_nu(m), config.z_source, config.nz_width)
        for m in config.m_nu
    ]


def make_plans(config: SimConfig, spectra) -> list[ClassPlan]:
    grid = Grid(config.pixels, config.side_deg)
    plans = []
    for m, s in zip(config.m_nu, spectra):
        if config.field == "gaussian":
            factor = gaussian_factor(cl_on_grid(s.ell, s.cl, grid.ell_half))
            plans.append(ClassPlan(m, "gaussian", factor))
        else:
            kappa0 = kappa0_hilbert(np.array(config.z_source))
            cl_g, sigma_g2, clipped = lognormal_gaussian_power(cl_on_grid(s.ell, s.cl, grid.ell_full), kappa0, grid)
            factor = gaussian_factor(cl_g[..., : config.pixels // 2 + 1])
            plans.append(ClassPlan(m, "lognormal", factor, kappa0, sigma_g2, clipped))
    return plans


def synthesize_maps(config: SimConfig, plans: list[ClassPlan], indices) -> np.ndarray:
    """Maps ``indices`` of the dataset ``config`` describes, float32 (k, C, N, N)."""
    grid = Grid(config.pixels, config.side_deg)
    idx = np.asarray(indices, dtype=np.int64)
    nch = len(config.z_source)
    out = np.empty((idx.size, nch, config.pixels, config.pixels), np.float32)
    n_gal = config.galaxy_density
    sigma_pix = pixel_noise_sigma(config.sigma_e, n_gal, grid.pixel_arcmin) if n_gal else 0.0
    labels = idx % config.n_classes
    for c, plan in enumerate(plans):
        sel = np.flatnonzero(labels == c)
        if sel.size == 0:
            continue
        rngs = [map_generator(config.seed, i) for i in idx[sel]]
        maps = synthesize(draw_white(rngs, nch, config.pixels), plan.factor, grid.delta)
        if plan.field == "lognormal":
            maps = lognormal_transform(maps, plan.kappa0, plan.sigma_g2)
        if sigma_pix:
            add_noise(maps, rngs, sigma_pix)
        maps = smooth(maps, grid, config.smoothing_sigma_arcmin)
        if config.subtract_mean:
            maps -= maps.mean(axis=(-2, -1), keepdims=True)
        out[sel] = maps
    return out


# --- sharded, resumable, parallel run -----------------------------------------------
#
# The maps are written once, straight into their final place: OUT.partial/data.h5
# holds /maps with every chunk allocated when the file is created (no fill, no
# later metadata change), and workers pwrite the maps' raw float32 bytes at their
# chunks' file offsets (one call per run of adjacent chunks).  A shard is done when its marker file exists (written
# atomically after the data); a SIGKILL can only leave an unmarked shard, which
# the next run redoes.  At the end the small datasets and attributes are added
# and data.h5 is renamed onto OUT.

_worker_state: dict = {}


def _init_worker(config: SimConfig, plans: list[ClassPlan], data: str, offsets: np.ndarray) -> None:
    _worker_state.update(config=config, plans=plans, data=data, offsets=offsets)


def _marker(partial: Path, k: int) -> Path:
    return partial / f"shard_{k:06d}.done"


def _run_shard(k: int) -> tuple[int, list[float], list[float]]:
    """Synthesise shard k, write its maps in place, mark it done; returns per-class sum of squares and counts."""
    st = _worker_state
    config = st["config"]
    start = k * config.shard_size
    stop = min(config.n_maps, start + config.shard_size)
    maps = synthesize_maps(config, st["plans"], np.arange(start, stop))
    buf = np.ascontiguousarray(maps, dtype="<f4")
    offs = st["offsets"][start:stop]
    # adjacent chunks (the usual layout) go out in one call per run of them
    cuts = np.r_[0, np.flatnonzero(np.diff(offs) != buf[0].nbytes) + 1, len(offs)]
    fd = os.open(st["data"], os.O_WRONLY)
    try:
        for a, b in zip(cuts[:-1], cuts[1:]):
            view = memoryview(buf[a:b]).cast("B")
            done = 0
            while done < len(view):  # pwrite may write less than asked
                done += os.pwrite(fd, view[done:], int(offs[a]) + done)
    finally:
        os.close(fd)
    lab = np.arange(start, stop) % config.n_classes
    sums, counts = [], []
    for c in range(config.n_classes):
        flat = maps[lab == c].ravel()
        sums.append(float(np.dot(flat.astype(np.float64), flat)))
        counts.append(float(flat.size))
    marker = _marker(Path(st["data"]).parent, k)
    tmp = marker.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"sumsq": sums, "count": counts}))
    os.replace(tmp, marker)
    return k, sums, counts


def _read_marker(path: Path):
    try:
        d = json.loads(path.read_text())
        return d["sumsq"], d["count"]
    except (OSError, ValueError, KeyError):
        return None


def _params_table(config: SimConfig, spectra) -> np.ndarray:
    nz = len(config.z_source)
    zcols = [("z_s", "f8")] if nz == 1 else [(f"z_s_{j}", "f8") for j in range(nz)]
    dtype = [("label", "i8"), ("m_nu", "f8"), ("Omega_m", "f8"), ("Omega_b", "f8"), ("Omega_c", "f8"),
             ("h", "f8"), ("n_s", "f8"), ("A_s", "f8"), ("sigma8", "f8"), ("w0", "f8"),
             *zcols, ("seed", "u8"), ("index", "i8")]
    n = config.n_maps
    t = np.zeros(n, dtype=dtype)
    t["index"] = np.arange(n)
    t["label"] = t["index"] % config.n_classes
    t["seed"] = config.seed
    c = config.cosmology
    for name in ("Omega_m", "Omega_b", "h", "n_s", "w0"):
        t[name] = getattr(c, name)
    m_nu = np.array(config.m_nu)
    t["m_nu"] = m_nu[t["label"]]
    for col, arr in (("sigma8", [s.sigma8 for s in spectra]), ("Omega_c", [s.Omega_c for s in spectra]),
                     ("A_s", [s.A_s for s in spectra])):
        t[col] = np.array(arr)[t["label"]]
    for j, z in enumerate(config.z_source):
        t[zcols[j][0]] = z
    return t


def simulate(out: str | Path, config: SimConfig, progress: bool | Callable[[int, int], None] = False) -> SimSummary:
    """Simulate the dataset ``config`` describes into the HDF5 file ``out``.

    ``progress``: True for a rich progress bar on stderr, or a callback
    ``f(done_shards, total_shards)``.  Resumes from ``out.partial/`` when a
    previous run of the same config was killed.  Returns a :class:`SimSummary`.
    """
    t0 = time.perf_counter()
    out = Path(out)
    check_output_path(out)

    spectra = class_spectra(config)
    plans = make_plans(config, spectra)
    grid = Grid(config.pixels, config.side_deg)
    nch = len(config.z_source)
    n = config.n_maps
    n_shards = -(-n // config.shard_size)

    partial = Path(f"{out}.partial")
    manifest = {"physics": config.physics_dict(), "shard_size": config.shard_size, "nulens": __version__}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    mpath = partial / "manifest.json"
    data = partial / "data.h5"
    if partial.exists():
        try:
            old = json.loads(mpath.read_text()).get("sha256")
        except (OSError, ValueError):
            old = None
        if old != digest:
            raise InputError(f"{partial} holds an interrupted run of a different config; remove it or rerun that config")
    else:
        partial.mkdir()
        mpath.write_text(json.dumps({"sha256": digest, **manifest}, indent=1))
    shape = (nch, config.pixels, config.pixels)
    offsets = _open_or_create_data(data, partial, n, shape)

    done = {}
    for k in range(n_shards):
        info = _read_marker(_marker(partial, k)) if _marker(partial, k).exists() else None
        if info is not None:
            done[k] = info
    todo = [k for k in range(n_shards) if k not in done]
    resumed = len(done)
    report = _progress_reporter(progress, n_shards, resumed)
    try:
        if config.workers == 1 or len(todo) <= 1:
            _init_worker(config, plans, str(data), offsets)
            for k in todo:
                _, a, b = _run_shard(k)
                done[k] = (a, b)
                report(1)
        else:
            # fork: workers inherit the plans; they run numpy/scipy only (never CAMB's OpenMP), so it is safe
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with cf.ProcessPoolExecutor(min(config.workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                        initargs=(config, plans, str(data), offsets)) as pool:
                for fut in cf.as_completed([pool.submit(_run_shard, k) for k in todo]):
                    k, a, b = fut.result()
                    done[k] = (a, b)
                    report(1)
    finally:
        report(None)

    params = _params_table(config, spectra)
    attrs = _provenance(config, spectra, plans, grid)
    sumsq = np.sum([done[k][0] for k in range(n_shards)], axis=0)
    counts = np.sum([done[k][1] for k in range(n_shards)], axis=0)
    for c, entry in enumerate(attrs["classes"]):
        entry["pixel_rms"] = float(np.sqrt(sumsq[c] / counts[c]))
    cl = np.stack([s.cl for s in spectra])
    finish_dataset(data, params["label"], params, attrs, spectra[0].ell, cl)
    os.replace(data, out)
    shutil.rmtree(partial, ignore_errors=True)
    return SimSummary(str(out), n, shape, attrs["classes"], time.perf_counter() - t0, resumed)


def _open_or_create_data(data: Path, partial: Path, n: int, shape) -> np.ndarray:
    """Chunk byte offsets of /maps in data.h5, creating the file (atomically) when missing or unreadable."""
    if data.exists():
        try:
            return map_offsets(data, n, shape)
        except (OSError, ValueError, KeyError):
            for marker in partial.glob("shard_*.done"):  # its shards cannot be trusted: start over
                marker.unlink()
            data.unlink()
    tmp = partial / "data.h5.tmp"
    create_preallocated(tmp, n, shape)
    os.replace(tmp, data)
    return map_offsets(data, n, shape)


def _provenance(config: SimConfig, spectra, plans, grid: Grid) -> dict:
    """Root attributes of a simulated dataset: the whole config, versions, per-class cosmology."""
    ratio = _ratio_at_1000(config)
    classes = []
    for c, (m, s, plan) in enumerate(zip(config.m_nu, spectra, plans)):
        entry = {"label": c, "m_nu": m, "sigma8": s.sigma8, "Omega_c": s.Omega_c, "A_s": s.A_s,
                 "cl_ratio_ell1000": ratio[c]}
        if plan.field == "lognormal":
            entry.update(kappa0=plan.kappa0.tolist(), sigma_g2=plan.sigma_g2.tolist(),
                         clipped_fraction=plan.clipped_fraction)
        classes.append(entry)
    attrs = {
        "nulens_version": __version__,
        "config": config.as_dict(),
        "side_deg": config.side_deg,
        "pixels": config.pixels,
        "channels": len(config.z_source),
        "z_source": list(config.z_source),
        "field": config.field,
        "n_gal": config.galaxy_density if config.galaxy_density else 0.0,
        "sigma_e": config.sigma_e,
        "smoothing_sigma_arcmin": config.smoothing_sigma_arcmin,
        "subtract_mean": int(config.subtract_mean),
        "pixel_arcmin": grid.pixel_arcmin,
        "source": "simulated",
        "classes": classes,
    }
    return attrs


def _ratio_at_1000(config: SimConfig) -> list[float]:
    """C_ell(class)/C_ell(lightest class) at ell = 1000, first channel, straight from pyccl."""
    from .cosmology import convergence_cl

    vals = [convergence_cl([1000.0], config.cosmology.with_m_nu(m), config.z_source, config.nz_width).cl[0, 0, 0]
            for m in config.m_nu]
    return [float(v / vals[0]) for v in vals]


def _progress_reporter(progress, total: int, done: int):
    if callable(progress):
        state = {"done": done}

        def report(step):
            if step:
                state["done"] += step
                progress(state["done"], total)
        return report
    if not progress:
        return lambda step: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("simulating shards"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task("sim", total=total, completed=done)

    def report(step):
        if step is None:
            bar.stop()
        else:
            bar.advance(task, step)
    return report
