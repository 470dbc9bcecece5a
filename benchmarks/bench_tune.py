"""A tuning study on the N = 128, n_gal = 100 Gaussian setting, and what it buys.

Tuning set: --n-per-class maps per class (default 500: 800 train + 200 validation), seed 31. Study: --trials
(>= 20) trials of --epochs epochs each over the default search space, median pruner, journal
storage, --workers processes. Then the best trial's config and the default TrainConfig (nunet)
are each trained once more on the same tuning set with the same epochs and evaluated on the
4,000-map test file of bench_cnn (seed 22), beside the exact optimum on those maps.

    python benchmarks/bench_tune.py [--trials 20] [--epochs 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path


def main() -> None:
    from nulens.api import simulate
    from nulens.config import load_toml
    from nulens.evaluate import evaluate
    from nulens.train import TrainConfig, fit, train_config_from_dict
    from nulens.tune import run_tune

    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--n-per-class", type=int, default=500)
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    data = out / f"tune_gaussian_100_{args.n_per_class}.h5"
    if not data.exists():
        simulate(data, n_per_class=args.n_per_class, pixels=128, n_gal=100.0, seed=31, workers=2)
    test = out / "cnn_gaussian_100_test.h5"
    if not test.exists():
        simulate(test, n_per_class=2000, pixels=128, n_gal=100.0, seed=22, workers=2)
    study = out / "tune_study"
    shutil.rmtree(study, ignore_errors=True)
    t0 = time.perf_counter()
    res = run_tune(data, study, args.trials, args.epochs, args.workers, seed=0)
    t_study = time.perf_counter() - t0
    c = res["counts"]
    rows = []
    for name, cfg in (("best trial", train_config_from_dict(load_toml(study / "best.toml"))),
                      ("default nunet", TrainConfig(epochs=args.epochs))):
        run = out / f"tune_retrain_{name.split()[0]}"
        shutil.rmtree(run, ignore_errors=True)
        t = time.perf_counter()
        fit(data, run, cfg)
        ev = evaluate(run, test, figures=False)
        rows.append((name, cfg, ev, time.perf_counter() - t))
    print(f"# bench_tune  {time.strftime('%Y-%m-%d')}  {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.trials} trials x {args.epochs} epochs on {2 * args.n_per_class} maps, {args.workers} worker(s)")
    print(f"study: {c.get('COMPLETE', 0)} complete, {c.get('PRUNED', 0)} pruned, {c.get('FAIL', 0)} failed; "
          f"{t_study:.0f} s wall-clock; best params {res.get('best_params')}")
    print("| config | model | test accuracy (4000 maps) | optimum on the same maps | ratio | retrain s |")
    print("|---|---|---|---|---|---|")
    for name, cfg, ev, secs in rows:
        print(f"| {name} | {cfg.model} | {ev['accuracy']:.3f}+-{ev['accuracy_err']:.3f} | "
              f"{ev['optimal_accuracy']:.3f}+-{ev['optimal_accuracy_err']:.3f} | {ev['ratio_to_optimal']:.3f} | "
              f"{secs:.0f} |")


if __name__ == "__main__":
    main()
