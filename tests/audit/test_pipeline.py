"""The audit end to end: schema, determinism, resuming, configs."""

import json

import jsonschema
import pytest

from fairleak.audit import recipes as recipes_mod
from fairleak.audit.config import config_from_dict, default_config, load_config
from fairleak.audit.pipeline import run_audit
from fairleak.audit.results import results_schema, write_outputs
from fairleak.audit.stages.fd_mia import FDMIAStage
from fairleak.errors import ConfigError

from .conftest import tiny_config


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    res = run_audit(tiny_config(), out_dir=out)
    return res, out


def test_results_validate_against_the_schema(audited):
    res, out = audited
    paths = write_outputs(res, out)
    data = json.loads(paths["results"].read_text())
    jsonschema.validate(data, results_schema())
    assert set(data["models"]) == {"baseline", "fair", "dpsgd_s"}
    base = data["models"]["baseline"]
    assert base["epsilon"] is None and data["models"]["dpsgd_s"]["epsilon"] <= 8.0 + 1e-6
    assert {"sex", "race", "sex*race"} <= set(base["fairness"]["gaps"])
    assert "by_group" in base["attacks"]["results"]["lira_online"]
    pair = data["fd_mia"]["pairs"][0]
    assert pair["biased"] == "baseline" and pair["fair"] == "fair"
    assert data["models"]["dpsgd_s"]["group_risk"]["gprp"]["sex"]["pa_alooa"] >= 0
    for name in ("per_record", "per_group_fairness", "per_group_attacks"):
        assert paths[name].stat().st_size > 0


def test_schema_rejects_a_broken_result(audited):
    res, _ = audited
    broken = json.loads(json.dumps(res.results))
    del broken["models"]["baseline"]["attacks"]["results"]["lira_online"]["auc"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, results_schema())


def test_same_seed_same_results_and_cache_reuse(audited, tmp_path):
    res, out = audited
    fresh = run_audit(tiny_config(), out_dir=tmp_path, use_cache=False)  # recomputed from scratch
    assert json.dumps(fresh.results, sort_keys=True) == json.dumps(res.results, sort_keys=True)
    again = run_audit(tiny_config(), out_dir=out)  # everything from the cache
    assert again.trainings == 0 and again.cache_hits > 0
    assert json.dumps(again.results, sort_keys=True) == json.dumps(res.results, sort_keys=True)
    other = tiny_config()
    other.seed = 1
    assert run_audit(other, out_dir=tmp_path / "s1").results != res.results


def test_killed_run_resumes_without_retraining(tmp_path, monkeypatch):
    real = recipes_mod.train_ensemble
    calls = {"n": 0}

    def dying(*a, **k):
        # a model set's call (public pretraining's own calls, once per audit, are not sets)
        pretraining = list(k.get("seeds") or []) == [recipes_mod._PRETRAIN_SEED]
        calls["n"] += not pretraining
        if calls["n"] == 5 and not pretraining:
            raise KeyboardInterrupt("killed")  # the run dies after finishing 4 trainings
        return real(*a, **k)

    monkeypatch.setattr(recipes_mod, "train_ensemble", dying)
    with pytest.raises(KeyboardInterrupt):
        run_audit(tiny_config(), out_dir=tmp_path)
    monkeypatch.setattr(recipes_mod, "train_ensemble", real)
    total = run_audit(tiny_config(), out_dir=tmp_path / "fresh").trainings
    resumed = run_audit(tiny_config(), out_dir=tmp_path)
    assert resumed.trainings == total - 4  # the 4 finished stages were reused


def test_default_and_fast_configs_and_example_file():
    cfg = default_config()
    assert FDMIAStage.pairs(cfg.fd_mia, cfg) == [("baseline", "fair")]
    fast = default_config(fast=True)
    assert fast.split.max_audit == 2000 and len(fast.models) == 4
    from pathlib import Path

    example = Path(__file__).parents[2] / "examples" / "audit.yaml"
    cfg = load_config(example)
    assert cfg.models[0].name == "baseline"


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        ({"seeed": 1}, r"unknown key 'seeed'"),
        ({"train": {"epochs": "ten"}}, r"'train.epochs'.*valid integer.*'ten'"),
        (
            {"models": [{"name": "a", "dp": {"target_epsilon": -1}}]},
            r"'models.0.dp.target_epsilon'.*greater than 0",
        ),
        ({"attacks": {"names": ["lira_onlin"]}}, r"unknown attack\(s\) \['lira_onlin'\]"),
        ({"models": [{"name": "a"}], "fd_mia": {"pairs": [["a", "b"]]}}, r"no model named 'b'"),
        ({"attacks": {"n_reference": 3}}, r"must be even"),
        ({"group_risk": {"min_group_size": 0}}, r"'group_risk.min_group_size'.*greater than or equal to 1"),
        ([1, 2], r"top level must be a mapping"),
    ],
)
def test_bad_configs_name_the_key(raw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict(raw, source="'x.yaml'")


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")


def _only(stage: str, raw: dict) -> dict:
    """A config running one stage (besides fairness, which is cheap)."""
    for s in ("attacks", "fd_mia", "group_risk"):
        raw.setdefault(s, {})["enabled"] = s == stage
    return raw


def test_fd_mia_stage_finds_nothing_between_identical_models():
    """Known answer: with penalty weight 0 the "fair" model is the biased one (same seed, same
    recipe), so the discrepancy is 0 everywhere and the discrepancy attacks are at chance."""
    raw = _only("fd_mia", tiny_config().to_dict())
    raw["models"] = [{"name": "baseline"}, {"name": "fair0", "fairness": {"weight": 0.0}}]
    raw["fd_mia"]["pairs"] = [["baseline", "fair0"]]
    res = run_audit(config_from_dict(raw)).results
    pair = res["fd_mia"]["pairs"][0]
    assert pair["fairness_weight"] == 0.0
    for name in ("fd_mia_abs", "fd_mia_signed"):
        assert pair["attacks"][name]["auc"] == 0.5
    h = pair["discrepancy_histogram"]
    assert sum(h["members"][1:]) == 0 and sum(h["nonmembers"][1:]) == 0


def test_group_risk_stage_separates_a_memorising_recipe_from_a_very_private_one():
    raw = _only("group_risk", tiny_config().to_dict())
    raw["split"]["max_audit"] = 400
    raw["models"] = [
        {"name": "memo", "train": {"hidden": [128], "epochs": 80, "batch_size": 32, "lr": 3e-3}},
        {"name": "private", "train": {"hidden": [128], "epochs": 80, "batch_size": 32, "lr": 3e-3},
         "dp": {"target_epsilon": 0.3}},
    ]  # fmt: skip
    raw["group_risk"].update(models=["memo", "private"], n_models=8)
    res = run_audit(config_from_dict(raw)).results
    memo, private = (res["models"][m]["group_risk"] for m in ("memo", "private"))
    assert memo["mean_ipr"]["pa_alooa_heldout"] > 0.15
    assert abs(private["mean_ipr"]["pa_alooa_heldout"]) < 0.08
    assert private["epsilon"] <= 0.3 + 1e-6 and memo["epsilon"] is None
