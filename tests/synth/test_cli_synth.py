"""``fairleak synth``: table, JSON and HTML written; bad input is a message, not a traceback."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd


def _run(*args, timeout=600):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "fairleak.cli", "synth", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip


def _csv(tmp_path, n=500):
    rng = np.random.default_rng(0)
    g = rng.choice(["<b>x</b>", "y"], n, p=[0.4, 0.6])
    df = pd.DataFrame({"grp": g, "age": rng.integers(18, 70, n), "score": rng.normal(0, 1, n).round(3),
                       "job": rng.choice(["a", "b"], n), "label": rng.choice(["no", "yes"], n)})  # fmt: skip
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return path


def test_synth_writes_table_and_report(tmp_path):
    src = _csv(tmp_path)
    out = tmp_path / "o" / "s.csv"
    proc = _run(str(src), "--protected", "grp", "--label", "label", "--epsilon", "5", "--rows", "123",
                "--epochs", "1", "--out", str(out), "--noise", "reproducible")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    syn = pd.read_csv(out)
    assert len(syn) == 123 and list(syn.columns) == ["grp", "age", "score", "job", "label"]
    res = json.loads(out.with_suffix(".json").read_text())
    assert 0 < res["epsilon"] <= 5.0 + 1e-6
    assert res["privacy"]["preprocessing_private"] is False  # no --schema: read from the rows
    ev = res["evaluation"]
    assert {"fidelity", "utility", "privacy", "protected_predictability"} <= set(ev)
    assert "by_group" in ev["privacy"]["membership_attack"]
    page = out.with_suffix(".html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "preprocessing not private" in page
    assert "epsilon" in proc.stdout


def test_bad_input_is_a_message(tmp_path):
    from typer.testing import CliRunner

    from fairleak.cli import app

    src = _csv(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["synth", str(src), "--protected", "nope", "--label", "label",
                              "--out", str(tmp_path / "s.csv")])  # fmt: skip
    assert res.exit_code == 2 and "'nope' is not in the data" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    res = runner.invoke(app, ["synth", str(src), "--protected", "grp", "--label", "label",
                              "--out", str(tmp_path / "s.txt")])  # fmt: skip
    assert res.exit_code == 2 and ".csv or .parquet" in res.output
