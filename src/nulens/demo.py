"""``nulens demo``: the first end-to-end study, small enough for 2 CPU cores in a few minutes.

Gaussian and lognormal datasets (N = 64, L = 3.5 deg, z_s = 1, 0 vs 0.1 eV,
noiseless), the classical baselines and the optimum on each, a short nunet
training, its evaluation on the same test maps, and one table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(out: Path, n_train: int = 1000, n_test: int = 500, pixels: int = 64, epochs: int = 8,
             console=None) -> list[dict]:
    from .api import simulate
    from .baseline import run_baseline
    from .evaluate import evaluate
    from .train import TrainConfig, fit

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = console.print if console is not None else print
    rows = []
    t_all = time.perf_counter()
    for field in ("gaussian", "lognormal"):
        t0 = time.perf_counter()
        paths = {}
        for split, n, seed in (("train", n_train, 11), ("test", n_test, 12)):
            p = out / f"{field}_{split}.h5"
            if not p.exists():
                simulate(p, n_per_class=n, pixels=pixels, field=field, seed=seed, workers=2)
            paths[split] = p
        say(f"[{field}] simulated {2 * n_train} training and {2 * n_test} test maps ({pixels}^2 px)")
        base = run_baseline(paths["train"], paths["test"], out / f"{field}_baseline.json",
                            out / f"{field}_baseline_figures", fisher=False)
        say(f"[{field}] baselines done; optimum ({base['optimal_kind']}) {base['optimal_accuracy']:.3f}")
        run = out / f"{field}_nunet"
        cfg = TrainConfig(model="nunet", epochs=epochs, batch_size=32, lr=3e-3, schedule="onecycle", patience=0,
                          seed=1, width=16)
        fit(paths["train"], run, cfg, resume=(run / "checkpoints" / "last.pt").exists(), progress=True)
        ev = evaluate(run, paths["test"], out / f"{field}_nunet_eval.json")
        best = lambda fs: max(r["accuracy"] for r in base["rows"] if r["features"] == fs)  # noqa: E731
        rows.append({"dataset": field, "n_test": ev["n_maps"], "optimal": ev["optimal_accuracy"],
                     "optimal_err": ev["optimal_accuracy_err"], "ps": best("PS"),
                     "all_stats": best("PS+peaks+minima+MFs+PDF"), "nunet": ev["accuracy"],
                     "nunet_err": ev["accuracy_err"], "ratio": ev["ratio_to_optimal"],
                     "seconds": time.perf_counter() - t0})
    (out / "demo.json").write_text(json.dumps({"rows": rows, "seconds": time.perf_counter() - t_all}, indent=1))
    return rows
