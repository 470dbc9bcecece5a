"""Baselines beside the optimum on DESIGN 3 datasets (N = 128, L = 3.5 deg, z_s = 1, 0 vs 0.1 eV).

Gaussian maps: noiseless, n_gal = 100 and 30; lognormal maps: noiseless and n_gal = 100.
>= 4000 training and 4000 test maps each (2000 per class), seeds 1 (train) and 2 (test).
Also the throughput of the full feature vector at N = 256.

    python benchmarks/bench_baselines.py [--n-per-class 2000] [--out bench-out]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from nulens.api import simulate
from nulens.baseline import run_baseline
from nulens.maps import Grid
from nulens.stats import FeatureSpec, compute_features

SETTINGS = [("gaussian", None), ("gaussian", 100.0), ("gaussian", 30.0), ("lognormal", None), ("lognormal", 100.0)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-per-class", type=int, default=2000)
    ap.add_argument("--pixels", type=int, default=128)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    print(f"# bench_baselines  {time.strftime('%Y-%m-%d')}  {platform.machine()}, {os.cpu_count()} cores; "
          f"N = {args.pixels}, {2 * args.n_per_class} training + {2 * args.n_per_class} test maps per setting")
    print("| field | n_gal | optimum | analytic | PS+logistic | PS+boost | PS+peaks+log | PS+peaks+boost | all+log | all+boost | Fisher sigma(M_nu)/map |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for field, n_gal in SETTINGS:
        tag = f"{field}_{int(n_gal or 0)}"
        paths = {}
        for split, seed in (("train", 1), ("test", 2)):
            p = out / f"{tag}_{split}.h5"
            if not p.exists():
                simulate(p, n_per_class=args.n_per_class, pixels=args.pixels, field=field, n_gal=n_gal, seed=seed,
                         workers=2)
            paths[split] = p
        res = run_baseline(paths["train"], paths["test"], out / f"{tag}.json", out / f"{tag}_figures")
        acc = {(r["features"], r["classifier"]): r for r in res["rows"]}

        def cell(fs, c):
            r = acc[(fs, c)]
            return f"{r['accuracy']:.3f}+-{r['accuracy_err']:.3f}"

        if res["optimal_accuracy"] is not None:
            opt = f"{res['optimal_accuracy']:.3f}+-{res['optimal_accuracy_err']:.3f} ({res['optimal_kind']})"
        else:
            opt = f"n/a (Gaussian LLR {res['gaussian_llr_accuracy']:.3f})"
        ana = f"{res['optimal_analytic_accuracy']:.3f}" if res["optimal_analytic_accuracy"] else "-"
        fis = f"{res['fisher_sigma_m_nu_per_map']:.4f} eV" if res["fisher_sigma_m_nu_per_map"] else "-"
        cells = [cell(fs, c) for fs in ("PS", "PS+peaks", "PS+peaks+minima+MFs+PDF") for c in ("logistic", "boosting")]
        print(f"| {field} | {n_gal or 0} | {opt} | {ana} | " + " | ".join(cells) + f" | {fis} |", flush=True)

    grid = Grid(256, 3.5)
    rng = np.random.default_rng(0)
    maps = rng.normal(scale=0.02, size=(256, 1, 256, 256))
    spec = FeatureSpec(grid, 0.02)
    compute_features(maps[:16], spec)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        compute_features(maps, spec)
        times.append(time.perf_counter() - t)
    print(f"\nfull feature vector (PS, peaks, minima, V0-V2, PDF) at N = 256, one process: "
          f"{256 / np.median(times):.0f} maps/s (median of 3)")


if __name__ == "__main__":
    main()
