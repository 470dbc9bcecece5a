"""``nulens evaluate`` and ``nulens predict``: a trained run on new maps, beside the optimum.

Maps come from a nulens HDF5 dataset or FITS files (a folder or files); they
must match the training maps in pixels, side and channels, or they are refused.
The input scale is the training set's, stored in the run (never recomputed on
the maps being evaluated).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .optimal import accuracy_auc, dataset_optimum
from .store import atomic_path

__all__ = ["load_run", "predict_proba", "evaluate", "load_eval_maps", "calibration_error"]


def load_run(run) -> tuple[Any, dict, dict]:
    """(model in eval mode, meta, config) of a run folder's best checkpoint."""
    import torch

    from .models import build_model

    run = Path(run)
    path = run / "checkpoints" / "best.pt"
    if not path.is_file():
        raise InputError(f"{run} is not a finished training run (no checkpoints/best.pt)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint, whatever torch raises
        raise InputError(f"cannot read checkpoint {path}: {exc}") from None
    cfg, meta = ck["config"], ck["meta"]
    model = build_model(cfg["model"], meta["channels"], meta["pixels"], width=cfg["width"], depth=cfg["depth"],
                        blocks=cfg["blocks"], dropout=cfg["dropout"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, meta, cfg


def predict_proba(model, meta: dict, maps: np.ndarray, batch: int = 256) -> np.ndarray:
    """P(class 1) per map, maps (B, C, N, N) divided by the run's one input scale."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(maps), batch):
            x = torch.from_numpy(np.ascontiguousarray(maps[s : s + batch] / meta["scale"], dtype=np.float32))
            out.append(torch.sigmoid(model(x.contiguous(memory_format=torch.channels_last))).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def calibration_error(prob: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean P - frequency of class 1| weighted over equal-width bins of P."""
    idx = np.minimum((prob * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.mean() * abs(prob[sel].mean() - labels[sel].mean())
    return float(err)


def _check_geometry(meta: dict, pixels: int, channels: int, side_deg: float, where: str) -> None:
    if pixels != meta["pixels"] or channels != meta["channels"] or not math.isclose(side_deg, meta["side_deg"],
                                                                                    rel_tol=1e-6):
        raise InputError(f"{where}: maps are {channels} x {pixels}^2 px over {side_deg} deg "
                         f"({side_deg * 60 / pixels:.3f} arcmin/px); the network was trained on {meta['channels']} x "
                         f"{meta['pixels']}^2 px over {meta['side_deg']} deg ({meta['pixel_arcmin']:.3f} arcmin/px)")


def load_eval_maps(path, meta: dict, label: int | None = None):
    """(maps, labels or None, dataset or None) from an HDF5 dataset or FITS files, checked against the run."""
    from .fits import _expand, _read, parse_m_nu
    from .store import open_dataset

    p = Path(path)
    if p.is_file() and p.suffix.lower() not in (".fits", ".fit"):
        ds = open_dataset(p)
        _check_geometry(meta, ds.pixels, ds.channels, ds.side_deg, str(p))
        labels = ds.labels if label is None else np.full(len(ds), label)
        maps = ds.read()
        bad = np.flatnonzero(~np.isfinite(maps).all(axis=(1, 2, 3)))
        if bad.size:
            ds.close()
            raise InputError(f"{p}: map {int(bad[0])} has non-finite pixels ({bad.size} such maps)")
        return maps, labels, ds
    files = _expand(str(p))
    maps, labels = [], []
    masses = [c["m_nu"] for c in meta["classes"]]
    for f in files:
        data, angle = _read(f, None)
        _check_geometry(meta, data.shape[0], 1, angle, str(f))
        maps.append(data[None])
        if label is not None:
            labels.append(label)
        else:
            m = parse_m_nu(f.resolve().parent)
            labels.append(masses.index(m) if m in masses else -1)
    labels = np.array(labels)
    return np.stack(maps), (labels if np.all(labels >= 0) else None), None


def evaluate(run, data, json_out=None, label: int | None = None, figures: bool = True) -> dict[str, Any]:
    """Accuracy +- binomial error, ROC AUC, confusion matrix, calibration error, and the optimum on the same maps."""
    model, meta, cfg = load_run(run)
    maps, labels, ds = load_eval_maps(data, meta, label)
    try:
        if labels is None:
            raise InputError(f"cannot tell the class of the maps in {data}: give --label")
        prob = predict_proba(model, meta, maps)
        acc, err, auc = accuracy_auc(prob - 0.5, labels)
        pred = (prob > 0.5).astype(int)
        confusion = [[int(np.sum((labels == t) & (pred == p))) for p in (0, 1)] for t in (0, 1)]
        res = {"run": str(run), "data": str(data), "model": cfg["model"], "n_maps": int(len(labels)),
               "accuracy": acc, "accuracy_err": err, "auc": auc, "confusion": confusion,
               "calibration_error": calibration_error(prob, labels), "optimal_accuracy": None,
               "optimal_kind": None, "optimal_auc": None, "ratio_to_optimal": None}
        scores = {f"network ({cfg['model']})": prob - 0.5}
        if ds is not None and len(np.unique(labels)) == 2:
            opt = dataset_optimum(ds)
            if opt is not None and opt.is_optimal:
                llr = np.concatenate([opt.llr(maps[s : s + 256]) for s in range(0, len(maps), 256)])
                oacc, oerr, oauc = accuracy_auc(llr, labels)
                res.update(optimal_accuracy=oacc, optimal_accuracy_err=oerr, optimal_auc=oauc,
                           optimal_kind=opt.kind, ratio_to_optimal=acc / oacc)
                scores[f"optimal LLR ({opt.kind})"] = llr
        if figures:
            fig_dir = Path(run) / "figures"
            from .report import example_maps, roc_figure

            tag = Path(str(data)).stem
            res["figures"] = [roc_figure(fig_dir / f"roc_{tag}.png", labels, scores),
                              example_maps(fig_dir / f"examples_{tag}.png", maps, labels, prob,
                                           [f"M_nu = {c['m_nu']} eV" for c in meta["classes"]])]
    finally:
        if ds is not None:
            ds.close()
    if json_out is not None:
        with atomic_path(json_out, ".json") as tmp:
            tmp.write_text(json.dumps(res, indent=1))
    return res
