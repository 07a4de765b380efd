"""The CLI turns bad input into a specific message and exit code 2, never a traceback."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from fairleak.cli import app

runner = CliRunner()


def test_datasets_lists_bundled_data():
    result = runner.invoke(app, ["datasets", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [d["name"] for d in data] == ["adult", "compas", "german"]
    adult = data[0]
    assert adult["rows"] == 45_222
    assert adult["group_sizes"]["sex"] == {"Female": 14_695, "Male": 30_527}
    assert "race*sex" in data[1]["group_sizes"]


@pytest.fixture
def csv(tmp_path):
    df = pd.DataFrame(
        {"y": ["yes", "no"] * 30, "g": ["a", "b", "c"] * 20, "x": range(60), "z": [1.5] * 60}
    )
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "Y", "--protected", "g", "--positive", "yes"], "Did you mean 'y'"),
        (["--label", "y", "--protected", "gg", "--positive", "yes"], "protected column 'gg'"),
        (["--label", "y", "--protected", "g", "--positive", "maybe"], "never occurs"),
        (
            ["--label", "y", "--protected", "g", "--positive", "yes", "--min-group-size", "50"],
            "--min-group-size",
        ),
        (["--protected", "g"], "--label COLUMN"),
        (["--label", "y", "--positive", "yes"], "--protected"),
        (["--label", "y", "--protected", "g", "--positive", "yes", "--bins", "x25"], "COLUMN=EDGE"),
    ],
)
def test_bad_input_gives_message_and_exit_2(csv, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "fairleak.cli", "audit", str(csv), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert message in err
    assert "Traceback" not in proc.stderr + proc.stdout


def test_missing_file_and_unknown_dataset(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fairleak.cli", "audit", str(tmp_path / "nope.csv"), "--label", "y",
         "--protected", "g"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    # a name that is neither bundled nor a file: read as a file name, with the bundled names listed
    proc = subprocess.run([sys.executable, "-m", "fairleak.cli", "audit", "adlt"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "not a bundled dataset (adult, compas, german)" in err
    assert "Traceback" not in proc.stderr
