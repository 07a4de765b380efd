"""`fairleak audit` end to end as a user runs it, and its error handling."""

import json
import os
import subprocess
import sys

import jsonschema

from fairleak.audit.results import results_schema


def _run(*args, timeout=900):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "fairleak.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def test_no_argument_fast_audit_end_to_end(tmp_path):
    proc = _run("audit", "--fast", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "out"
    data = json.loads((out / "results.json").read_text())
    jsonschema.validate(data, results_schema())
    assert data["dataset"]["name"] == "adult" and data["dataset"]["protected"] == ["sex", "race"]
    assert {"baseline", "fair", "dp_eps8", "dpsgd_s_eps8"} == set(data["models"])
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js inlined
    assert "fairleak audit: adult" in proc.stdout and "FD-MIA" in proc.stdout
    assert "PA-ALOOA" in proc.stderr  # progress bars go to stderr


def test_bad_config_is_a_message_not_a_traceback(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models:\n  - name: a\n    dp: {target_epsilon: -1}\n")
    proc = _run("audit", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "models.0.dp.target_epsilon" in proc.stderr and "Traceback" not in proc.stderr
    cfg.write_text("colour: blue\n")
    proc = _run("audit", "--config", str(cfg))
    assert proc.returncode == 2 and "unknown key 'colour'" in proc.stderr


def test_help_lists_the_options():
    proc = _run("audit", "--help")
    assert proc.returncode == 0
    for opt in ("--label", "--positive", "--protected", "--config", "--out", "--seed", "--fast"):
        assert opt in proc.stdout
