"""Throughput of `nulens simulate` against the floor of unavoidable work, on this machine.

For N = 128, 256, 512: maps per second of
  floor       one standard-normal draw + one rfft2 + one irfft2 per map (float64, the kernel's precision),
  kernel      nulens.simulate.synthesize_maps (per-map generators, synthesis, noise if any),
  end to end  the `nulens simulate` command, 2 workers, HDF5 written, C_ell cached, process start included,
all with 2 processes on 2 cores, measured side by side in one run; median of --repeats.

    python benchmarks/bench_simulate.py [--repeats 3] [--field gaussian]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.fft

COUNTS = {128: 16000, 256: 4000, 512: 1000}  # ~1 GB of float32 maps each: the scale of a real study


def _floor_worker(n_maps: int, pixels: int, batch: int) -> float:
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for s in range(0, n_maps, batch):
        w = rng.standard_normal((min(batch, n_maps - s), 1, pixels, pixels))
        k = scipy.fft.rfft2(w, axes=(-2, -1))
        scipy.fft.irfft2(k, s=(pixels, pixels), axes=(-2, -1), overwrite_x=True)
    return time.perf_counter() - t


def _kernel_worker(n_maps: int, pixels: int, field: str, start: int) -> float:
    from nulens.config import SimConfig
    from nulens.simulate import class_spectra, make_plans, synthesize_maps

    cfg = SimConfig(n_per_class=n_maps, pixels=pixels, field=field)
    plans = make_plans(cfg, class_spectra(cfg))
    t = time.perf_counter()
    for s in range(start, start + n_maps, cfg.shard_size):
        synthesize_maps(cfg, plans, np.arange(s, min(s + cfg.shard_size, start + n_maps)))
    return time.perf_counter() - t


def _two_procs(fn, *args_per_proc):
    ctx = mp.get_context("forkserver")
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        return max(pool.map(fn, *zip(*args_per_proc)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--field", default="gaussian")
    ap.add_argument("--pixels", type=int, nargs="*", default=[128, 256, 512])
    args = ap.parse_args()
    from nulens.config import SimConfig

    print(f"# bench_simulate  {time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}, scipy {scipy.__version__}, field={args.field}")
    print("| N | maps | floor [maps/s] | kernel [maps/s] | end to end [maps/s] | kernel/floor | end to end/floor |")
    print("|---|---|---|---|---|---|---|")
    for n in args.pixels:
        count = COUNTS.get(n, 400)
        half = count // 2
        batch = SimConfig(pixels=n).shard_size
        # warm the C_ell cache so end to end measures simulation, not CAMB
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-m", "nulens.cli", "simulate", f"{d}/w.h5", "--n-per-class", "1",
                            "--pixels", str(n), "--field", args.field, "--quiet"], check=True, capture_output=True)
        floor, kernel, e2e = [], [], []
        for _ in range(args.repeats):
            floor.append(count / _two_procs(_floor_worker, (half, n, batch), (half, n, batch)))
            kernel.append(count / _two_procs(_kernel_worker, (half, n, args.field, 0), (half, n, args.field, half)))
            with tempfile.TemporaryDirectory() as d:
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "nulens.cli", "simulate", f"{d}/o.h5", "--n-per-class",
                                str(half), "--pixels", str(n), "--field", args.field, "--workers", "2", "--quiet"],
                               check=True, capture_output=True)
                e2e.append(count / (time.perf_counter() - t))
        f, k, e = (statistics.median(x) for x in (floor, kernel, e2e))
        print(f"| {n} | {count} | {f:.0f} | {k:.0f} | {e:.0f} | {k / f:.2f} | {e / f:.2f} |", flush=True)


if __name__ == "__main__":
    main()
