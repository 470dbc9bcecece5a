"""``nulens baseline``: classical statistics and the optimum on the same test maps.

Feature sets (:data:`nulens.stats.FEATURE_SETS`), standardised, into logistic
regression and a gradient-boosted tree ensemble (scikit-learn); thresholds of
peaks, minima, MFs and PDF in units of one fixed rms (the training set's pooled
pixel rms).  Beside them, the optimum the dataset admits
(:func:`nulens.optimal.dataset_optimum`): exact for Gaussian and noiseless
lognormal datasets, otherwise the Gaussian LLR from the classes' measured
power spectra, reported as such and never as optimal.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from .errors import InputError
from .maps.grid import Grid
from .optimal import accuracy_auc, dataset_optimum, fisher_sigma
from .stats.features import FEATURE_SETS, FeatureSpec, compute_features
from .store import atomic_path, open_dataset

__all__ = ["run_baseline", "check_pair"]

CLASSIFIERS = ("logistic", "boosting")


def check_pair(train, test) -> None:
    """Both datasets must share geometry and channels and hold exactly the labels 0 and 1."""
    for name, ds in (("training", train), ("test", test)):
        if set(np.unique(ds.labels).tolist()) != {0, 1}:
            raise InputError(f"{ds.path}: the {name} set must hold exactly two classes, labels 0 and 1")
    if (train.pixels, train.channels) != (test.pixels, test.channels) or not math.isclose(train.side_deg, test.side_deg):
        raise InputError(f"{test.path} ({test.pixels} px, {test.side_deg} deg, {test.channels} ch) does not match "
                         f"{train.path} ({train.pixels} px, {train.side_deg} deg, {train.channels} ch)")


def _features(ds, spec: FeatureSpec, batch: int = 256) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {}
    for start, (maps, _) in zip(range(0, len(ds), batch), ds.batches(batch)):
        if not np.all(np.isfinite(maps)):
            raise InputError(f"{ds.path}: a map at or after index {start} has non-finite pixels")
        for k, v in compute_features(maps, spec).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def _classifier(kind: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    if kind == "boosting":
        return make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05,
                                                                             random_state=seed))
    raise InputError(f"unknown classifier {kind!r}; choose from {', '.join(CLASSIFIERS)}")


def _llr_scores(opt, ds, batch: int = 256) -> np.ndarray:
    return np.concatenate([opt.llr(maps) for maps, _ in ds.batches(batch)])


def run_baseline(train_path, test_path, json_out=None, figures=None, seed: int = 0,
                 classifiers=CLASSIFIERS, feature_sets=tuple(FEATURE_SETS), fisher: bool = True) -> dict:
    """Fit every feature set x classifier on TRAIN, score on TEST, beside the optimum; returns the result dict."""
    t0 = time.perf_counter()
    for fs in feature_sets:
        if fs not in FEATURE_SETS:
            raise InputError(f"unknown feature set {fs!r}; choose from {', '.join(FEATURE_SETS)}")
    for c in classifiers:
        _classifier(c, seed)
    if json_out is not None:
        json_out = Path(json_out)
        if not json_out.parent.is_dir():
            raise InputError(f"output folder does not exist: {json_out.parent}")
    with open_dataset(train_path) as train, open_dataset(test_path) as test:
        check_pair(train, test)
        grid = Grid(train.pixels, train.side_deg)
        scale = train.pooled_rms()
        spec = FeatureSpec(grid, scale)
        ftrain, ftest = _features(train, spec), _features(test, spec)
        ytrain, ytest = train.labels, test.labels
        rows = []
        for fs in feature_sets:
            xtr = np.hstack([ftrain[p] for p in FEATURE_SETS[fs]])
            xte = np.hstack([ftest[p] for p in FEATURE_SETS[fs]])
            for kind in classifiers:
                clf = _classifier(kind, seed).fit(xtr, ytrain)
                prob = clf.predict_proba(xte)[:, 1]
                acc, err, auc = accuracy_auc(prob - 0.5, ytest)
                rows.append({"features": fs, "classifier": kind, "accuracy": acc, "accuracy_err": err, "auc": auc,
                             "n_features": int(xtr.shape[1])})
        opt = dataset_optimum(test, train=train)
        result = {
            "train": str(train_path), "test": str(test_path), "n_train": len(train), "n_test": len(test),
            "pixels": grid.pixels, "side_deg": grid.side_deg, "field": test.attrs.get("field"),
            "n_gal": test.attrs.get("n_gal"), "scale": scale, "rows": rows,
            "optimal_kind": None, "optimal_accuracy": None, "optimal_accuracy_err": None, "optimal_auc": None,
            "optimal_analytic_accuracy": None, "gaussian_llr_accuracy": None, "gaussian_llr_auc": None,
            "fisher_sigma_m_nu_per_map": None,
        }
        if opt is not None:
            acc, err, auc = accuracy_auc(_llr_scores(opt, test), ytest)
            if opt.is_optimal:
                result.update(optimal_kind=opt.kind, optimal_accuracy=acc, optimal_accuracy_err=err, optimal_auc=auc,
                              optimal_analytic_accuracy=opt.analytic_accuracy())
            else:
                result.update(optimal_kind=None, gaussian_llr_accuracy=acc, gaussian_llr_auc=auc)
            if fisher and opt.kind == "gaussian" and test.attrs.get("source") == "simulated":
                result["fisher_sigma_m_nu_per_map"] = _fisher_for(test, grid)
        if figures is not None:
            from .report import baseline_figures

            result["figures"] = baseline_figures(Path(figures), train, spec, ftrain)
    result["seconds"] = time.perf_counter() - t0
    if json_out is not None:
        with atomic_path(json_out, ".json") as tmp:
            tmp.write_text(json.dumps(result, indent=1))
    return result


def _fisher_for(ds, grid: Grid) -> float:
    from .config import sim_config_from_dict

    cfg = sim_config_from_dict(ds.config)
    return fisher_sigma(cfg.cosmology, max(cfg.m_nu), grid, cfg.z_source, cfg.nz_width,
                        cfg.galaxy_density or 0.0, cfg.sigma_e, cfg.smoothing_sigma_arcmin)
