"""Bad input: one line on stderr, exit code 2, no traceback, no file left behind."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from nulens.cli import app

NULENS = [sys.executable, "-m", "nulens.cli"]


def assert_clean_failure(result, tmp_path, before):
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def invoke(tmp_path, *args):
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, before


@pytest.mark.parametrize("args", [
    ["--m-nu", "-0.1,0.1"],
    ["--pixels", "4"],
    ["--pixels", "33"],
    ["--side-deg", "0"],
    ["--side-deg", "-3"],
    ["--noise", "hubble-deep"],
    ["--n-gal", "-5"],
    ["--z-source", "abc"],
    ["--n-per-class", "0"],
])
def test_simulate_bad_flags(tmp_path, args):
    r, before = invoke(tmp_path, "simulate", tmp_path / "o.h5", "--n-per-class", "2", "--pixels", "16", *args)
    assert_clean_failure(r, tmp_path, before)


@pytest.mark.parametrize("toml", [
    "pixel = 64\n",  # unknown key
    "[cosmology]\nOmega_m = 0.04\n",  # Omega_m <= Omega_b
    "[cosmology]\nOmega_m = 0.046\n",
    "[cosmology]\nsigma_8 = 0.8\n",  # unknown cosmology key
    "[cosmology]\nA_s = 2e-9\nsigma8 = 0.8\n",
    "pixels = 'many'\n",
    "n_per_class = [\n",  # not TOML
])
def test_simulate_bad_config(tmp_path, toml):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    r, before = invoke(tmp_path, "simulate", tmp_path / "o.h5", "--config", cfg, "--n-per-class", "2")
    assert_clean_failure(r, tmp_path, before)


def test_missing_config_and_unwritable_out(tmp_path):
    r, before = invoke(tmp_path, "simulate", tmp_path / "o.h5", "--config", tmp_path / "nope.toml")
    assert_clean_failure(r, tmp_path, before)
    (tmp_path / "afile").write_text("x")
    r, before = invoke(tmp_path, "simulate", tmp_path / "afile" / "o.h5", "--n-per-class", "2", "--pixels", "16")
    assert_clean_failure(r, tmp_path, before)
    r, before = invoke(tmp_path, "simulate", tmp_path / "no" / "dir" / "o.h5", "--n-per-class", "2", "--pixels", "16")
    assert_clean_failure(r, tmp_path, before)


def test_bad_hdf5_on_read(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.zeros(3)
    good = tmp_path / "good.h5"
    assert CliRunner().invoke(app, ["simulate", str(good), "--n-per-class", "2", "--pixels", "16", "--quiet"]).exit_code == 0
    data = good.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 3])
    for name in ("text.h5", "foreign.h5", "truncated.h5", "missing.h5"):
        r, before = invoke(tmp_path, "export-fits", tmp_path / name, tmp_path / "fitsout")
        assert_clean_failure(r, tmp_path, before)


def test_no_traceback_from_a_real_process(tmp_path):
    r = subprocess.run([*NULENS, "simulate", str(tmp_path / "o.h5"), "--pixels", "4"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: pixels must be >= 8")
    assert list(tmp_path.iterdir()) == []


def test_nan_map_in_a_dataset_is_named(tmp_path):
    """The one pooled rms refuses non-finite pixels, for training and for the baselines alike."""
    data = tmp_path / "d.h5"
    assert CliRunner().invoke(app, ["simulate", str(data), "--n-per-class", "4", "--pixels", "32", "--quiet"]).exit_code == 0
    with h5py.File(data, "r+") as f:
        f["maps"][3, 0, 5, 5] = np.nan
    for args in (["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet"],
                 ["baseline", str(data), str(data), "--no-fisher", "--figures", str(tmp_path / "figs")]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "map 3 has non-finite pixels" in lines[0], r.output
    assert not (tmp_path / "run").exists()
