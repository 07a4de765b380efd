"""Audit any model: a scikit-learn Pipeline on a DataFrame with string columns (from Python, from
a skops file on the command line, from a YAML estimator), predictions only, an opaque model."""

import json
import subprocess
import sys

import jsonschema
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from fairleak.audit import audit_model, config_from_dict, run_audit
from fairleak.audit.results import results_schema
from fairleak.errors import ConfigError, DataValidationError

SMALL = {"attacks.n_reference": 8, "attacks.n_shadow": 2, "attacks.n_bootstrap": 0,
         "group_risk.n_models": 8, "fairness.n_bootstrap": 20, "fd_mia.enabled": False}  # fmt: skip


def people(n: int, seed: int = 0, random_labels: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n)
    job = rng.choice(["clerk", "farmer", "nurse", "teacher"], n)
    age = rng.integers(18, 70, n)
    x = rng.normal(size=n)
    logit = 0.8 * (sex == "male") + 0.04 * (age - 40) + x + pd.Series(job).map(
        {"clerk": 0.0, "farmer": 0.5, "nurse": -0.5, "teacher": 1.0}).to_numpy()  # fmt: skip
    y = rng.random(n) < 0.5 if random_labels else logit + rng.logistic(size=n) > 0.4
    return pd.DataFrame({"sex": sex, "job": job, "age": age, "x": x,
                         "outcome": np.where(y, "yes", "no")})  # fmt: skip


def pipeline(model) -> Pipeline:
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "job"])],
                             remainder="passthrough")  # fmt: skip
    return Pipeline([("prep", prep), ("model", model)])


def _fit(model, df):
    return model.fit(df.drop(columns=["outcome"]), df["outcome"])


def test_pipeline_on_dataframe_audited_from_python(tmp_path):
    df = people(1600)
    train, holdout = df.iloc[:800], df.iloc[800:]
    pipe = _fit(pipeline(HistGradientBoostingClassifier(max_iter=40, random_state=0)), train)
    res = audit_model(pipe, train, holdout, label="outcome", positive="yes", protected=["sex"],
                      name="hgb", config=SMALL, out_dir=tmp_path)  # fmt: skip
    data = res.results
    jsonschema.validate(data, results_schema())
    m = data["models"]["hgb"]
    assert m["kind"] == "fitted" and "Pipeline" in m["recipe"]["class"]
    assert m["recipe"]["columns"] == ["sex", "job", "age", "x"]  # clones read what the model read
    assert {"lira_online", "rmia_online", "shadow", "threshold_loss"} <= set(m["attacks"]["results"])
    assert data["split"] == {"members": 800, "nonmembers": 400, "population": 400, "membership": "given"}
    assert m["attacks"]["reference_models"]["rows_each"] == 600  # halves of members + non-members
    assert "sex" in m["fairness"]["gaps"] and m["group_risk"]["gprp"]["sex"]["pa_alooa"] is not None


def test_memorising_trees_are_exposed_and_a_model_that_ignores_its_data_is_not(tmp_path):
    """Known answers: fully grown trees on random labels memorise (exact 0 / 1 probabilities on
    their members, which every attack must survive); a model that ignores its data leaks nothing."""
    df = people(1200, seed=1, random_labels=True)
    train, holdout = df.iloc[:400], df.iloc[400:]
    cfg = {**SMALL, "attacks.n_reference": 16, "group_risk.enabled": False}
    trees = _fit(pipeline(ExtraTreesClassifier(n_estimators=30, random_state=0)), train)
    res = audit_model(trees, train, holdout, label="outcome", positive="yes", protected=["sex"],
                      config=cfg, out_dir=tmp_path / "trees")  # fmt: skip
    r = res.results["models"]["model"]["attacks"]["results"]
    assert set(r) >= {"threshold_loss", "shadow", "lira_online", "lira_offline", "rmia_online", "rmia_offline"}
    for name in ("lira_online", "rmia_online"):
        assert r[name]["auc"] > 0.9, (name, r[name]["auc"])
    dummy = _fit(pipeline(DummyClassifier(strategy="prior")), train)
    res = audit_model(dummy, train, holdout, label="outcome", positive="yes", protected=["sex"],
                      config=cfg, out_dir=tmp_path / "dummy")  # fmt: skip
    for name, v in res.results["models"]["model"]["attacks"]["results"].items():
        assert abs(v["auc"] - 0.5) <= 0.05, (name, v["auc"])


@pytest.fixture
def user_files(tmp_path):
    df = people(1200, seed=2)
    train, holdout = df.iloc[:600], df.iloc[600:]
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    return tmp_path, _fit(pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)), train)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fairleak.cli", *args], capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_cli_audits_a_skops_model_and_refuses_a_pickle(user_files):
    import joblib
    import skops.io as sio

    tmp, pipe = user_files
    sio.dump(pipe, tmp / "model.skops")
    args = ["--train", str(tmp / "train.csv"), "--holdout", str(tmp / "holdout.csv"),
            "--label", "outcome", "--positive", "yes", "--protected", "sex", "--fast"]  # fmt: skip
    proc = _cli("audit", "--model", str(tmp / "model.skops"), *args, "--out", str(tmp / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp / "out" / "results.json").read_text())
    assert list(data["models"]) == ["model"] and data["models"]["model"]["kind"] == "fitted"
    assert data["models"]["model"]["attacks"]["results"]["lira_online"]["auc"] is not None
    joblib.dump(pipe, tmp / "model.pkl")
    proc = _cli("audit", "--model", str(tmp / "model.pkl"), *args, "--out", str(tmp / "o2"))
    assert proc.returncode == 2 and "--trust-pickle" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("audit", "--model", str(tmp / "model.skops"), "--label", "outcome", "--protected", "sex",
                str(tmp / "train.csv"))  # fmt: skip
    assert proc.returncode == 2 and "which rows" in " ".join(proc.stderr.split())


class Foreign:  # a type skops does not know: refused unless named
    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def test_skops_file_with_a_foreign_type_is_refused_unless_trusted(tmp_path):
    import skops.io as sio

    from fairleak.audit import load_fitted_model

    sio.dump(Foreign(), tmp_path / "f.skops")
    with pytest.raises(DataValidationError, match=r"does not trust.*Foreign.*--trust"):
        load_fitted_model(tmp_path / "f.skops")
    name = f"{__name__}.Foreign"
    assert isinstance(load_fitted_model(tmp_path / "f.skops", trusted=[name]), Foreign)


def test_yaml_estimator_is_fitted_by_the_audit(tmp_path):
    df = people(1000, seed=3)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict({
        "data": {"dataset": str(path), "label": "outcome", "positive": "yes", "protected": ["sex"]},
        "target": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 20}},
        "attacks": {"n_reference": 4, "n_shadow": 2, "n_bootstrap": 0},
        "group_risk": {"n_models": 4}, "fairness": {"n_bootstrap": 20},
    })  # fmt: skip
    res = run_audit(cfg)
    m = res.results["models"]["target"]
    assert m["kind"] == "sklearn" and "HistGradientBoostingClassifier" in m["recipe"]["params"]["model"]
    assert m["fairness"]["accuracy"]["test"] > 0.6
    with pytest.raises(ConfigError, match="may be named in a config"):
        run_audit(config_from_dict({**cfg.to_dict(), "models": [{"name": "x", "estimator": "os.system"}]}))


def test_predictions_only_and_an_opaque_model_get_what_needs_no_retraining(tmp_path):
    df = people(1200, seed=4)
    pipe = _fit(pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)), df.iloc[:600])
    df["score"] = pipe.predict_proba(df.drop(columns=["outcome"]))[:, 1]
    df["in_train"] = np.r_[np.ones(600, int), np.zeros(600, int)]
    path = tmp_path / "scored.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict({"data": {"dataset": str(path), "label": "outcome", "positive": "yes",
                                     "protected": ["sex"], "member_column": "in_train"},
                            "models": [{"name": "scores", "predictions": "score"}],
                            "attacks": {"n_bootstrap": 0}})  # fmt: skip
    res = run_audit(cfg)
    m = res.results["models"]["scores"]
    assert set(m["attacks"]["results"]) == {"threshold_loss", "threshold_confidence",
                                            "threshold_modified_entropy", "threshold_correctness"}  # fmt: skip
    assert any("Skipped" in n for n in m["attacks"]["notes"])
    assert m["group_risk"] == {"skipped": "no training recipe: the game needs models trained like it"}
    assert "score" not in res.results["dataset"]["group_sizes"]  # not a feature either

    class Opaque:  # predicts, cannot be cloned
        def predict_proba(self, X):
            return pipe.predict_proba(X)

        classes_ = pipe.classes_

    res = audit_model(Opaque(), df.iloc[:600].drop(columns=["score", "in_train"]),
                      df.iloc[600:].drop(columns=["score", "in_train"]), label="outcome",
                      positive="yes", protected=["sex"], config=SMALL)  # fmt: skip
    m = res.results["models"]["model"]
    assert "lira_online" not in m["attacks"]["results"] and any("cannot be cloned" in n for n in m["notes"])


def test_a_foreign_reference_recipe_is_warned_about(tmp_path):
    df = people(1000, seed=5)
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict({
        "data": {"dataset": str(path), "label": "outcome", "positive": "yes", "protected": ["sex"]},
        "models": [{"name": "hgb", "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
                    "params": {"max_iter": 20},
                    "reference_estimator": "sklearn.linear_model.LogisticRegression"}],
        "attacks": {"names": ["lira_online"], "n_reference": 4, "n_bootstrap": 0},
        "group_risk": {"enabled": False}, "fd_mia": {"enabled": False},
    })  # fmt: skip
    res = run_audit(cfg)
    m = res.results["models"]["hgb"]
    assert "LogisticRegression" in m["reference_recipe"]["params"]["model"]
    assert any("not clones of the model" in n for n in m["notes"])
    from fairleak.report import render_report

    assert "not clones of the model" in render_report(res.results)


def test_user_model_needs_its_membership():
    with pytest.raises(ConfigError, match="which rows they trained on"):
        config_from_dict({"models": [{"name": "m", "file": "m.skops"}]})
    with pytest.raises(DataValidationError, match="does not exist"):
        config = config_from_dict({"data": {"dataset": "nope.csv", "label": "y", "protected": ["g"],
                                            "member_column": "m"},
                                   "models": [{"name": "m", "file": "m.skops"}]})  # fmt: skip
        run_audit(config)
