"""CNNs beside the optimum (DESIGN 3 maps: N = 128, L = 3.5 deg, z_s = 1, 0 vs 0.1 eV), and their speed.

Part A, accuracy: per setting, a training file of 10,000 maps (8,000 train + 2,000 validation,
stratified) and a test file of 4,000 maps; nunet and the poster's seed network (exponential
schedule) trained on the same maps; test accuracy beside the optimum on the same test maps
(exact LLR: Gaussian, or field-level for noiseless lognormal) and, for lognormal maps, beside the
best classical baseline.  "t(0.98 opt)" is the training wall-clock until the validation accuracy
first reached 0.98 x the optimum's accuracy on the same validation maps.

Part B, speed (--speed): training and inference images/s at N = 128, achieved GFLOP/s (torch
FLOP counter) against a 2048^2 float32 matmul timed in the same run, for memory formats,
thread counts, batch sizes and torch.compile.

    python benchmarks/bench_cnn.py [--settings gaussian:100 gaussian:30 lognormal:0 lognormal:100] [--speed]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def accuracy_part(settings, out: Path, epochs: int, seed_epochs: int, width: int) -> None:
    from nulens.api import simulate
    from nulens.baseline import run_baseline
    from nulens.evaluate import evaluate
    from nulens.optimal import accuracy_auc, dataset_optimum
    from nulens.store import open_dataset
    from nulens.train import TrainConfig, fit, split_indices

    print("| maps | n_gal | optimum | best baseline | nunet | nunet/opt | t(0.98 opt) nunet | seed (exp) | seed/opt | epochs nunet, seed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in settings:
        field, n_gal = s.split(":")
        n_gal = float(n_gal) or None
        tag = f"{field}_{int(n_gal or 0)}"
        tr, te = out / f"cnn_{tag}_train.h5", out / f"cnn_{tag}_test.h5"
        if not tr.exists():
            simulate(tr, n_per_class=5000, pixels=128, field=field, n_gal=n_gal, seed=21, workers=2)
        if not te.exists():
            simulate(te, n_per_class=2000, pixels=128, field=field, n_gal=n_gal, seed=22, workers=2)
        best_base = "-"
        if field == "lognormal":
            b = run_baseline(tr, te, out / f"cnn_{tag}_baseline.json", None, fisher=False)
            r = max(b["rows"], key=lambda r: r["accuracy"])
            best_base = f"{r['accuracy']:.3f} ({r['features']}, {r['classifier']})"
        # the optimum on the validation maps, for the time-to-0.98 criterion
        with open_dataset(tr) as ds:
            _, val_idx = split_indices(ds.labels, 0.2, 1)
            opt = dataset_optimum(ds)
            opt_val = accuracy_auc(opt.llr(ds.read(val_idx)), ds.labels[val_idx])[0]
        results = {}
        runs = (
            ("nunet", TrainConfig(model="nunet", epochs=epochs, batch_size=64, lr=3e-3, schedule="onecycle",
                                  patience=0, seed=1, width=width)),
            ("seed", TrainConfig(model="seed", epochs=seed_epochs, batch_size=64, lr=1e-3, schedule="exponential",
                                 gamma=0.9, patience=4, seed=1)),
        )
        for model, cfg in runs[:1] if field == "lognormal" else runs:  # the poster's net on Gaussian maps
            run = out / f"cnn_{tag}_{model}"
            fit(tr, run, cfg, resume=(run / "checkpoints" / "last.pt").exists())
            hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            t, t98 = 0.0, None
            for h in hist:
                t += h["seconds"]
                if t98 is None and h["val_acc"] >= 0.98 * opt_val:
                    t98 = t
            ev = evaluate(run, te, out / f"cnn_{tag}_{model}_eval.json")
            results[model] = (ev, t98, len(hist))
        ev, t98, ne = results["nunet"]
        evs, _, ns = results.get("seed", ({"accuracy": float("nan"), "accuracy_err": float("nan"),
                                           "ratio_to_optimal": float("nan")}, None, 0))
        if ev["optimal_accuracy"] is None:  # noisy lognormal: no optimum is defined
            opt_cell, ratio_cell = "none", "-"
        else:
            opt_cell = f"{ev['optimal_accuracy']:.3f}+-{ev['optimal_accuracy_err']:.3f} ({ev['optimal_kind']})"
            ratio_cell = f"{ev['ratio_to_optimal']:.3f}"
        print(f"| {field} | {n_gal or 0} | {opt_cell} | {best_base} | {ev['accuracy']:.3f}+-{ev['accuracy_err']:.3f} | "
              f"{ratio_cell} | {'%.0f s' % t98 if t98 else 'not reached'} | "
              f"{evs['accuracy']:.3f}+-{evs['accuracy_err']:.3f} | {evs['ratio_to_optimal']:.3f} | {ne}, {ns} |",
              flush=True)


def speed_part() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from nulens.models import build_model

    def matmul_gflops(threads):
        torch.set_num_threads(threads)
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        for _ in range(2):
            a @ b
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            ts.append(time.perf_counter() - t)
        return 2 * 2048**3 / np.median(ts) / 1e9

    print("\n| model | threads | batch | memory format | compile | train img/s | train GFLOP/s | infer img/s | "
          "matmul GFLOP/s | train/matmul |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    full = ((2, 64, True, False), (2, 64, False, False), (1, 64, True, False), (2, 32, True, False),
            (2, 128, True, False), (2, 64, True, True))
    short = full[:2]
    for name, kw, grid in (("nunet", {"width": 16}, full), ("nunet", {"width": 24}, short), ("seed", {}, short)):
        for threads, batch, cl, comp in grid:
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            fmt = torch.channels_last if cl else torch.contiguous_format
            model = build_model(name, 1, 128, **kw).to(memory_format=fmt)
            x = torch.randn(batch, 1, 128, 128).contiguous(memory_format=fmt)
            with FlopCounterMode(display=False) as fc:
                model(x).sum().backward()
            flops = fc.get_total_flops() / batch
            step_model = model
            if comp:
                try:
                    step_model = torch.compile(model)
                    step_model(x).sum().backward()
                except Exception as exc:  # noqa: BLE001
                    print(f"| {name} | {threads} | {batch} | - | failed: {type(exc).__name__} | | | | | |")
                    continue
            opt = torch.optim.AdamW(model.parameters())
            for _ in range(2):
                loss = step_model(x).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                loss = step_model(x).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                ts.append(time.perf_counter() - t)
            train = batch / np.median(ts)
            step_model.eval()
            with torch.no_grad():
                step_model(x)
                ti = []
                for _ in range(5):
                    t = time.perf_counter()
                    step_model(x)
                    ti.append(time.perf_counter() - t)
            mm = matmul_gflops(threads)
            gf = flops * train / 1e9
            label = f"{name} w{kw['width']}" if kw else name
            print(f"| {label} | {threads} | {batch} | {'channels_last' if cl else 'contiguous'} | "
                  f"{'yes' if comp else 'no'} | {train:.0f} | {gf:.1f} | {batch / np.median(ti):.0f} | {mm:.0f} | "
                  f"{gf / mm:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settings", nargs="*", default=["gaussian:100", "gaussian:30", "lognormal:0", "lognormal:100"])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed-epochs", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--out", default="bench-out")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    print(f"# bench_cnn  {time.strftime('%Y-%m-%d')}  {platform.machine()}, {os.cpu_count()} cores")
    if args.settings:
        accuracy_part(args.settings, out, args.epochs, args.seed_epochs, args.width)
    if args.speed:
        speed_part()


if __name__ == "__main__":
    main()
