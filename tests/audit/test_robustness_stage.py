"""The robustness stage: every queryable model attacked on the same records, white-box for
fairleak's models and through decisions only for scikit-learn ones; results.json validates, the
report draws it, a cached rerun gives the same figures."""

import jsonschema
import numpy as np
import pytest
import torch

from fairleak.audit import run_audit
from fairleak.audit.config import ModelSpec
from fairleak.audit.results import results_schema
from fairleak.errors import ConfigError
from fairleak.report import render_report
from fairleak.train import TrainConfig

from .conftest import tiny_config


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _robustness_only(**section):
    cfg = tiny_config(dataset="adult")
    for s in ("attacks", "group_risk", "fd_mia"):
        cfg.stages[s].enabled = False
    cfg.robustness.n_bootstrap = 50
    cfg.robustness.max_records = 400
    cfg.robustness.min_group_size = 10
    cfg.robustness.boundary_iterations = 6
    cfg.robustness.boundary_directions = 12
    for k, v in section.items():
        setattr(cfg.robustness, k, v)
    cfg.models = [
        ModelSpec(name="baseline"),
        ModelSpec(name="hgb", estimator="sklearn.ensemble.HistGradientBoostingClassifier",
                  params={"max_iter": 20}),
    ]  # fmt: skip
    return cfg


def test_stage_results_report_and_cached_rerun(tmp_path):
    cfg = _robustness_only(norms=["l2", "linf"], immutable=["capital_loss", "fnlwgt"])
    res = run_audit(cfg, out_dir=tmp_path)
    data = res.results
    jsonschema.validate(data, results_schema())
    base = data["models"]["baseline"]["robustness"]
    hgb = data["models"]["hgb"]["robustness"]
    assert base["method"] == "pgd" and hgb["method"] == "boundary"  # last norm's method
    assert "capital_loss" not in base["space"]["numeric"] and "capital_loss" in base["space"]["fixed"]
    assert "age" in base["space"]["numeric"] and "fnlwgt" not in base["space"]["fixed"]
    assert any("fnlwgt" in n for n in data["notes"])  # not a feature: ignored, said so
    for p in data["dataset"]["protected"]:
        assert p in base["space"]["fixed"]
    for r in (base, hgb):
        g = r["norms"]["l2"]
        assert g["overall"]["median"] is not None and g["overall"]["median"] > 0
        assert set(g["groups"]) == set(g["disparity"])
        assert 0 <= g["membership"]["auc"] <= 1
        assert r["vs_reference"]["reference"] == "baseline"
    # L-inf distances never exceed L2 ones for the same record's flip... per record, the
    # minimal L-inf distance is at most the minimal L2 one (||d||_inf <= ||d||_2)
    t = res.tables["robustness_per_record"]
    tb = t[t.model == "baseline"]
    fin = np.isfinite(tb.distance_l2) & np.isfinite(tb.distance_linf)
    assert (tb.distance_linf[fin] <= tb.distance_l2[fin] * 1.05 + 1e-6).mean() > 0.95
    assert len(t) == 2 * base["records"]
    row = next(r for r in data["summary"] if r["model"] == "hgb")
    assert row["robust_median"] == hgb["norms"]["l2"]["overall"]["median"]
    html = render_report(data)
    assert "Robustness disparity" in html
    # a rerun reads the targets from the cache: the stage trains the fairleak model again
    again = run_audit(cfg, out_dir=tmp_path).results["models"]["baseline"]["robustness"]
    assert again["norms"]["l2"]["overall"] == base["norms"]["l2"]["overall"]
    assert not again["notes"]
    assert again == base


def test_unknown_model_is_a_config_error():
    cfg = _robustness_only()
    with pytest.raises((ConfigError, ValueError), match=r"robustness\.models"):
        type(cfg).model_validate({**cfg.model_dump(), "stages": {"robustness": {"models": ["nope"]}}})


def test_a_method_the_model_cannot_take_skips_it_with_the_reason():
    cfg = _robustness_only(method="exact", max_records=100)
    data = run_audit(cfg).results
    for m in ("baseline", "hgb"):
        assert "linear" in data["models"][m]["robustness"]["skipped"]
    assert any("robustness skipped" in n for n in data["notes"])
    jsonschema.validate(data, results_schema())


def test_members_sit_farther_from_the_boundary_of_a_memorising_model():
    """The boundary distance as a label-only membership score sees what a memorising model
    does (Choquette-Choo et al. 2021); on German Credit's 250 members a 256-unit MLP fits them all."""
    cfg = tiny_config(dataset="german")
    for s in ("attacks", "group_risk", "fd_mia"):
        cfg.stages[s].enabled = False
    cfg.models = [ModelSpec(name="memo", train=TrainConfig(hidden=(256,), epochs=60, lr=1e-2, batch_size=64))]
    r = run_audit(cfg).results["models"]["memo"]
    assert r["fairness"]["accuracy"]["train"] > 0.95
    mem = r["robustness"]["norms"]["l2"]["membership"]
    assert mem["auc"] > 0.55 and mem["ci"]["auc"][0] > 0.5


def test_pipeline_fed_its_own_encoding_decides_as_through_the_dataframe(monkeypatch):
    """The shortcut for Pipelines that start with fairleak's preprocessor gives the same
    decisions, hence the same distances, as decoding every query to a DataFrame."""
    from fairleak.audit.stages import robustness as stage

    cfg = _robustness_only(max_records=120, categorical="swap")
    cfg.models = [cfg.models[1]]  # the HistGradientBoosting pipeline
    fast = run_audit(cfg).tables["robustness_per_record"]
    monkeypatch.setattr(stage._PipelineMap, "of", classmethod(lambda cls, *a: None))
    slow = run_audit(cfg).tables["robustness_per_record"]
    np.testing.assert_array_equal(fast.distance_l2.to_numpy(), slow.distance_l2.to_numpy())
    np.testing.assert_array_equal(fast.one_change_flips.to_numpy(), slow.one_change_flips.to_numpy())
