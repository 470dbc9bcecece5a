"""``nulens train``: fit a CNN classifier (massive vs massless) on an HDF5 dataset.

Training hygiene: AdamW; learning-rate schedules ``exponential`` (the poster's,
decay ``gamma`` per epoch), ``cosine``, ``plateau``, ``onecycle``, ``constant``;
early stopping on the validation loss; exact-symmetry augmentation (the 8
rotations and flips of the square and random periodic shifts, which leave the
statistics of a periodic isotropic field unchanged); one input scale per
dataset (the training maps' pooled rms, never a per-map rms); a checkpoint
written atomically every epoch and ``resume``; ``metrics.jsonl``; seeds that
make a CPU run reproducible.

Reproducibility of resume: everything random in epoch ``e`` (order,
augmentation, dropout) is drawn from generators seeded by ``(seed, e)``, and the
checkpoint at the end of an epoch holds model, optimiser, scheduler and
early-stopping state, so a run killed at any point and resumed ends with the
same weights as an uninterrupted one (on CPU).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import InputError

__all__ = ["TrainConfig", "train_config_from_dict", "fit", "SCHEDULES", "split_indices", "augment_batch",
           "write_toml"]

SCHEDULES = ("exponential", "cosine", "plateau", "onecycle", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (the keys of a train TOML file)."""

    model: str = "nunet"
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    gamma: float = 0.9
    patience: int = 6
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = True
    width: int = 24
    depth: int = 3
    blocks: int = 1
    dropout: float = 0.0
    device: str = "auto"
    threads: int = 0
    memory_gb: float = 4.0

    def __post_init__(self) -> None:
        from .models import MODELS

        if self.model not in MODELS:
            raise InputError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "patience", "seed", "width", "depth", "blocks", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(f"{name} must be an integer, got {v!r}")
        for name in ("lr", "weight_decay", "gamma", "val_fraction", "dropout", "memory_gb"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"{name} must be a finite number, got {v!r}")
        if self.epochs < 1 or self.batch_size < 2 or self.width < 1 or self.depth < 1 or self.blocks < 1:
            raise InputError("epochs >= 1, batch_size >= 2, width, depth and blocks >= 1 are required")
        if not 0 < self.lr < 10:
            raise InputError(f"lr must lie in (0, 10), got {self.lr}")
        if not 0 < self.gamma <= 1:
            raise InputError(f"gamma must lie in (0, 1], got {self.gamma}")
        if not 0 <= self.val_fraction < 1:
            raise InputError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if not 0 <= self.dropout < 1 or self.weight_decay < 0 or self.patience < 0 or self.threads < 0:
            raise InputError("dropout in [0, 1), weight_decay >= 0, patience >= 0 and threads >= 0 are required")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_config_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A TrainConfig from a TOML-style dict (optionally under a [train] table); unknown keys are refused."""
    data = dict(data.get("train", data))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in data:
        if key not in known:
            raise InputError(f"unknown config key {key!r} (known: {', '.join(sorted(known))})")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return TrainConfig(**data)


def write_toml(path: Path, data: dict[str, Any], table: str | None = None) -> None:
    """Write a flat dict of scalars and lists as TOML, atomically."""

    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return json.dumps(str(v))

    lines = [f"[{table}]"] if table else []
    lines += [f"{k} = {fmt(v)}" for k, v in data.items() if v is not None]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) index split, deterministic in ``seed``."""
    rng = np.random.default_rng([seed, 7919])
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * idx.size))
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def augment_batch(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random element of the square's symmetry group (8) and a random periodic shift, per map (B, C, N, N)."""
    out = np.empty_like(x)
    n = x.shape[-1]
    ops = rng.integers(0, 8, size=len(x))
    shifts = rng.integers(0, n, size=(len(x), 2))
    for b in range(len(x)):
        m = np.rot90(x[b], k=int(ops[b]) % 4, axes=(-2, -1))
        if ops[b] >= 4:
            m = m[..., ::-1]
        out[b] = np.roll(m, tuple(int(s) for s in shifts[b]), axis=(-2, -1))
    return out


class _Source:
    """Maps of one dataset for training: in memory when small, else read batch by batch from HDF5."""

    def __init__(self, ds, indices: np.ndarray, memory_gb: float):
        self.ds = ds
        self.indices = np.asarray(indices)
        nbytes = self.indices.size * int(np.prod(ds.shape[1:])) * 4
        self.array = ds.read(self.indices) if nbytes <= memory_gb * 2**30 else None
        self.labels = ds.labels[self.indices].astype(np.float32)

    def __len__(self) -> int:
        return self.indices.size

    def get(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps and labels at positions ``pos`` (into this source's indices)."""
        if self.array is not None:
            return self.array[pos], self.labels[pos]
        return self.ds.read(self.indices[pos]), self.labels[pos]

    def rms(self) -> float:
        return self.ds.pooled_rms(self.indices)


def _device(name: str):
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _make_scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    import torch

    s = cfg.schedule
    if s == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    if s == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if s == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    if s == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_metrics(run: Path, history: list[dict]) -> None:
    tmp = run / ".metrics.jsonl.tmp"
    tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
    os.replace(tmp, run / "metrics.jsonl")


def run_meta(ds, scale: float) -> dict[str, Any]:
    """What a model must know about its input maps (and nothing about how they were made)."""
    return {
        "pixels": ds.pixels, "channels": ds.channels, "side_deg": ds.side_deg,
        "pixel_arcmin": ds.side_deg * 60 / ds.pixels, "scale": scale,
        "classes": [{"label": c.get("label", k), "m_nu": c.get("m_nu")} for k, c in enumerate(ds.classes)],
        "n_gal": ds.attrs.get("n_gal"), "field": ds.attrs.get("field"), "train_file": str(ds.path),
    }


def recalibrate_batchnorm(model, source: _Source, scale: float, device, n_max: int = 2048,
                          batch_size: int = 256) -> None:
    """Set BatchNorm running statistics to their exact average over (up to ``n_max``) training maps
    at the current weights.  A running average with momentum lags behind the weights and, over the
    few steps of a short run, stays near its initial values; evaluation then drifts off."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    n = min(len(source), n_max)
    with torch.no_grad():
        for s in range(0, n, batch_size):
            x, _ = source.get(np.arange(s, min(n, s + batch_size)))
            model(torch.from_numpy(np.ascontiguousarray(x / scale, dtype=np.float32)).to(device)
                  .contiguous(memory_format=torch.channels_last))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def evaluate_loss(model, source: _Source, scale: float, device, batch_size: int = 256) -> tuple[float, float, np.ndarray]:
    """Mean BCE loss, accuracy and logits of a model on a source (eval mode, no augmentation)."""
    import torch

    model.eval()
    logits = []
    with torch.no_grad():
        for s in range(0, len(source), batch_size):
            x, _ = source.get(np.arange(s, min(len(source), s + batch_size)))
            xt = torch.from_numpy(x / scale).to(device).contiguous(memory_format=torch.channels_last)
            logits.append(model(xt).float().cpu().numpy())
    z = np.concatenate(logits) if logits else np.zeros(0)
    y = source.labels
    loss = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))) if z.size else float("nan")
    acc = float(np.mean((z > 0) == (y > 0.5))) if z.size else float("nan")
    return loss, acc, z


def fit(data, out, config: TrainConfig, val=None, resume: bool = False, progress: bool = False,
        on_epoch: Callable[[int, dict], None] | None = None) -> dict[str, Any]:
    """Train ``config.model`` on dataset ``data``; write the run folder ``out``.

    ``val``: a separate validation dataset, else ``config.val_fraction`` of ``data``
    (stratified).  ``on_epoch(epoch, metrics)`` is called after every epoch (Optuna
    reports and prunes through it; an exception it raises stops the run after the
    checkpoint is written).  Returns the summary dict (also written to summary.json).
    """
    import torch

    from .models import build_model, count_parameters
    from .store import open_dataset

    out = Path(out)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.pt"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out must be a folder: {out}")
    if last.exists() and not resume:
        raise InputError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not last.exists():
        raise InputError(f"nothing to resume in {out} (no checkpoints/last.pt)")
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")

    device = _device(config.device)
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    ds = open_dataset(data)
    vds = open_dataset(val) if val is not None else None
    try:
        if set(np.unique(ds.labels).tolist()) != {0, 1}:
            raise InputError(f"{ds.path}: a classifier needs exactly two classes, labels 0 and 1")
        if vds is not None:
            if (vds.pixels, vds.channels) != (ds.pixels, ds.channels) or not math.isclose(vds.side_deg, ds.side_deg):
                raise InputError(f"{vds.path}: maps differ from the training maps in size, side or channels")
            train_idx, val_idx = np.arange(len(ds)), np.arange(len(vds))
        else:
            train_idx, val_idx = split_indices(ds.labels, config.val_fraction, config.seed)
        if val_idx.size == 0:
            raise InputError("no validation maps: set val_fraction > 0 or give --val")
        train_src = _Source(ds, train_idx, config.memory_gb)
        val_src = _Source(vds if vds is not None else ds, val_idx, config.memory_gb)

        torch.manual_seed(config.seed)
        model = build_model(config.model, ds.channels, ds.pixels, width=config.width, depth=config.depth,
                            blocks=config.blocks, dropout=config.dropout).to(device)
        model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = math.ceil(len(train_src) / config.batch_size)
        sched = _make_scheduler(opt, config, steps)
        state = {"epoch": 0, "best_val_loss": math.inf, "best_epoch": -1, "bad_epochs": 0, "history": []}
        if resume:
            ck = torch.load(last, map_location=device, weights_only=False)
            old = dict(ck["config"])
            new = config.as_dict()
            differ = [k for k in new if k not in ("epochs", "device", "threads", "memory_gb") and old.get(k) != new[k]]
            if differ:
                raise InputError(f"--resume with a different config ({', '.join(differ)}); use the run's config.toml")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            state = ck["state"]
            scale = ck["meta"]["scale"]
        else:
            scale = train_src.rms()
        meta = run_meta(ds, scale)
        meta.update(n_train=len(train_src), n_val=len(val_src), val_file=str(vds.path) if vds else None,
                    n_parameters=count_parameters(model))
        (out / "figures").mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        write_toml(out / "config.toml", config.as_dict(), table="train")
        _write_metrics(out, state["history"])

        use_amp = device.type == "cuda"
        loss_fn = torch.nn.BCEWithLogitsLoss()
        bar = _bar(progress, config.epochs, state["epoch"], steps)
        t_start = time.perf_counter()
        try:
            for epoch in range(state["epoch"], config.epochs):
                if config.patience and state["bad_epochs"] >= config.patience:
                    break
                rng = np.random.default_rng([config.seed, epoch])
                torch.manual_seed(config.seed * 100003 + epoch)
                order = rng.permutation(len(train_src))
                model.train()
                t0 = time.perf_counter()
                tot_loss, tot_ok, seen = 0.0, 0, 0
                lr_epoch = opt.param_groups[0]["lr"]
                for s in range(0, len(order), config.batch_size):
                    pos = order[s : s + config.batch_size]  # streamed or in memory: the same maps, same order
                    x, y = train_src.get(pos)
                    if len(x) < 2:
                        continue
                    if config.augment:
                        x = augment_batch(x, rng)
                    xt = torch.from_numpy(np.ascontiguousarray(x / scale, dtype=np.float32)).to(device)
                    xt = xt.contiguous(memory_format=torch.channels_last)
                    yt = torch.from_numpy(y).to(device)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                        z = model(xt)
                    loss = loss_fn(z.float(), yt)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if config.schedule == "onecycle":
                        sched.step()
                    tot_loss += loss.item() * len(x)
                    tot_ok += int(((z.detach() > 0).float() == yt).sum())
                    seen += len(x)
                    bar(step=True, loss=tot_loss / seen, acc=tot_ok / seen)
                train_time = time.perf_counter() - t0
                recalibrate_batchnorm(model, train_src, scale, device)
                vloss, vacc, _ = evaluate_loss(model, val_src, scale, device)
                if config.schedule == "plateau":
                    sched.step(vloss)
                elif config.schedule != "onecycle":
                    sched.step()
                improved = vloss < state["best_val_loss"] - 1e-6
                if improved:
                    state.update(best_val_loss=vloss, best_epoch=epoch, bad_epochs=0)
                else:
                    state["bad_epochs"] += 1
                rec = {"epoch": epoch, "lr": lr_epoch, "train_loss": tot_loss / max(seen, 1),
                       "train_acc": tot_ok / max(seen, 1), "val_loss": vloss, "val_acc": vacc,
                       "seconds": train_time, "images_per_s": seen / train_time if train_time else None}
                state["history"].append(rec)
                state["epoch"] = epoch + 1
                if improved:
                    _save({"model": model.state_dict(), "config": config.as_dict(), "meta": meta, "epoch": epoch},
                          ckpt_dir / "best.pt")
                _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                       "state": state, "config": config.as_dict(), "meta": meta}, last)
                _write_metrics(out, state["history"])
                bar(epoch_done=epoch, rec=rec)
                if on_epoch is not None:
                    on_epoch(epoch, rec)
        finally:
            bar(close=True)
        summary = {"run": str(out), "model": config.model, "n_parameters": meta["n_parameters"],
                   "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
                   "best_val_loss": state["best_val_loss"],
                   "best_val_acc": next((h["val_acc"] for h in state["history"] if h["epoch"] == state["best_epoch"]),
                                        None),
                   "stopped_early": state["epoch"] < config.epochs, "seconds": time.perf_counter() - t_start,
                   "scale": scale, "n_train": len(train_src), "n_val": len(val_src)}
        tmp = out / ".summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, out / "summary.json")
        from .report import learning_curves

        learning_curves(out / "figures" / "learning_curves.png", state["history"])
        return summary
    finally:
        ds.close()
        if vds is not None:
            vds.close()


def _bar(progress: bool, epochs: int, done: int, steps: int):
    if not progress:
        return lambda **kw: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TextColumn("{task.fields[info]}"), console=console, transient=False)
    p.start()
    state = {"task": p.add_task(f"epoch {done + 1}/{epochs}", total=steps, info="")}

    def update(step=False, loss=None, acc=None, epoch_done=None, rec=None, close=False):
        if close:
            p.stop()
            return
        if step:
            p.update(state["task"], advance=1, info=f"loss {loss:.4f} acc {acc:.3f}")
        if epoch_done is not None:
            p.update(state["task"], info=f"loss {rec['train_loss']:.4f} acc {rec['train_acc']:.3f} | "
                                         f"val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.3f} lr {rec['lr']:.2e}")
            if epoch_done + 1 < epochs:
                state["task"] = p.add_task(f"epoch {epoch_done + 2}/{epochs}", total=steps, info="")
    return update
