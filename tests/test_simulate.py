"""`nulens simulate` end to end: provenance, reproducibility over workers, subsets and SIGKILL + resume."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from nulens.cli import app
from nulens.config import SimConfig
from nulens.simulate import class_spectra, make_plans, synthesize_maps
from nulens.store import open_dataset

NULENS = [sys.executable, "-m", "nulens.cli"]


def maps_sha(path):
    with h5py.File(path, "r") as f:
        return hashlib.sha256(f["maps"][()].tobytes()).hexdigest()


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_dataset_contents_and_provenance(tmp_path):
    out = tmp_path / "d.h5"
    r = run_cli("simulate", out, "--n-per-class", 6, "--pixels", 32, "--noise", "euclid", "--seed", 3, "--quiet")
    assert r.exit_code == 0, r.output
    assert "0.934" in r.output  # C_ell ratio at ell = 1000 in the summary
    with open_dataset(out) as ds:
        assert ds.shape == (12, 1, 32, 32) and ds.maps.dtype == np.float32
        assert ds.maps.chunks == (1, 1, 32, 32)
        np.testing.assert_array_equal(ds.labels, np.arange(12) % 2)
        np.testing.assert_array_equal(ds.params["m_nu"], np.where(ds.labels == 1, 0.1, 0.0))
        assert np.all(ds.params["seed"] == 3) and np.all(ds.params["z_s"] == 1.0)
        s8 = ds.params["sigma8"]
        assert s8[0] == pytest.approx(0.850, abs=2e-3) and s8[1] == pytest.approx(0.828, abs=2e-3)
        assert ds.config["noise"] == "euclid" and ds.attrs["n_gal"] == 30.0
        assert ds.attrs["nulens_version"] and ds.side_deg == 3.5
        ell, cl = ds.cl()
        assert cl.shape == (2, 1, 1, ell.size) and np.all(cl[1, 0, 0, ell > 500] < cl[0, 0, 0, ell > 500])
        # any subset is bit-identical to the file
        cfg = SimConfig(n_per_class=6, pixels=32, noise="euclid", seed=3)
        plans = make_plans(cfg, class_spectra(cfg))
        np.testing.assert_array_equal(synthesize_maps(cfg, plans, [7, 2]), ds.read([7, 2]))
        batches = list(ds.batches(5))
        assert [len(b[0]) for b in batches] == [5, 5, 2]
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".d.h5*"))


def test_workers_do_not_change_maps(tmp_path):
    common = ["--n-per-class", 24, "--pixels", 64, "--field", "lognormal", "--noise", "lsst-y10",
              "--shard-size", 5, "--seed", 11, "--quiet"]
    assert run_cli("simulate", tmp_path / "w1.h5", "--workers", 1, *common).exit_code == 0
    r = subprocess.run([*NULENS, "simulate", str(tmp_path / "w2.h5"), "--workers", "2", *map(str, common)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert maps_sha(tmp_path / "w1.h5") == maps_sha(tmp_path / "w2.h5")
    assert maps_sha(tmp_path / "w1.h5") != maps_sha_other_seed(tmp_path, common)


def maps_sha_other_seed(tmp_path, common):
    args = list(common)
    args[args.index("--seed") + 1] = 12
    run_cli("simulate", tmp_path / "s12.h5", *args)
    return maps_sha(tmp_path / "s12.h5")


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    args = ["--n-per-class", 40, "--pixels", 256, "--shard-size", 2, "--seed", 5, "--quiet"]
    ref = tmp_path / "ref.h5"
    assert run_cli("simulate", ref, *args).exit_code == 0
    out = tmp_path / "k.h5"
    partial = Path(f"{out}.partial")
    proc = subprocess.Popen([*NULENS, "simulate", str(out), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(partial.glob("shard_*.done"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(list(partial.glob("shard_*.done")))
    assert 3 <= done < 40, done  # killed midway
    assert not out.exists()  # never a partial file at OUT
    r = run_cli("simulate", out, *args)
    assert r.exit_code == 0, r.output
    assert "resumed" in r.output
    assert maps_sha(out) == maps_sha(ref)
    assert not partial.exists()


def test_resume_refuses_a_different_config(tmp_path):
    out = tmp_path / "x.h5"
    partial = Path(f"{out}.partial")
    partial.mkdir()
    (partial / "manifest.json").write_text('{"sha256": "something else"}')
    r = run_cli("simulate", out, "--n-per-class", 2, "--pixels", 16, "--quiet")
    assert r.exit_code == 2 and "different config" in r.output and not out.exists()


def test_toml_config_and_flag_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('n_per_class = 3\npixels = 16\nm_nu = [0.0, 0.3]\nz_source = [0.8, 1.2]\n[cosmology]\nOmega_m = 0.31\n')
    out = tmp_path / "t.h5"
    r = run_cli("simulate", out, "--config", cfg, "--pixels", 32, "--quiet")
    assert r.exit_code == 0, r.output
    with open_dataset(out) as ds:
        assert ds.shape == (6, 2, 32, 32)
        assert set(ds.params["m_nu"]) == {0.0, 0.3} and np.all(ds.params["Omega_m"] == 0.31)
        assert ds.params.dtype.names.count("z_s_1") == 1
