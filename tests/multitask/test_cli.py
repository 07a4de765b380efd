"""`fairleak multitask`: writes multitask.json; bad input is a message and exit code 2."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fairleak.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    df = pd.DataFrame({
        "x": x, "w": rng.normal(size=n), "sex": rng.choice(["F", "M"], n),
        "a": np.where(x + rng.normal(size=n) > 0, "yes", "no"),
        "b": (x + rng.normal(size=n) > 0.5).astype(int), "z": rng.choice(["u", "v", "w"], n),
    })  # fmt: skip
    path = tmp_path_factory.mktemp("mt") / "d.csv"
    df.to_csv(path, index=False)
    return path


def test_bundled_compas_end_to_end(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["multitask", "compas", "--method", "mtl,fairbranch", "--epochs",
                                 "1", "--max-rows", "800", "--bootstrap", "10", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "multitask.json").read_text())
    assert data["kind"] == "fairleak.multitask" and list(data["methods"]) == [
        "stl",
        "mtl",
        "fairbranch",
    ]
    assert data["dataset"]["tasks"] == ["two_year_recid", "is_violent_recid"]
    assert set(data["transfer"]) == {"mtl", "fairbranch"}
    assert "fairleak multitask: compas" in result.stdout and "KG" in result.stdout


def test_user_csv_with_two_labels(csv, tmp_path):
    out = tmp_path / "o"
    result = runner.invoke(app, ["multitask", str(csv), "--labels", "a,b", "--protected", "sex",
                                 "--positive", "a=yes", "--method", "mtl", "--fairness",
                                 "demographic_parity", "--hidden", "8,4", "--epochs", "1",
                                 "--bootstrap", "5", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "multitask.json").read_text())
    assert data["dataset"]["tasks"] == ["a", "b"] and data["dataset"]["positives"] == ["yes", "1"]
    assert data["settings"]["fairness"] == "demographic_parity"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "a,bb", "--protected", "sex", "--positive", "a=yes"], "Did you mean 'b'"),
        (
            ["--labels", "a,z", "--protected", "sex", "--positive", "a=yes"],
            "'z' has 3 distinct values",
        ),
        (["--labels", "a,b", "--protected", "sex"], "say which one is the positive"),
        (["--labels", "a,b", "--protected", "sex", "--positive", "a:yes,b=1"], "LABEL=VALUE"),
        (["--protected", "sex"], "--labels COL,COL"),
        (
            ["--labels", "a,b", "--protected", "sex", "--positive", "a=yes", "--method", "pcgrad"],
            "Unknown method(s) 'pcgrad'",
        ),
        (
            ["--labels", "a,b", "--protected", "sex", "--positive", "a=yes", "--hidden", "8,x"],
            "--hidden must be positive layer widths",
        ),
        (
            [
                "--labels",
                "a,b",
                "--protected",
                "sex",
                "--positive",
                "a=yes",
                "--fairness-views",
                "each",
            ],
            "'fairness_views' parameter",
        ),
        (
            [
                "--labels",
                "a,b",
                "--protected",
                "sex",
                "--positive",
                "a=yes",
                "--method",
                "fairbranch",
                "--target-epsilon",
                "1",
            ],
            "DP-SGD is not available for method='fairbranch'",
        ),
        (
            ["--labels", "a,b", "--protected", "sex", "--positive", "a=yes", "--max-rows", "5"],
            "--max-rows must be at least 20",
        ),
        (
            ["--labels", "a,b", "--protected", "sex", "--positive", "a=yes", "--fairness-on", "g"],
            "loss_attributes ['g'] are not protected attributes of the data (sex)",
        ),
    ],
)
def test_bad_input_is_a_message_and_exit_2(csv, tmp_path, args, message):
    result = runner.invoke(app, ["multitask", str(csv), *args, "--epochs", "1", "--out",
                                 str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fairleak.cli", "multitask", str(tmp_path / "missing.csv"),
         "--labels", "a,b", "--protected", "sex"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
