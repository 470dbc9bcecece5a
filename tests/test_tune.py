"""`nulens tune`: exact trial counts over workers, a killed worker's trial failed and rerun, pruning,
PostgreSQL, the best config reproduces, bad input exits 2."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from typer.testing import CliRunner

from nulens.cli import app
from nulens.tune import open_study

NULENS = [sys.executable, "-m", "nulens.cli"]
PG_URL = os.environ.get("NULENS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    r = invoke("simulate", d / "d.h5", "--n-per-class", 60, "--pixels", 16, "--m-nu", "0,0.6", "--noise", "lsst-y10",
               "--quiet")
    assert r.exit_code == 0, r.output
    space = d / "space.toml"
    space.write_text('model = "nunet"\nbatch_size = 32\n[lr]\ntype = "float"\nlow = 1e-3\nhigh = 1e-2\nlog = true\n'
                     '[width]\ntype = "int"\nlow = 4\nhigh = 8\nstep = 4\n[depth]\ntype = "int"\nlow = 1\nhigh = 2\n')
    return d


def states(study_dir, storage=None, name="nulens"):
    study = open_study(study_dir, storage, name, "median", 2)
    trials = study.get_trials(deepcopy=False)
    return study, [t.state.name for t in trials], [t.number for t in trials]


def test_two_workers_finish_exactly_n(data, tmp_path):
    out = tmp_path / "study"
    r = subprocess.run([*NULENS, "tune", str(data / "d.h5"), "--out", str(out), "--trials", "7", "--epochs", "2",
                        "--workers", "2", "--space", str(data / "space.toml"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _, st, numbers = states(out)
    assert sorted(st) == sorted(s for s in st if s in ("COMPLETE", "PRUNED")) and len(st) == 7, st
    assert len(set(numbers)) == 7
    workers = {t.user_attrs["worker"]["pid"] for t in open_study(out, None, "nulens", "median", 2).trials}
    assert len(workers) == 2  # both processes took trials
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 7 and (out / "best.toml").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert "optuna-dashboard" in summary["dashboard"]
    # the best trial's config reproduces through nulens train
    run = tmp_path / "again"
    r = invoke("train", data / "d.h5", "--config", out / "best.toml", "--out", run, "--quiet")
    assert r.exit_code == 0, r.output
    best = min((row for row in rows if row["state"] == "COMPLETE"), key=lambda row: float(row["value"]))
    again = json.loads((run / "summary.json").read_text())["best_val_loss"]
    assert again == pytest.approx(float(best["value"]), rel=0.05)


def _wait_for_running_trial(out, deadline):
    while time.time() < deadline:
        if (out / "journal.log").exists():
            try:
                study = open_study(out, None, "nulens", "median", 3)
            except Exception:  # noqa: BLE001 - journal being written
                time.sleep(0.1)
                continue
            for t in study.get_trials(deepcopy=False):
                if t.state.name == "RUNNING" and "worker" in t.user_attrs and t.intermediate_values:
                    return t
        time.sleep(0.1)
    raise AssertionError("no trial started")


def test_killed_worker_trial_is_failed_and_rerun(data, tmp_path):
    out = tmp_path / "study"
    proc = subprocess.Popen([*NULENS, "tune", str(data / "d.h5"), "--out", str(out), "--trials", "5", "--epochs", "3",
                             "--workers", "2", "--space", str(data / "space.toml"), "--pruner", "none", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = _wait_for_running_trial(out, time.time() + 120)
    os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    study, st, _ = states(out)
    assert st.count("COMPLETE") == 5 and st.count("FAIL") == 1, st
    failed = [t for t in study.trials if t.state.name == "FAIL"][0]
    assert failed.number == victim.number and failed.system_attrs["fail_reason"] == "worker died"
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retry) == 1 and retry[0].params == victim.params and retry[0].state.name == "COMPLETE"


def test_whole_study_killed_then_restarted(data, tmp_path):
    out = tmp_path / "study"
    cmd = [*NULENS, "tune", str(data / "d.h5"), "--out", str(out), "--trials", "4", "--epochs", "3", "--workers", "1",
           "--space", str(data / "space.toml"), "--pruner", "none", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for_running_trial(out, time.time() + 120)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _, st, numbers = states(out)
    assert st.count("COMPLETE") == 4 and st.count("FAIL") >= 1 and st.count("RUNNING") == 0, st
    assert len(set(numbers)) == len(numbers)


def test_pruning_prunes_hopeless_learning_rates(data, tmp_path):
    space = tmp_path / "hopeless.toml"
    space.write_text('model = "nunet"\nwidth = 4\ndepth = 1\nschedule = "constant"\n[lr]\ntype = "float"\nlow = 1e-3\nhigh = 5.0\nlog = true\n')
    out = tmp_path / "study"
    r = invoke("tune", data / "d.h5", "--out", out, "--trials", 10, "--epochs", 4, "--space", space, "--quiet")
    assert r.exit_code == 0, r.output
    _, st, _ = states(out)
    assert len(st) == 10 and st.count("PRUNED") >= 1 and st.count("FAIL") == 0, st


def _postgres_available() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install nulens[postgres])"
    try:
        psycopg.connect(PG_URL, connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001
        return f"no PostgreSQL server answers at {PG_URL}: {str(exc).strip().splitlines()[0]}"
    return None


def test_two_workers_on_postgresql(data, tmp_path):
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    import optuna

    name = f"nulens-test-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "study"
    try:
        r = subprocess.run([*NULENS, "tune", str(data / "d.h5"), "--out", str(out), "--trials", "6", "--epochs", "2",
                            "--workers", "2", "--storage", PG_URL, "--study-name", name,
                            "--space", str(data / "space.toml"), "--quiet"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        _, st, numbers = states(out, PG_URL, name)
        assert len(st) == 6 and all(s in ("COMPLETE", "PRUNED") for s in st), st
        assert len(set(numbers)) == 6
    finally:
        try:
            optuna.delete_study(study_name=name, storage=PG_URL)
        except Exception:  # noqa: BLE001
            pass


@pytest.mark.parametrize("space", [
    "[learning_rate]\ntype = 'float'\nlow = 1e-3\nhigh = 1e-2\n",
    "[lr]\ntype = 'float'\nlow = 1e-2\nhigh = 1e-3\n",
    "[lr]\ntype = 'float'\nlow = 0\nhigh = 1e-3\nlog = true\n",
    "[lr]\ntype = 'gaussian'\nlow = 1e-3\nhigh = 1e-2\n",
    "[schedule]\ntype = 'categorical'\nchoices = ['cosine', 'sawtooth']\n",
    "[width]\ntype = 'int'\nlow = 4\nhigh = 8\nsteps = 2\n",
])
def test_bad_space(data, tmp_path, space):
    f = tmp_path / "s.toml"
    f.write_text(space)
    r = invoke("tune", data / "d.h5", "--out", tmp_path / "st", "--trials", 2, "--space", f)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and r.output.startswith("error: "), r.output
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("args", [["--pruner", "sometimes"], ["--trials", "0"], ["--storage", "not-a-url"],
                                  ["--storage", "postgresql://nobody@127.0.0.1:1/none"]])
def test_bad_flags(data, tmp_path, args):
    r = invoke("tune", data / "d.h5", "--out", tmp_path / "st", *args)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
