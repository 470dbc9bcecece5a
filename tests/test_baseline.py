"""`nulens baseline`: nothing beats the exact optimum; JSON complete; deterministic; bad input exits 2."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nulens.baseline import run_baseline
from nulens.cli import app


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def lognormal_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("ln")
    for name, seed in (("train", 1), ("test", 2)):
        r = invoke("simulate", d / f"{name}.h5", "--n-per-class", 1000, "--pixels", 32, "--field", "lognormal",
                   "--seed", seed, "--quiet")
        assert r.exit_code == 0, r.output
    return d


def test_exact_lognormal_llr_is_not_beaten(lognormal_pair):
    d = lognormal_pair
    res = run_baseline(d / "train.h5", d / "test.h5", d / "out.json", d / "figs", fisher=False)
    assert res["optimal_kind"] == "lognormal"
    opt, n = res["optimal_accuracy"], res["n_test"]
    se = np.sqrt(opt * (1 - opt) / n)
    assert 0.6 < opt < 0.99  # informative, not saturated
    for row in res["rows"]:
        assert row["accuracy"] <= opt + 2 * se, row
    best = max(r["accuracy"] for r in res["rows"])
    assert best > 0.55  # the baselines do learn something
    on_disk = json.loads((d / "out.json").read_text())
    assert on_disk["rows"] == res["rows"] and on_disk["optimal_accuracy"] == opt
    for row in on_disk["rows"]:
        assert set(row) >= {"features", "classifier", "accuracy", "auc"}
    assert {r["features"] for r in on_disk["rows"]} == {"PS", "PS+peaks", "PS+peaks+minima+MFs+PDF"}
    assert all((d / "figs" / f).is_file() for f in ("power_spectra.png", "peaks_minkowski.png"))


def test_deterministic_and_cli(lognormal_pair, tmp_path):
    d = lognormal_pair
    r = invoke("baseline", d / "train.h5", d / "test.h5", "--json", tmp_path / "a.json", "--no-fisher")
    assert r.exit_code == 0, r.output
    assert "optimum" in r.output
    a = json.loads((tmp_path / "a.json").read_text())
    b = run_baseline(d / "train.h5", d / "test.h5", fisher=False)
    assert [x["accuracy"] for x in a["rows"]] == [x["accuracy"] for x in b["rows"]]
    assert a["optimal_accuracy"] == b["optimal_accuracy"]


def test_noisy_lognormal_reports_gaussian_llr_not_optimum(tmp_path):
    for name, seed in (("tr", 1), ("te", 2)):
        assert invoke("simulate", tmp_path / f"{name}.h5", "--n-per-class", 100, "--pixels", 16, "--field", "lognormal",
                      "--noise", "euclid", "--seed", seed, "--quiet").exit_code == 0
    res = run_baseline(tmp_path / "tr.h5", tmp_path / "te.h5", classifiers=("logistic",), feature_sets=("PS",))
    assert res["optimal_accuracy"] is None and res["optimal_kind"] is None
    assert 0.3 < res["gaussian_llr_accuracy"] <= 1.0


def test_bad_input(tmp_path, lognormal_pair):
    d = lognormal_pair
    assert invoke("simulate", tmp_path / "other.h5", "--n-per-class", 4, "--pixels", 16, "--quiet").exit_code == 0
    assert invoke("simulate", tmp_path / "three.h5", "--n-per-class", 4, "--pixels", 32, "--m-nu", "0,0.1,0.2",
                  "--quiet").exit_code == 0
    (tmp_path / "junk.h5").write_text("junk")
    cases = [
        (d / "train.h5", tmp_path / "other.h5"),  # 32 vs 16 pixels
        (d / "train.h5", tmp_path / "missing.h5"),
        (tmp_path / "junk.h5", d / "test.h5"),
        (tmp_path / "three.h5", d / "test.h5"),  # three classes
    ]
    for train, test in cases:
        before = sorted(p.name for p in tmp_path.iterdir())
        r = invoke("baseline", train, test, "--json", tmp_path / "o.json", "--no-fisher")
        assert r.exit_code == 2, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.output
        assert sorted(p.name for p in tmp_path.iterdir()) == before
