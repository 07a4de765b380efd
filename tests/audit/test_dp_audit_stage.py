"""The dp_audit stage: canaries trained in with the model's own recipe, bounds per model and per
group next to the accountant's epsilon, results.json and the report."""

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch

from fairleak.audit import run_audit
from fairleak.audit.config import ModelSpec, config_from_dict
from fairleak.audit.recipes import Inputs
from fairleak.audit.results import results_schema
from fairleak.audit.stages.dp_audit import (
    CANARY_SCORERS,
    CanaryScores,
    draw_canaries,
    flipped_view,
    register_canary_scorer,
)
from fairleak.errors import ConfigError
from fairleak.report import render_report
from fairleak.train import DPConfig, TrainConfig

from .conftest import tiny_config

# An MLP that memorises: many passes over a few hundred rows, a large step.
MEMORISING = TrainConfig(hidden=(64,), epochs=30, lr=1e-2, batch_size=64)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These models are tiny: torch's threads only contend with the other test worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _dp_audit_only(models: list[ModelSpec], seed: int = 0, **section):
    cfg = tiny_config(dataset="german")  # 1,000 rows: 250 members, 500 population rows
    cfg.seed = seed
    for s in ("attacks", "group_risk", "fd_mia", "fairness"):
        cfg.stages[s].enabled = False
    cfg.dp_audit.enabled = True
    cfg.dp_audit.runs = 4
    cfg.dp_audit.canaries = 50
    for k, v in section.items():
        setattr(cfg.dp_audit, k, v)
    cfg.models = models
    return cfg


def test_memorising_model_gets_a_clear_bound_and_results_validate():
    res = run_audit(_dp_audit_only([ModelSpec(name="memo", train=MEMORISING)], multi_run_models=8))
    data = res.results
    jsonschema.validate(data, results_schema())
    r = data["models"]["memo"]["dp_audit"]
    one = r["one_run"]
    assert r["private"] is False and r["accountant_epsilon"] is None and r["exceeds_accountant"] is None
    assert one["value"] > 1.0  # flipped labels are memorised: most confident guesses are right
    assert one["value"] <= one["ceiling"]
    assert r["canaries"]["total"] == 200 and r["canaries"]["runs"] == 4
    # stratified: every group of the protected attribute has canaries, and a bound
    groups = r["canaries"]["per_group"]
    attr = next(iter(groups))
    assert set(one["by_group"][attr]) == set(groups[attr])
    assert max(b["value"] for b in one["by_group"][attr].values()) > 0
    # the multi-run design: one canary per group and intersection (8 models can show nothing:
    # its ceiling is 0, and so is the bound)
    multi = r["multi_run"]
    assert multi["method"] == "clopper_pearson" and set(multi["by_group"]) == set(one["by_group"])
    assert multi["value"] <= multi["ceiling"]
    # summary column, per-canary table (population rows only, never members), report section
    row = next(s for s in data["summary"] if s["model"] == "memo")
    assert row["empirical_epsilon"] == one["value"]
    canaries = res.tables["dp_audit_canaries"]
    assert len(canaries) == 200 and canaries["is_in"].any() and (~canaries["is_in"]).any()
    html = render_report(data)
    assert "Empirical epsilon" in html and "accountant" in html


def test_dp_model_at_epsilon_1_never_exceeds_its_accountant_epsilon():
    spec = ModelSpec(name="dp1", train=MEMORISING.model_copy(update={"epochs": 10}),
                     dp=DPConfig(target_epsilon=1.0))  # fmt: skip
    for seed in range(3):
        res = run_audit(_dp_audit_only([spec], seed=seed))
        r = res.results["models"]["dp1"]["dp_audit"]
        assert r["private"] is True
        assert r["accountant_epsilon"] == pytest.approx(1.0, abs=0.05)
        assert r["runs_epsilon"] == pytest.approx(1.0, abs=0.05)  # calibrated on the runs' own data
        assert r["one_run"]["value"] <= r["accountant_epsilon"], seed
        assert r["one_run"]["ceiling"] > 2.0  # the canaries could have shown more than 1
        assert r["exceeds_accountant"] is False
        assert r["multi_run"] is None


@pytest.fixture
def planted_scorer():
    """A scorer for fairleak recipes that trains nothing: it 'knows' each canary's inclusion
    (a perfect white-box signal) or declines (None) for recipes it does not handle."""
    calls = []

    def scorer(ctx, recipe, design):
        calls.append(design)
        if recipe.dp is None:
            return None
        return CanaryScores(design.is_in.astype(float), "planted white box", {"epsilon": [1.0]})

    register_canary_scorer("fairleak", scorer)
    yield calls
    CANARY_SCORERS.pop("fairleak", None)


def test_canary_scorers_plug_in_by_recipe_kind(planted_scorer):
    dp = ModelSpec(name="dp", train=MEMORISING.model_copy(update={"epochs": 2}),
                   dp=DPConfig(noise_multiplier=5.0))  # fmt: skip
    plain = ModelSpec(name="plain", train=MEMORISING.model_copy(update={"epochs": 2}))
    res = run_audit(_dp_audit_only([dp, plain], k_plus=80))
    r_dp, r_plain = (res.results["models"][n]["dp_audit"] for n in ("dp", "plain"))
    assert len(planted_scorer) == 2
    design = planted_scorer[0]
    assert len(np.unique(design.canary_rows)) == len(design.canary_rows) == 200
    assert set(np.bincount(design.run)) == {50}  # disjoint canary sets, one per run
    assert not np.isin(design.canary_rows, design.rows).any()  # never a training row
    # the planted scorer is used for the DP recipe: every guess right, the ceiling
    assert r_dp["canaries"]["method"] == "planted white box"
    assert r_dp["one_run"]["value"] == pytest.approx(r_dp["one_run"]["ceiling"])
    assert r_dp["one_run"]["value"] > 3.0
    assert r_dp["exceeds_accountant"] is True  # a 'broken' mechanism is flagged ...
    assert any("above its accountant epsilon" in n for n in res.results["notes"])
    # ... and the scorer's decline falls back to the black-box canaries
    assert r_plain["canaries"]["method"].startswith("black box")
    # scorer: black_box ignores the registry
    res2 = run_audit(_dp_audit_only([dp], k_plus=80, scorer="black_box", runs=2))
    assert res2.results["models"]["dp"]["dp_audit"]["canaries"]["method"].startswith("black box")


def test_draw_canaries_is_stratified_disjoint_and_fills_small_groups():
    cells = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 20)
    pos, run = draw_canaries(cells, 300, 4, seed=1)
    assert len(np.unique(pos)) == 300
    counts = pd.Series(cells[pos]).value_counts()
    assert counts["c"] == 20 and counts["a"] == counts["b"] == 140  # equal, small group all in
    for k in range(4):  # every run stratified too
        in_run = pd.Series(cells[pos[run == k]]).value_counts()
        assert abs(in_run["a"] - 35) <= 1 and abs(in_run["c"] - 5) <= 1
    again = draw_canaries(cells, 300, 4, seed=1)
    assert (again[0] == pos).all() and (again[1] == run).all()
    assert len(draw_canaries(cells, 10_000, 2, seed=0)[0]) == len(cells)


def test_flipped_view_flips_only_the_canaries_and_shares_the_encoding():
    built = []

    def make():
        built.append(1)
        return np.arange(12, dtype=np.float32).reshape(6, 2)

    inputs = Inputs(frame=pd.DataFrame({"x": range(6)}), y=np.array([0, 1, 0, 1, 1, 0]),
                    sensitive=pd.DataFrame({"g": list("aabbab")}), make_matrix=make)  # fmt: skip
    view = flipped_view(inputs, np.array([1, 4]))
    assert view.y.tolist() == [0, 0, 0, 1, 0, 0] and inputs.y.tolist() == [0, 1, 0, 1, 1, 0]
    assert (view.matrix == inputs.matrix).all() and len(built) == 1


@pytest.mark.parametrize(
    ("section", "match"),
    [({"multi_run_models": 3}, "multi_run_models.*at least 8"), ({"models": ["nope"]}, "no model named 'nope'"),
     ({"confidence": 1.0}, "dp_audit.confidence"), ({"runs": 0}, "dp_audit.runs")],
)
def test_bad_config_is_refused_naming_the_key(section, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"dp_audit": section})


def test_off_by_default():
    assert config_from_dict({}).dp_audit.enabled is False
