"""--threads, --version and the command line's flags."""

import os

import pytest
from typer.testing import CliRunner

from fairleak import __version__
from fairleak.cli import app
from fairleak.threads import available_cores, default_threads, limit_threads

runner = CliRunner()


def test_default_threads_respects_affinity_and_omp(monkeypatch):
    cores = available_cores()
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(cores + 7))
    assert default_threads() == cores  # never more than the cores this process may use
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert default_threads() == cores


def test_limit_threads_sets_torch_and_blas_and_restores():
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with limit_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="at least 1"), limit_threads(0):
        pass


def test_version_and_clean_flags():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"fairleak {__version__}"
    res = runner.invoke(app, ["audit", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = res.stdout
    for flag in ("--threads", "--impute", "--keep", "--no-auto-drop", "--no-cache", "--no-figures"):
        assert flag in text
    for bad in ("--no-no-cache", "--no-fast", "--no-include-protected", "--no-trust-pickle", "--no-impute"):
        assert bad not in text


def test_datasets_shows_the_audit_default_protected_attributes():
    res = runner.invoke(app, ["datasets"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    adult = next(line for line in res.stdout.splitlines() if line.startswith("│ adult"))
    cells = [c.strip() for c in adult.split("│") if c.strip()]
    assert "sex, race" in cells and cells[-1] == "age"


@pytest.mark.parametrize(
    "load,env,expect",
    [
        (0.1, {}, ("GOMP_SPINCOUNT", "10000")),  # quiet: a short spin
        (5.0, {}, ("OMP_WAIT_POLICY", "PASSIVE")),  # busy: sleep at once
        (5.0, {"OMP_WAIT_POLICY": "ACTIVE"}, ("OMP_WAIT_POLICY", "ACTIVE")),  # the user's choice stands
        (0.1, {"GOMP_SPINCOUNT": "7"}, ("GOMP_SPINCOUNT", "7")),
    ],
)
def test_openmp_wait_policy_follows_the_load_unless_the_user_chose(monkeypatch, load, env, expect):
    from fairleak import cli

    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(cli, "_other_busy", lambda: load)
    monkeypatch.setattr("fairleak.threads.available_cores", lambda: 2)
    cli._openmp_wait_policy()
    assert os.environ.get(expect[0]) == expect[1]
    other = "GOMP_SPINCOUNT" if expect[0] == "OMP_WAIT_POLICY" else "OMP_WAIT_POLICY"
    assert os.environ.get(other) == env.get(other)


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux's run-queue count only")
def test_a_busy_process_beside_is_counted():
    import subprocess
    import sys
    import time

    from fairleak import cli

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert cli._other_busy() >= 1
    finally:
        busy.kill()
        busy.wait()
