"""``nulens tune``: an Optuna study whose objective is one ``nulens train`` run per trial.

- The objective is :func:`nulens.train.fit` itself (no copy): it reports the
  validation loss every epoch (``trial.report``) and the pruner may stop it.
- Exactly N trials: the study is created with N *waiting* trials; workers only
  claim waiting trials (an atomic WAITING -> RUNNING transition in the storage),
  so K workers finish exactly N trials (complete + pruned) between them.
- Storage: an Optuna journal file ``STUDY/journal.log`` by default (several
  processes on one machine), or any SQLAlchemy URL (PostgreSQL for many
  machines; ``pip install nulens[postgres]``).
- Dead workers: a trial records its worker (host, pid, process start time). On
  one machine a RUNNING trial whose worker process no longer exists is marked
  FAIL and its parameters are queued again; on an RDB storage Optuna's
  heartbeat does the same across machines.  None is lost, none counted twice.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import multiprocessing as mp
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["DEFAULT_SPACE", "load_space", "run_tune", "open_study", "suggest"]

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "model": {"type": "categorical", "choices": ["seed", "nunet"]},
    "lr": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
    "schedule": {"type": "categorical", "choices": ["exponential", "cosine", "onecycle"]},
    "gamma": {"type": "float", "low": 0.8, "high": 0.98},
    "batch_size": {"type": "categorical", "choices": [32, 64]},
    "width": {"type": "int", "low": 8, "high": 24, "step": 8},
    "depth": {"type": "int", "low": 2, "high": 3},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
}
_TYPES = ("float", "int", "categorical")
_STATES_DONE = ("COMPLETE", "PRUNED")


def load_space(path: str | Path | None) -> dict[str, Any]:
    """A search space from TOML (one table per hyperparameter; plain keys are fixed values), validated."""
    from .config import load_toml
    from .train import TrainConfig

    raw = DEFAULT_SPACE if path is None else load_toml(path)
    fields = set(TrainConfig.__dataclass_fields__)
    space: dict[str, Any] = {}
    for name, spec in raw.items():
        if name not in fields:
            raise InputError(f"search space: unknown hyperparameter {name!r} (known: {', '.join(sorted(fields))})")
        if not isinstance(spec, dict):  # a fixed value
            _check_value(name, spec)
            space[name] = spec
            continue
        unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
        if unknown:
            raise InputError(f"search space: {name}: unknown field(s) {', '.join(sorted(unknown))}")
        kind = spec.get("type")
        if kind not in _TYPES:
            raise InputError(f"search space: {name}: type must be one of {', '.join(_TYPES)}, got {kind!r}")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise InputError(f"search space: {name}: categorical needs a non-empty list 'choices'")
            for c in choices:
                _check_value(name, c)
        else:
            lo, hi = spec.get("low"), spec.get("high")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)):
                raise InputError(f"search space: {name}: 'low' and 'high' must be numbers")
            if not lo < hi:
                raise InputError(f"search space: {name}: low ({lo}) must be below high ({hi})")
            if spec.get("log") and lo <= 0:
                raise InputError(f"search space: {name}: a log range needs low > 0, got {lo}")
            if kind == "int" and not (float(lo).is_integer() and float(hi).is_integer()):
                raise InputError(f"search space: {name}: int bounds must be integers")
            for v in (lo, hi):
                _check_value(name, int(v) if kind == "int" else float(v))
        space[name] = spec
    return space


def _check_value(name: str, value: Any) -> None:
    from .train import TrainConfig

    try:
        TrainConfig(**{name: value})
    except InputError as exc:
        raise InputError(f"search space: {name} = {value!r} is not a valid value ({exc})") from None
    except TypeError:
        raise InputError(f"search space: {name} = {value!r} has the wrong type") from None


def suggest(trial, space: dict[str, Any]) -> dict[str, Any]:
    """Sample one train configuration (dict of TrainConfig keys) from ``space``."""
    params = {}
    for name, spec in space.items():
        if not isinstance(spec, dict):
            params[name] = spec
        elif spec["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                             log=bool(spec.get("log", False)))
        else:
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               log=bool(spec.get("log", False)))
    return params


# --- storage and study ---------------------------------------------------------------

def _storage(url: str | None, study_dir: Path):
    import optuna

    if url is None:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = study_dir / "journal.log"
        return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    if "://" not in url:
        raise InputError(f"--storage must be an SQLAlchemy URL (e.g. postgresql://user@host/db), got {url!r}")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=5, grace_period=20,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
            engine_kwargs={"pool_pre_ping": True})
    except ImportError as exc:
        raise InputError(f"--storage {url.split('://')[0]}: database driver missing ({exc}); "
                         "install nulens[postgres]") from None
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises many kinds on a bad URL or server
        raise InputError(f"cannot open storage {url}: {str(exc).splitlines()[0]}") from None


def _pruner(name: str, epochs: int):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 2))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise InputError(f"--pruner must be median, hyperband or none, got {name!r}")


def open_study(study_dir: Path, storage_url: str | None, name: str, pruner: str, epochs: int, seed: int | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=_storage(storage_url, study_dir), study_name=name, direction="minimize",
                               load_if_exists=True, pruner=_pruner(pruner, epochs),
                               sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5))


@contextmanager
def _lock(study_dir: Path):
    """One machine's critical section for claiming and reaping trials."""
    fh = open(study_dir / ".claim.lock", "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _proc_start(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start is None or _proc_start(pid) in (None, start)


def reap_dead_trials(study) -> list[int]:
    """Mark RUNNING trials of dead workers on this host FAIL and queue their parameters again."""
    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    reaped = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker")
        if not w or w.get("host") != host or _alive(int(w["pid"]), w.get("start")):
            continue
        try:  # the reason first: attributes of a finished trial are frozen
            study._storage.set_trial_system_attr(t._trial_id, "fail_reason", "worker died")
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number}, skip_if_exists=False)
        reaped.append(t.number)
    return reaped


def _claim(study):
    """Atomically take one waiting trial (WAITING -> RUNNING in the storage), or None."""
    import optuna
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if study._storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return t._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _counts(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def _heartbeat(study, trial_id: int, stop: threading.Event) -> None:
    storage = study._storage
    if not hasattr(storage, "record_heartbeat") or storage.get_heartbeat_interval() is None:
        return
    interval = storage.get_heartbeat_interval()
    while not stop.wait(0):
        storage.record_heartbeat(trial_id)
        stop.wait(interval)


# --- workers --------------------------------------------------------------------------

def _worker(args: dict) -> None:
    """Claim and run waiting trials until none is left (or the timeout passes)."""
    import optuna
    import torch

    from .train import fit, train_config_from_dict

    torch.set_num_threads(args["threads"])
    study_dir = Path(args["study_dir"])
    study = open_study(study_dir, args["storage"], args["name"], args["pruner"], args["epochs"])
    deadline = args["deadline"]
    me = {"host": socket.gethostname(), "pid": os.getpid(), "start": _proc_start(os.getpid())}
    while deadline is None or time.time() < deadline:
        with _lock(study_dir):
            if args["storage"] is not None:
                optuna.storages.fail_stale_trials(study)
            reap_dead_trials(study)
            trial_id = _claim(study)
        if trial_id is None:
            return
        trial = optuna.trial.Trial(study, trial_id)
        trial.set_user_attr("worker", me)
        params = suggest(trial, args["space"])
        params.update(epochs=args["epochs"], threads=args["threads"])
        run_dir = study_dir / "trials" / f"{trial.number:05d}"
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(study, trial_id, stop), daemon=True)
        beat.start()

        def on_epoch(epoch, rec, trial=trial):
            trial.report(rec["val_loss"], epoch)
            trial.set_user_attr("val_acc", rec["val_acc"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            cfg = train_config_from_dict(params)
            res = fit(args["data"], run_dir, cfg, val=args["val"], on_epoch=on_epoch)
            trial.set_user_attr("best_val_acc", res["best_val_acc"])
            trial.set_user_attr("run", str(run_dir))
            study.tell(trial, res["best_val_loss"])
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except Exception as exc:  # noqa: BLE001 - a trial's failure must not take the worker down
            study._storage.set_trial_system_attr(trial_id, "fail_reason", f"{type(exc).__name__}: {exc}"[:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        finally:
            stop.set()


def run_tune(data, study_dir, trials: int, epochs: int = 5, workers: int = 1, storage: str | None = None,
             study_name: str | None = None, timeout: float | None = None, space_path=None, pruner: str = "median",
             val=None, seed: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Run (or resume) a study of exactly ``trials`` trials over ``workers`` processes; write its outputs."""
    from .store import open_dataset

    study_dir = Path(study_dir)
    if trials < 1 or epochs < 1 or workers < 1:
        raise InputError("--trials, --epochs and --workers must be >= 1")
    if timeout is not None and timeout <= 0:
        raise InputError("--timeout must be > 0 seconds")
    space = load_space(space_path)
    with open_dataset(data) as ds:  # fail early and clearly on a bad dataset
        if len(set(ds.labels.tolist())) != 2:
            raise InputError(f"{data}: tuning a classifier needs exactly two classes")
    if not study_dir.parent.is_dir():
        raise InputError(f"output folder does not exist: {study_dir.parent}")
    (study_dir / "trials").mkdir(parents=True, exist_ok=True)
    name = study_name or "nulens"
    study = open_study(study_dir, storage, name, pruner, epochs, seed)
    with _lock(study_dir):
        reap_dead_trials(study)
        c = _counts(study)
        queued = sum(c.get(s, 0) for s in ("COMPLETE", "PRUNED", "WAITING", "RUNNING"))
        for _ in range(max(0, trials - queued)):
            study.enqueue_trial({}, skip_if_exists=False)
    args = {"data": str(data), "val": str(val) if val else None, "study_dir": str(study_dir), "storage": storage,
            "name": name, "pruner": pruner, "epochs": epochs, "space": space,
            "threads": max(1, (os.cpu_count() or 1) // workers),
            "deadline": time.time() + timeout if timeout else None}
    t0 = time.time()
    report = _reporter(progress, trials)
    try:
        while True:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_worker, args=(args,), daemon=False) for _ in range(workers)]
            for p in procs:
                p.start()
            while any(p.is_alive() for p in procs):
                time.sleep(0.5)
                report(study)
            for p in procs:
                p.join()
            with _lock(study_dir):
                reaped = reap_dead_trials(study)  # a worker killed mid-trial: rerun its trial
            c = _counts(study)
            timed_out = args["deadline"] is not None and time.time() >= args["deadline"]
            if timed_out or (not reaped and c.get("WAITING", 0) == 0):
                break
    finally:
        report(None)
    return write_outputs(study, study_dir, space, epochs, storage, time.time() - t0)


def _reporter(progress: bool, total: int):
    if not progress:
        return lambda study: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    p = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                 TextColumn("{task.fields[info]}"), console=Console(stderr=True))
    p.start()
    task = p.add_task("t", total=total, info="")

    def update(study):
        if study is None:
            p.stop()
            return
        c = _counts(study)
        done = sum(c.get(s, 0) for s in _STATES_DONE)
        p.update(task, completed=done, info=f"complete {c.get('COMPLETE', 0)}  pruned {c.get('PRUNED', 0)}  "
                                            f"running {c.get('RUNNING', 0)}  failed {c.get('FAIL', 0)}")
    return update


def write_outputs(study, study_dir: Path, space, epochs: int, storage: str | None, seconds: float) -> dict[str, Any]:
    """best.toml, trials.csv, figures, summary.json; returns the summary."""
    from optuna.trial import TrialState

    from .train import TrainConfig, train_config_from_dict, write_toml

    trials = study.get_trials(deepcopy=False)
    c = _counts(study)
    summary: dict[str, Any] = {"study": study.study_name, "counts": c, "seconds": seconds,
                               "dashboard": f"optuna-dashboard {storage or study_dir / 'journal.log'}"}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = min(complete, key=lambda t: t.value)
        params = {k: (v if not isinstance(v, dict) else None) for k, v in space.items()}
        params = {k: v for k, v in params.items() if v is not None}
        params.update(best.params)
        params["epochs"] = epochs
        cfg = train_config_from_dict(params)
        write_toml(study_dir / "best.toml", cfg.as_dict(), table="train")
        summary.update(best_trial=best.number, best_val_loss=best.value, best_val_acc=best.user_attrs.get("best_val_acc"),
                       best_params=best.params, best_config=str(study_dir / "best.toml"))
    names = sorted({k for t in trials for k in t.params})
    tmp = study_dir / ".trials.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["number", "state", "value", "best_val_acc", "epochs_reported", "retry_of", *names])
        for t in trials:
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value, t.user_attrs.get("best_val_acc", ""),
                        len(t.intermediate_values), t.user_attrs.get("retry_of", ""),
                        *[t.params.get(k, "") for k in names]])
    os.replace(tmp, study_dir / "trials.csv")
    summary["figures"] = _figures(study, study_dir / "figures") if len(complete) >= 2 else []
    tmp = study_dir / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(tmp, study_dir / "summary.json")
    return summary


def _figures(study, out: Path) -> list[str]:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization.matplotlib as ovm

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    out.mkdir(parents=True, exist_ok=True)
    made = []
    for name, fn in (("optimization_history", ovm.plot_optimization_history),
                     ("param_importances", ovm.plot_param_importances),
                     ("parallel_coordinate", ovm.plot_parallel_coordinate)):
        try:
            ax = fn(study)
            fig = (ax if hasattr(ax, "figure") else ax.flat[0]).figure
            fig.savefig(out / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(fig)
            made.append(str(out / f"{name}.png"))
        except Exception:  # noqa: BLE001 - e.g. importances need >= 2 varied parameters
            continue
    return made
