"""The ``nulens`` command line: ``nulens <verb> --help`` for each verb.

Bad input prints one line, ``error: ...``, on stderr and exits with code 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nulens: the neutrino mass in weak-lensing convergence maps.")
console = Console()


def _guard(fn):
    """Turn InputError (and unreadable/unwritable paths) into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
            typer.echo(f"error: {exc.strerror or exc}: {exc.filename}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _floats(text: Optional[str], name: str) -> Optional[list[float]]:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise InputError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None


@app.command()
@_guard
def simulate(
    out: Path = typer.Argument(..., help="output HDF5 file"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file; flags override it"),
    n_per_class: Optional[int] = typer.Option(None, "--n-per-class", help="maps per class"),
    pixels: Optional[int] = typer.Option(None, "--pixels", help="N, pixels per side (even, >= 8)"),
    side_deg: Optional[float] = typer.Option(None, "--side-deg", help="map side L [deg]"),
    z_source: Optional[str] = typer.Option(None, "--z-source", help="source redshift(s), e.g. 1.0 or 0.5,1.0"),
    field: Optional[str] = typer.Option(None, "--field", help="gaussian | lognormal"),
    noise: Optional[str] = typer.Option(None, "--noise", help="noiseless | lsst-y1 | lsst-y10 | euclid | deep"),
    n_gal: Optional[float] = typer.Option(None, "--n-gal", help="galaxies per arcmin^2 (overrides --noise)"),
    sigma_e: Optional[float] = typer.Option(None, "--sigma-e", help="shape noise per component (0.26)"),
    smoothing: Optional[float] = typer.Option(None, "--smoothing-sigma-arcmin", "--smoothing-arcmin",
                                              help="Gaussian smoothing, kernel sigma [arcmin]"),
    subtract_mean: Optional[bool] = typer.Option(None, "--subtract-mean/--keep-mean", help="remove each map's mean"),
    m_nu: Optional[str] = typer.Option(None, "--m-nu", help="class masses [eV], e.g. 0.0,0.1"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    workers: Optional[int] = typer.Option(None, "--workers", help="processes"),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", help="maps per shard (default from N)"),
    sigma8: Optional[float] = typer.Option(None, "--sigma8", help="fix sigma8 instead of A_s"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
):
    """Simulate convergence maps of several M_nu classes into one HDF5 dataset."""
    from .config import load_toml, sim_config_from_dict
    from .simulate import simulate as run

    base = load_toml(config) if config else {}
    overrides = dict(n_per_class=n_per_class, pixels=pixels, side_deg=side_deg, z_source=_floats(z_source, "--z-source"),
                     field=field, noise=noise, n_gal=n_gal, sigma_e=sigma_e, smoothing_sigma_arcmin=smoothing,
                     subtract_mean=subtract_mean, m_nu=_floats(m_nu, "--m-nu"), seed=seed, workers=workers,
                     shard_size=shard_size)
    if sigma8 is not None:
        overrides["cosmology"] = {"sigma8": sigma8, "A_s": None}
    cfg = sim_config_from_dict(base, overrides)
    summary = run(out, cfg, progress=not quiet)
    print_sim_summary(summary, cfg)


def print_sim_summary(summary, cfg) -> None:
    n_gal = cfg.galaxy_density
    table = Table(title=f"{summary.path}: {summary.n_maps} maps {summary.shape}, {cfg.field}, "
                        f"L = {cfg.side_deg} deg, z_s = {list(cfg.z_source)}, "
                        f"{'noiseless' if not n_gal else f'n_gal = {n_gal}/arcmin^2'}")
    table.add_column("label")
    table.add_column("M_nu [eV]")
    table.add_column("sigma8")
    table.add_column("Omega_c")
    table.add_column("pixel rms")
    table.add_column("C_ell/C_ell(class 0) at ell=1000")
    extra = cfg.field == "lognormal"
    if extra:
        table.add_column("clipped C_g")
    for c in summary.classes:
        row = [str(c["label"]), f"{c['m_nu']:.3f}", f"{c['sigma8']:.4f}", f"{c['Omega_c']:.4f}",
               f"{c['pixel_rms']:.5f}", f"{c['cl_ratio_ell1000']:.4f}"]
        if extra:
            row.append(f"{abs(c['clipped_fraction']):.1e}")
        table.add_row(*row)
    console.print(table)
    resumed = f", {summary.resumed_shards} shards resumed" if summary.resumed_shards else ""
    console.print(f"done in {summary.seconds:.1f} s{resumed}")


@app.command("export-fits")
@_guard
def export_fits(
    data: Path = typer.Argument(..., help="nulens HDF5 dataset"),
    out_dir: Path = typer.Argument(..., help="folder to write MassiveNuS-style FITS folders into"),
):
    """Export every map as a FITS image (LensTools/MassiveNuS layout, header ANGLE in degrees)."""
    from .fits import export_fits as run

    n = run(data, out_dir)
    console.print(f"wrote {n} FITS files under {out_dir}")


@app.command("import-fits")
@_guard
def import_fits(
    out: Path = typer.Argument(..., help="output HDF5 dataset"),
    paths: list[Path] = typer.Argument(..., help="one folder (searched recursively) or FITS file per class"),
    m_nu: Optional[str] = typer.Option(None, "--m-nu", help="M_nu [eV] per PATH, e.g. 0.0,0.1 "
                                                             "(default: parsed from MassiveNuS folder names)"),
    side_deg: Optional[float] = typer.Option(None, "--side-deg", help="map side [deg] for files without ANGLE"),
):
    """Build a dataset from FITS convergence maps, one class per PATH, labels by ascending M_nu."""
    from .fits import import_fits as run

    n, classes = run(out, [str(p) for p in paths], _floats(m_nu, "--m-nu"), side_deg)
    console.print(f"wrote {out}: {n} maps; " + ", ".join(f"label {c['label']}: M_nu = {c['m_nu']} eV ({c['n']} maps)"
                                                          for c in classes))


@app.command()
@_guard
def baseline(
    train: Path = typer.Argument(..., help="training dataset (HDF5)"),
    test: Path = typer.Argument(..., help="test dataset (HDF5)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write every number of the table here"),
    figures: Optional[Path] = typer.Option(None, "--figures", help="folder for figures (default: beside --json)"),
    seed: int = typer.Option(0, "--seed"),
    fisher: bool = typer.Option(True, "--fisher/--no-fisher", help="Fisher bound for Gaussian simulated data"),
):
    """Power spectrum, peaks, minima, MFs, PDF with logistic regression and boosting, beside the optimum."""
    from .baseline import run_baseline

    if figures is None:
        figures = (json_out.parent / "figures") if json_out else Path("baseline-figures")
    res = run_baseline(train, test, json_out, figures, seed=seed, fisher=fisher)
    print_baseline(res)


def print_baseline(res: dict) -> None:
    table = Table(title=f"{res['test']}: {res['n_test']} test maps ({res['n_train']} training), "
                        f"{res['field']}, n_gal = {res['n_gal'] or 0}")
    for col in ("features", "classifier", "accuracy", "ROC AUC"):
        table.add_column(col)
    for r in res["rows"]:
        table.add_row(r["features"], r["classifier"], f"{r['accuracy']:.4f} +- {r['accuracy_err']:.4f}", f"{r['auc']:.4f}")
    if res["optimal_accuracy"] is not None:
        kind = "exact LLR" if res["optimal_kind"] == "gaussian" else "exact field-level LLR (lognormal)"
        table.add_row("optimum", kind, f"{res['optimal_accuracy']:.4f} +- {res['optimal_accuracy_err']:.4f}",
                      f"{res['optimal_auc']:.4f}", style="bold")
    elif res["gaussian_llr_accuracy"] is not None:
        table.add_row("Gaussian LLR", "measured spectra (not optimal)", f"{res['gaussian_llr_accuracy']:.4f}",
                      f"{res['gaussian_llr_auc']:.4f}")
    console.print(table)
    if res.get("optimal_analytic_accuracy") is not None:
        console.print(f"analytic optimal accuracy (Gaussian approximation of the LLR): {res['optimal_analytic_accuracy']:.4f}")
    if res.get("fisher_sigma_m_nu_per_map") is not None:
        s = res["fisher_sigma_m_nu_per_map"]
        console.print(f"Fisher bound: sigma(M_nu) >= {s:.4f} eV per map, {s / res['n_test'] ** 0.5:.5f} eV "
                      f"for the {res['n_test']} test maps together")
    for f in res.get("figures", []):
        console.print(f"figure: {f}")


@app.command()
@_guard
def train(
    data: Path = typer.Argument(..., help="training dataset (HDF5)"),
    out: Path = typer.Option(..., "--out", help="run folder"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML ([train] table or flat); flags override it"),
    model: Optional[str] = typer.Option(None, "--model", help="seed | nunet"),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr", help="initial (onecycle: peak) learning rate"),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="exponential | cosine | plateau | onecycle | constant"),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="exponential decay per epoch"),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay"),
    patience: Optional[int] = typer.Option(None, "--patience", help="early stopping, epochs (0: off)"),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction"),
    val: Optional[Path] = typer.Option(None, "--val", help="separate validation dataset"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    augment: Optional[bool] = typer.Option(None, "--augment/--no-augment"),
    width: Optional[int] = typer.Option(None, "--width"),
    depth: Optional[int] = typer.Option(None, "--depth"),
    dropout: Optional[float] = typer.Option(None, "--dropout"),
    device: Optional[str] = typer.Option(None, "--device", help="auto | cpu | cuda"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    quiet: bool = typer.Option(False, "--quiet"),
):
    """Train a CNN classifier (massive vs massless) with checkpoints, early stopping and resume."""
    from .config import load_toml
    from .train import fit, train_config_from_dict

    base = load_toml(config) if config else {}
    cfg = train_config_from_dict(base, dict(model=model, epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule,
                                            gamma=gamma, weight_decay=weight_decay, patience=patience,
                                            val_fraction=val_fraction, seed=seed, augment=augment, width=width,
                                            depth=depth, dropout=dropout, device=device))
    res = fit(data, out, cfg, val=val, resume=resume, progress=not quiet)
    console.print(f"{res['model']} ({res['n_parameters']} parameters): {res['epochs_run']} epochs in "
                  f"{res['seconds']:.0f} s; best epoch {res['best_epoch'] + 1}: val loss {res['best_val_loss']:.4f}, "
                  f"val accuracy {res['best_val_acc']:.4f}" + (" (stopped early)" if res["stopped_early"] else ""))
    console.print(f"run folder: {out} (config.toml, metrics.jsonl, checkpoints/, figures/)")


@app.command()
@_guard
def evaluate(
    run: Path = typer.Argument(..., help="run folder of nulens train"),
    data: Path = typer.Argument(..., help="HDF5 dataset, FITS folder or FITS file"),
    json_out: Optional[Path] = typer.Option(None, "--json"),
    label: Optional[int] = typer.Option(None, "--label", help="class of every map (FITS without MassiveNuS names)"),
):
    """Accuracy, ROC AUC, confusion, calibration of a trained network, beside the optimum on the same maps."""
    from .evaluate import evaluate as run_eval

    res = run_eval(run, data, json_out, label)
    table = Table(title=f"{res['model']} on {res['data']} ({res['n_maps']} maps)")
    for col in ("classifier", "accuracy", "ROC AUC"):
        table.add_column(col)
    table.add_row("network", f"{res['accuracy']:.4f} +- {res['accuracy_err']:.4f}", f"{res['auc']:.4f}")
    if res["optimal_accuracy"] is not None:
        table.add_row(f"optimum ({res['optimal_kind']})", f"{res['optimal_accuracy']:.4f} +- "
                      f"{res['optimal_accuracy_err']:.4f}", f"{res['optimal_auc']:.4f}")
    console.print(table)
    if res["ratio_to_optimal"] is not None:
        console.print(f"network / optimal accuracy: {res['ratio_to_optimal']:.4f}")
    c = res["confusion"]
    console.print(f"confusion (rows: true class, columns: predicted): {c}; "
                  f"calibration error (ECE) {res['calibration_error']:.4f}")


@app.command()
@_guard
def predict(
    run: Path = typer.Argument(..., help="run folder of nulens train"),
    maps: Path = typer.Argument(..., help="HDF5 dataset, FITS folder or FITS file"),
    out: Optional[Path] = typer.Option(None, "--out", help="CSV file (default: print)"),
):
    """Per-map probability of the heavier class."""
    from .evaluate import load_eval_maps, load_run, predict_proba
    from .store import atomic_path

    model, meta, _ = load_run(run)
    arr, _, ds = load_eval_maps(maps, meta, label=0)
    if ds is not None:
        ds.close()
    prob = predict_proba(model, meta, arr)
    text = "index,p_class1\n" + "".join(f"{i},{p:.6f}\n" for i, p in enumerate(prob))
    if out is None:
        typer.echo(text, nl=False)
    else:
        with atomic_path(out, ".csv") as tmp:
            tmp.write_text(text)
        console.print(f"wrote {len(prob)} probabilities to {out}")


@app.command()
@_guard
def tune(
    data: Path = typer.Argument(..., help="training dataset (HDF5)"),
    out: Path = typer.Option(..., "--out", help="study folder"),
    trials: int = typer.Option(20, "--trials", help="trials in the study (complete + pruned)"),
    epochs: int = typer.Option(5, "--epochs", help="epochs per trial"),
    workers: int = typer.Option(1, "--workers", help="processes on this machine"),
    storage: Optional[str] = typer.Option(None, "--storage", help="SQLAlchemy URL (default: journal file in --out)"),
    study_name: Optional[str] = typer.Option(None, "--study-name"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds; stop claiming new trials after"),
    space: Optional[Path] = typer.Option(None, "--space", help="search space TOML (default: built in)"),
    pruner: str = typer.Option("median", "--pruner", help="median | hyperband | none"),
    val: Optional[Path] = typer.Option(None, "--val", help="separate validation dataset"),
    quiet: bool = typer.Option(False, "--quiet"),
):
    """Tune nulens train with Optuna: pruned, persistent, parallel; resumes after a kill."""
    from .tune import run_tune

    res = run_tune(data, out, trials, epochs, workers, storage, study_name, timeout, space, pruner, val,
                   progress=not quiet)
    c = res["counts"]
    console.print(f"study {res['study']}: complete {c.get('COMPLETE', 0)}, pruned {c.get('PRUNED', 0)}, "
                  f"failed {c.get('FAIL', 0)}, waiting {c.get('WAITING', 0)} in {res['seconds']:.0f} s")
    if "best_trial" in res:
        console.print(f"best trial {res['best_trial']}: val loss {res['best_val_loss']:.4f}, "
                      f"val accuracy {res['best_val_acc']:.4f}; params {res['best_params']}")
        console.print(f"reproduce: nulens train {data} --config {res['best_config']} --out RUN")
    console.print(f"trials table: {out / 'trials.csv'}; dashboard: {res['dashboard']}")


@app.command()
@_guard
def demo(out: Path = typer.Option(Path("demo-run"), "--out", help="run folder"),
         epochs: int = typer.Option(8, "--epochs", help="nunet training epochs")):
    """A small end-to-end study: simulate, baselines and optimum, train nunet, evaluate, one table."""
    import time

    from .demo import run_demo

    t0 = time.perf_counter()
    rows = run_demo(out, epochs=epochs, console=console)
    table = Table(title="nulens demo: 0 vs 0.1 eV, N = 64, L = 3.5 deg, z_s = 1, noiseless; test-set accuracy")
    for col in ("maps", "optimum", "power spectrum", "PS+peaks+minima+MFs+PDF", "nunet", "nunet / optimum"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r['dataset']} ({r['n_test']})", f"{r['optimal']:.3f} +- {r['optimal_err']:.3f}",
                      f"{r['ps']:.3f}", f"{r['all_stats']:.3f}", f"{r['nunet']:.3f} +- {r['nunet_err']:.3f}",
                      f"{r['ratio']:.3f}")
    console.print(table)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; everything is in {out}/")


def main() -> None:
    try:
        app()
    except SystemExit:
        raise


if __name__ == "__main__":
    sys.exit(main())
