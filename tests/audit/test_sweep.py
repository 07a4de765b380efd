"""Sweeps: candidates that train together equal candidates trained alone, the front is the
non-dominated set, the choice meets its constraints, P(front) is a probability (1 for a
dominant candidate), results.json holds every candidate, the CLI refuses bad constraints."""

import json

import jsonschema
import numpy as np
import pytest

from fairleak.audit.config import AuditConfig, config_from_dict
from fairleak.audit.recipes import FairleakRecipe, Inputs, SklearnRecipe, batches
from fairleak.audit.results import results_schema, write_outputs
from fairleak.audit.sweep import SweepGrid, load_sweep_config, run_sweep, sweep_config
from fairleak.data import make_synthetic
from fairleak.errors import ConfigError
from fairleak.report import render_report
from fairleak.selection import parse_constraints
from fairleak.train import DPConfig, FairnessConfig, TrainConfig
from fairleak.train.fairboost import FairBoostClassifier

CONSTRAINTS = "eo_gap <= 0.3, epsilon <= 8"


def small_config(**data) -> AuditConfig:
    cfg = AuditConfig(models=[])
    cfg.data.dataset = "compas"
    cfg.split.max_audit = 800
    cfg.train = cfg.train.model_copy(update={"epochs": 3, "lr": 3e-3})
    cfg.fairness.n_bootstrap = 30
    cfg.attacks.n_bootstrap = 0
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


GRID = SweepGrid(fairness_weights=[0, 1, 5], epsilons=[None, 4.0], fairboost_rounds=[5, 20],
                 fairboost_estimators=20)  # fmt: skip


@pytest.fixture(scope="module")
def swept():
    return run_sweep(small_config(), GRID, front={"constraints": CONSTRAINTS, "n_bootstrap": 40})


# ---------------------------------------------------------------- training together
def test_candidates_trained_together_equal_candidates_trained_alone():
    ds = make_synthetic(500, n_features=3, seed=1)
    X = ds.features.to_numpy(np.float32)
    inputs = Inputs(frame=ds.features, y=ds.y, sensitive=ds.sensitive, make_matrix=lambda: X)
    tc = TrainConfig(epochs=2, hidden=(8,))
    recipes = [
        FairleakRecipe(tc), FairleakRecipe(tc, FairnessConfig(weight=1.0)),
        FairleakRecipe(tc, FairnessConfig(weight=3.0)),
        FairleakRecipe(tc, FairnessConfig(weight=1.0), DPConfig(noise_multiplier=1.0)),
        FairleakRecipe(tc, FairnessConfig(weight=2.0), DPConfig(noise_multiplier=1.0)),
        FairleakRecipe(tc, None, DPConfig(noise_multiplier=1.0)),
        SklearnRecipe(FairBoostClassifier(n_estimators=12, selection=3), input="matrix"),
        SklearnRecipe(FairBoostClassifier(n_estimators=12, selection=12), input="matrix"),
    ]  # fmt: skip
    groups = batches(recipes)
    # no penalty joins the penalised set without DP; under DP the private fairness release
    # changes the noise calibration, so unpenalised DP models train apart
    assert sorted(map(sorted, groups)) == [[0, 1, 2], [3, 4], [5], [6, 7]]
    rows = np.arange(400)
    for group in groups:
        members = [recipes[i] for i in group]
        together = type(members[0]).fit_batch(members, inputs, rows, np.ones((1, 400), bool), [11])
        for r, f in zip(members, together, strict=True):
            alone = r.fit(inputs, rows, np.ones((1, 400), bool), [11])
            np.testing.assert_array_equal(
                f.outputs(inputs, np.arange(500)).proba, alone.outputs(inputs, np.arange(500)).proba
            )
            assert f.privacy.get("epsilon") == alone.privacy.get("epsilon")


def test_a_sweep_trains_few_model_sets(swept):
    n = len(GRID.candidates())
    assert n == 8 and len(swept.results["models"]) == n
    # non-private MLPs: one ensemble; DP: penalised and unpenalised apart; FairBoost: one fit
    assert swept.trainings == 4


# ---------------------------------------------------------------- the front
def _objectives(front):
    return np.array([c["objectives"] for c in front["candidates"]], dtype=float)


def test_front_members_are_exactly_the_non_dominated_candidates(swept):
    front = swept.results["front"]
    F = _objectives(front)
    assert np.isfinite(F).all() and F.shape == (8, 3)
    for i, c in enumerate(front["candidates"]):
        dominated = any(
            (F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(len(F)) if j != i
        )
        assert c["on_front"] == (not dominated) == (c["rank"] == 0)
    assert front["front"] == [c["name"] for c in front["candidates"] if c["on_front"]]
    assert front["hypervolume"] > 0 and front["knee"] in front["front"]


def test_chosen_model_meets_the_constraints_and_is_the_most_accurate_that_does(swept):
    front = swept.results["front"]
    by_name = {c["name"]: c for c in front["candidates"]}
    chosen = by_name[front["selected"]]
    cons = parse_constraints(CONSTRAINTS)
    eps = np.inf if chosen["epsilon"] is None else chosen["epsilon"]
    assert chosen["worst_gaps"]["equalized_odds_difference"] <= 0.3 and eps <= 8
    feasible = [c for c in front["candidates"] if c["feasible"]]
    assert chosen["feasible"] and chosen["error"] == min(c["error"] for c in feasible)
    for c in front["candidates"]:  # feasibility is what the constraints say
        ok = c["worst_gaps"]["equalized_odds_difference"] <= 0.3 and (c["epsilon"] or np.inf) <= 8
        assert c["feasible"] == ok
    assert str(cons[0]) in front["why"] and front["selection_rule"].startswith("minimise error")


def test_front_probabilities_are_probabilities(swept):
    p = [c["p_front"] for c in swept.results["front"]["candidates"]]
    assert all(0.0 <= v <= 1.0 for v in p)
    assert max(p) > 0


def test_a_dominant_candidate_is_on_the_front_in_every_resample(tmp_path):
    ds = make_synthetic(1200, n_features=3, seed=2)
    df = ds.features.copy()
    df["group"] = ds.sensitive["group"].to_numpy()
    df["y"] = ds.y
    df["oracle"] = ds.y.astype(float)  # a model that is always right: error 0, every gap 0
    df["member"] = np.random.default_rng(0).random(len(df)) < 0.4
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    cfg = config_from_dict({
        "data": {"dataset": str(path), "label": "y", "positive": "1", "protected": ["group"],
                 "member_column": "member"},
        "models": [{"name": "oracle", "predictions": "oracle"}], "train": {"epochs": 2},
        "fairness": {"n_bootstrap": 0}, "attacks": {"n_bootstrap": 0},
    })  # fmt: skip
    res = run_sweep(cfg, {"fairness_weights": [0, 1], "epsilons": [None]},
                    front={"privacy": "none", "n_bootstrap": 50})  # fmt: skip
    cands = {c["name"]: c for c in res.results["front"]["candidates"]}
    assert cands["oracle"]["objectives"] == [0.0, 0.0]
    assert cands["oracle"]["p_front"] == 1.0 and res.results["front"]["front"] == ["oracle"]
    assert all(c["p_front"] == 0.0 for n, c in cands.items() if n != "oracle")
    assert res.results["front"]["selected"] == "oracle"


# ---------------------------------------------------------------- results and report
def test_results_json_holds_every_candidate(swept, tmp_path):
    paths = write_outputs(swept, tmp_path)
    data = json.loads(paths["results"].read_text())
    jsonschema.validate(data, results_schema())
    front = data["front"]
    assert [c["name"] for c in front["candidates"]] == list(data["models"])
    assert front["objectives"] == ["error", "equalized_odds_difference", "attack_auc"]
    c = front["candidates"][0]
    assert {"sex", "race", "race*sex"} <= set(c["gaps"])
    assert {"value", "ci_low", "ci_high"} == set(c["gaps"]["sex"]["demographic_parity_difference"])
    assert c["attack"]["name"].startswith("threshold_")
    dp = [c for c in front["candidates"] if c["family"] == "mlp_dp"]
    assert len(dp) == 3 and all(c["epsilon"] <= 4.0 + 1e-6 for c in dp)
    fb = [c for c in front["candidates"] if c["family"] == "fairboost"]
    assert sorted(c["params"]["selection"] for c in fb) == [5, 20]
    rows = {r["model"]: r for r in data["summary"]}
    assert all("p_front" in r and "front_rank" in r for r in rows.values())


def test_report_draws_the_front_with_the_chosen_model(swept):
    page = render_report(swept.results)
    assert "chosen: " in page and "scatter3d" in page
    assert swept.results["front"]["selected"] in page


def test_chosen_model_exports_to_onnx_with_the_same_probabilities(swept, tmp_path):
    pytest.importorskip("onnxruntime")
    from fairleak.audit.sweep import export_selected
    from fairleak.export import onnx_predict_proba

    for name in (swept.results["front"]["selected"], "mlp_w1_eps4", "fairboost_eo_t5"):
        path = export_selected(swept, tmp_path / f"{name}.onnx", name=name)
        d = swept.data
        raw = d.ds.features.iloc[d.nonmembers]
        got = onnx_predict_proba(path.read_bytes(), raw)[:, 1]
        want = swept.targets[name].outputs.proba[0][d.nonmembers, 1]
        np.testing.assert_allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------- configuration errors
def test_bad_constraints_and_grids_are_refused_before_training():
    cfg = small_config()
    with pytest.raises(ConfigError, match="Cannot read the constraint 'dp_gap <= abc'"):
        sweep_config(cfg, GRID, front={"constraints": "dp_gap <= abc"})
    with pytest.raises(ConfigError, match="unknown column 'colour'"):
        sweep_config(cfg, GRID, front={"constraints": "colour <= 1"})
    with pytest.raises(ConfigError, match="give 3 non-negative numbers"):
        sweep_config(cfg, GRID, front={"weights": [1, 2]})
    with pytest.raises(ConfigError, match="either constraints or weights"):
        sweep_config(cfg, GRID, front={"weights": [1, 1, 1], "constraints": "eo_gap < 0.1"})
    with pytest.raises(ConfigError, match="names the view 'nope'"):
        run_sweep(cfg, GRID, front={"constraints": "dp_gap[nope] <= 0.1"})
    with pytest.raises(ConfigError, match="epsilons must be positive"):
        run_sweep(cfg, {"epsilons": [-1]})


def test_sweep_config_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("data: {dataset: compas}\nsweep: {fairness_weights: [0, 2], epsilons: [null]}\n"
                 "front: {constraints: 'dp_gap <= 0.1'}\n")  # fmt: skip
    cfg, grid = load_sweep_config(p)
    scfg = sweep_config(cfg, grid)
    assert [m.name for m in scfg.models] == ["mlp_w0", "mlp_w2"]
    assert scfg.front.enabled and scfg.front.constraints == "dp_gap <= 0.1"
    assert not scfg.group_risk.enabled and not scfg.fd_mia.enabled
    p.write_text("sweep: {colour: blue}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'sweep.colour'"):
        load_sweep_config(p)


class _Run:
    def __init__(self, result):
        self.returncode = result.exit_code
        self.stdout, self.stderr = result.stdout, result.stderr


def _cli(*args):
    """``fairleak sweep ARGS`` in this process (as the console script runs it)."""
    from typer.testing import CliRunner

    from fairleak.cli import app

    return _Run(CliRunner().invoke(app, ["sweep", *args], env={"COLUMNS": "200"}))


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ("dp_gap <= abc", "Cannot read the constraint 'dp_gap <= abc'"),
        ("dp_gap = 0.05", "write NAME OP NUMBER with OP one of"),
        ("colour <= 1", "unknown column 'colour'"),
        ("dp_gap[nope] <= 0.1", "names the view 'nope'"),
    ],
)
def test_cli_refuses_bad_constraints_with_a_message(constraint, message, tmp_path):
    proc = _cli("compas", "--constraints", constraint, "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not (tmp_path / "results.json").exists()


def test_cli_sweep_end_to_end(tmp_path):
    out = tmp_path / "o"
    proc = _cli("compas", "--fast", "--weights", "0,2", "--epsilons", "none", "--prefer", "1,1,1",
                "--bootstrap", "20", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    assert [c["name"] for c in data["front"]["candidates"]] == ["mlp_w0", "mlp_w2"]
    assert data["front"]["selection_rule"].startswith("augmented Tchebycheff")
    assert "chosen: " + data["front"]["selected"] in " ".join(proc.stdout.split())
    bad = _cli("compas", "--epsilons", "none,x", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "--epsilons takes comma-separated numbers" in " ".join(bad.stderr.split())


def test_reference_models_of_candidates_train_together_with_the_same_results(monkeypatch):
    from fairleak.audit.stages import attacks as attacks_stage

    cfg = small_config()
    cfg.attacks.n_reference = 4
    grid = {"fairness_weights": [0, 1, 5], "epsilons": [None], "attacks": ["lira_offline", "threshold_loss"]}
    together = run_sweep(cfg, grid, front={"n_bootstrap": 20})
    # 1 set of targets + 1 set of reference models for all three candidates
    assert together.trainings == 2
    monkeypatch.setattr(attacks_stage, "batches", lambda recipes: [[i] for i in range(len(recipes))])
    alone = run_sweep(cfg, grid, front={"n_bootstrap": 20})
    assert alone.trainings == 1 + 3
    assert json.dumps(together.results, sort_keys=True) == json.dumps(alone.results, sort_keys=True)
    assert together.results["front"]["candidates"][0]["attack"]["name"] in ("lira_offline", "threshold_loss")


def test_a_candidate_that_cannot_train_is_named():
    from fairleak.errors import ParameterError

    with pytest.raises(ParameterError, match=r"Training mlp_w1_eps0.05: .*cannot be reached"):
        run_sweep(small_config(), {"fairness_weights": [1], "epsilons": [0.05]})
