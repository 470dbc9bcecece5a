"""Figures (matplotlib, Agg backend; nothing is shown, everything is written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["baseline_figures"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return str(path)


def baseline_figures(out: Path, ds, spec, features: dict[str, np.ndarray]) -> list[str]:
    """Power spectra of both classes with errors and their ratio; peak, minimum and MF curves of both classes."""
    plt = _plt()
    labels = ds.labels
    names = [f"M_nu = {c.get('m_nu', k)} eV" for k, c in enumerate(ds.classes)] or ["class 0", "class 1"]
    paths = []
    ps = features["ps"]  # first block of columns is the (0, 0) auto-spectrum
    edges = spec.ps_edges
    nb = edges.size - 1
    ell = np.sqrt(edges[1:] * edges[:-1])
    means, errs = [], []
    for k in (0, 1):
        x = ps[labels == k][:, :nb]
        means.append(x.mean(0))
        errs.append(x.std(0, ddof=1) / np.sqrt(len(x)))
    fig, (a, b) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for k in (0, 1):
        a.errorbar(ell, ell * (ell + 1) * means[k] / (2 * np.pi), ell * (ell + 1) * errs[k] / (2 * np.pi),
                   fmt="o-", ms=3, label=names[k])
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_ylabel(r"$\ell(\ell+1)C_\ell/2\pi$ (measured)")
    a.legend()
    ratio = means[1] / means[0]
    rerr = ratio * np.hypot(errs[1] / means[1], errs[0] / means[0])
    b.errorbar(ell, ratio, rerr, fmt="o-", ms=3, color="k")
    b.axhline(1, color="0.6", lw=0.8)
    b.set_xlabel(r"$\ell$")
    b.set_ylabel("ratio 1/0")
    paths.append(_save(fig, out / "power_spectra.png"))
    plt.close(fig)

    fig, axes = plt.subplots(1, 5, figsize=(17, 3.2))
    panels = [("peaks", spec.peak_edges, "peaks per map"), ("minima", spec.minimum_edges, "minima per map")]
    for ax, (key, e, ylabel) in zip(axes[:2], panels):
        centres = 0.5 * (e[1:] + e[:-1])
        for k in (0, 1):
            x = features[key][labels == k][:, : e.size - 1]
            ax.errorbar(centres, x.mean(0), x.std(0, ddof=1) / np.sqrt(len(x)), fmt="o-", ms=3, label=names[k])
        ax.set_xlabel(r"$\kappa/\sigma$")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    e = spec.mf_edges
    centres = 0.5 * (e[1:] + e[:-1])
    mf = features["mf"][:, : 3 * (e.size - 1)].reshape(len(labels), 3, -1)
    for j, ax in enumerate(axes[2:]):
        for k in (0, 1):
            x = mf[labels == k][:, j]
            ax.errorbar(centres, x.mean(0), x.std(0, ddof=1) / np.sqrt(len(x)), fmt="o-", ms=3, label=names[k])
        ax.set_xlabel(r"$\kappa/\sigma$")
        ax.set_ylabel(f"V{j}")
    fig.tight_layout()
    paths.append(_save(fig, out / "peaks_minkowski.png"))
    plt.close(fig)
    return paths


def learning_curves(path: Path, history: list[dict]) -> str | None:
    """Train/validation loss and accuracy per epoch, with the learning rate on a second axis."""
    if not history:
        return None
    plt = _plt()
    ep = [h["epoch"] + 1 for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["val_loss"] for h in history], "o-", label="validation")
    a.set_xlabel("epoch")
    a.set_ylabel("BCE loss")
    a.legend()
    lr = a.twinx()
    lr.plot(ep, [h["lr"] for h in history], "k--", lw=0.8)
    lr.set_yscale("log")
    lr.set_ylabel("learning rate (dashed)")
    b.plot(ep, [h["train_acc"] for h in history], "o-", label="train")
    b.plot(ep, [h["val_acc"] for h in history], "o-", label="validation")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def roc_figure(path: Path, labels: np.ndarray, scores: dict[str, np.ndarray]) -> str:
    """ROC curves of several scores (network, optimum, ...) on the same maps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, s in scores.items():
        order = np.argsort(-s)
        y = labels[order] == 1
        tpr = np.r_[0, np.cumsum(y) / max(y.sum(), 1)]
        fpr = np.r_[0, np.cumsum(~y) / max((~y).sum(), 1)]
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    out = _save(fig, path)
    plt.close(fig)
    return out


def example_maps(path: Path, maps: np.ndarray, labels: np.ndarray, prob: np.ndarray, names: list[str], k: int = 4) -> str:
    """A few maps of each class (first channel) with the network's P(class 1)."""
    plt = _plt()
    fig, axes = plt.subplots(2, k, figsize=(2.6 * k, 5.4))
    vmax = np.percentile(np.abs(maps[:, 0]), 99.5)
    for row, c in enumerate((0, 1)):
        idx = np.flatnonzero(labels == c)[:k]
        for col in range(k):
            ax = axes[row, col]
            ax.axis("off")
            if col < idx.size:
                i = idx[col]
                ax.imshow(maps[i, 0], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
                ax.set_title(f"{names[c]}\nP(1) = {prob[i]:.2f}", fontsize=8)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out
