"""Training: it learns, it resumes bit-exactly after SIGKILL, augmentation is an exact symmetry,
evaluation refuses maps it was not trained for, bad input exits 2."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nulens.cli import app
from nulens.maps import Grid
from nulens.stats import binned_power
from nulens.train import TrainConfig, augment_batch, fit

NULENS = [sys.executable, "-m", "nulens.cli"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def easy(tmp_path_factory):
    """0 vs 0.6 eV, N = 32, 250 maps per class: easy but not trivial after the one fixed scale."""
    d = tmp_path_factory.mktemp("easy")
    for name, seed in (("train", 1), ("test", 2)):
        r = invoke("simulate", d / f"{name}.h5", "--n-per-class", 250, "--pixels", 32, "--m-nu", "0,0.6",
                   "--noise", "lsst-y10", "--seed", seed, "--quiet")
        assert r.exit_code == 0, r.output
    return d


@pytest.mark.parametrize("model", ["seed", "nunet"])
def test_loss_falls_and_beats_chance(easy, tmp_path, model):
    cfg = TrainConfig(model=model, epochs=6, batch_size=32, lr=2e-3, schedule="exponential", gamma=0.8, patience=0,
                      seed=3, width=12)
    res = fit(easy / "train.h5", tmp_path / "run", cfg)
    hist = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 6
    assert hist[-1]["train_loss"] < 0.8 * hist[0]["train_loss"]
    assert hist[1]["lr"] == pytest.approx(0.8 * hist[0]["lr"])  # the poster's exponential decay
    r = invoke("evaluate", tmp_path / "run", easy / "test.h5", "--json", tmp_path / "eval.json")
    assert r.exit_code == 0, r.output
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["n_maps"] == 500 and ev["accuracy"] > 0.75, ev  # chance is 0.5 +- 0.022
    assert ev["optimal_kind"] == "gaussian" and ev["optimal_accuracy"] >= ev["accuracy"] - 2 * ev["accuracy_err"]
    assert sum(map(sum, ev["confusion"])) == 500
    assert (tmp_path / "run" / "figures" / "learning_curves.png").is_file()
    assert res["n_parameters"] > 1000


def test_sigkill_and_resume_gives_the_same_weights(easy, tmp_path):
    args = ["--model", "nunet", "--epochs", 4, "--batch-size", 16, "--width", 8, "--seed", 5, "--schedule", "cosine",
            "--patience", 0, "--quiet"]
    assert invoke("train", easy / "train.h5", "--out", tmp_path / "full", *args).exit_code == 0
    run = tmp_path / "killed"
    proc = subprocess.Popen([*NULENS, "train", str(easy / "train.h5"), "--out", str(run), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 1:
            break
        time.sleep(0.005)
    time.sleep(0.3)  # well into the next epoch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(metrics.read_text().splitlines())
    assert 1 <= done < 4, done
    r = invoke("train", easy / "train.h5", "--out", run, *args, "--resume")
    assert r.exit_code == 0, r.output
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len(metrics.read_text().splitlines()) == 4


def test_streaming_from_hdf5_trains_identically(easy, tmp_path):
    """memory_gb = 0 reads every batch from the HDF5 file: the same run as in memory, weight for weight."""
    common = dict(model="nunet", epochs=2, batch_size=32, width=4, depth=1, seed=2, patience=0)
    fit(easy / "train.h5", tmp_path / "mem", TrainConfig(**common))
    fit(easy / "train.h5", tmp_path / "disk", TrainConfig(memory_gb=0.0, **common))
    a = torch.load(tmp_path / "mem" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "disk" / "checkpoints" / "last.pt", weights_only=False)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_augmentation_preserves_power_spectrum():
    grid = Grid(32, 3.5)
    x = np.random.default_rng(0).normal(size=(16, 2, 32, 32)).astype(np.float32)
    y = augment_batch(x, np.random.default_rng(1))
    assert not np.array_equal(x, y)
    edges = np.geomspace(grid.ell_fundamental * 0.99, grid.ell_max * 1.01, 12)
    _, px, _ = binned_power(x, grid, edges)
    _, py, _ = binned_power(y, grid, edges)
    np.testing.assert_allclose(py, px, rtol=1e-6, atol=1e-12 * np.abs(px).max())
    np.testing.assert_array_equal(np.sort(x.reshape(16, -1), 1), np.sort(y.reshape(16, -1), 1))  # a permutation


def test_evaluate_refuses_mismatched_maps(easy, tmp_path):
    run = tmp_path / "r"
    assert invoke("train", easy / "train.h5", "--out", run, "--model", "seed", "--epochs", 1, "--quiet").exit_code == 0
    for extra in (["--pixels", 16], ["--pixels", 32, "--side-deg", 5.0], ["--pixels", 32, "--z-source", "0.5,1.0"]):
        other = tmp_path / f"o{len(list(tmp_path.iterdir()))}.h5"
        assert invoke("simulate", other, "--n-per-class", 4, *extra, "--quiet").exit_code == 0
        r = invoke("evaluate", run, other)
        assert r.exit_code == 2 and "trained on" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    # FITS export of the test set evaluates, labels from the MassiveNuS folder names
    assert invoke("export-fits", easy / "test.h5", tmp_path / "fits").exit_code == 0
    r = invoke("evaluate", run, tmp_path / "fits", "--json", tmp_path / "f.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "f.json").read_text())["n_maps"] == 500
    r = invoke("predict", run, easy / "test.h5", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "index,p_class1" and len(lines) == 501
    assert all(0 <= float(ln.split(",")[1]) <= 1 for ln in lines[1:])


def test_bad_input(easy, tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text("[train]\nlearning_rate = 0.1\n")
    three = tmp_path / "three.h5"
    assert invoke("simulate", three, "--n-per-class", 4, "--pixels", 16, "--m-nu", "0,0.1,0.2", "--quiet").exit_code == 0
    cases = [
        ["train", easy / "train.h5", "--out", tmp_path / "a", "--model", "resnet9000"],
        ["train", easy / "train.h5", "--out", tmp_path / "a", "--schedule", "sawtooth"],
        ["train", easy / "train.h5", "--out", tmp_path / "a", "--lr", "-1"],
        ["train", easy / "train.h5", "--out", tmp_path / "a", "--config", cfg],
        ["train", easy / "train.h5", "--out", tmp_path / "a", "--resume"],
        ["train", tmp_path / "missing.h5", "--out", tmp_path / "a"],
        ["train", three, "--out", tmp_path / "a"],
        ["evaluate", tmp_path / "norun", easy / "test.h5"],
    ]
    for args in cases:
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.output)
        assert not (tmp_path / "a").exists()
