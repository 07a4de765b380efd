"""PA-ALOOA group privacy risk: vectorised IPR, unbiased held-out IPR, GPRP of identical groups."""

import numpy as np
import pandas as pd
import pytest

from fairleak.attacks.designs import pa_alooa_masks
from fairleak.attacks.group_risk import (
    group_risk_from_scores,
    ipr_heldout,
    ipr_oracle,
    ipr_oracle_direct,
)
from fairleak.audit import run_pa_alooa
from fairleak.data import make_synthetic
from fairleak.errors import DataValidationError
from fairleak.train import TrainConfig


def test_masks_are_complementary_pairs_and_subset_variant():
    m = pa_alooa_masks(101, 10, seed=0)
    assert (m[0::2] ^ m[1::2]).all()  # each pair splits the rows
    np.testing.assert_array_equal(m.sum(0), 5)  # every record IN for exactly R/2 models
    sub = np.arange(20)
    ms = pa_alooa_masks(101, 10, seed=0, audit_subset=sub)
    assert ms[:, 20:].all()  # records outside the audited subset are always IN
    np.testing.assert_array_equal(ms[:, :20].sum(0), 5)
    with pytest.raises(DataValidationError, match="even number"):
        pa_alooa_masks(10, 5)


def test_vectorised_ipr_equals_direct_loop():
    rng = np.random.default_rng(0)
    m = pa_alooa_masks(60, 24, seed=1)
    for scale in (0.0, 0.5, 3.0):
        s = np.round(rng.normal(size=m.shape) + scale * m, 1)  # rounding makes ties
        np.testing.assert_array_equal(ipr_oracle(s, m), ipr_oracle_direct(s, m))


def test_record_never_trained_on_has_zero_ipr_in_expectation():
    rng = np.random.default_rng(2)
    m = pa_alooa_masks(3000, 200, seed=3)
    s = rng.normal(size=m.shape)  # scores independent of membership
    held = ipr_heldout(s, m)
    assert abs(held.mean()) < 4 * held.std() / np.sqrt(len(held))
    assert ipr_oracle(s, m).mean() > 0.02  # the oracle threshold is optimistic: documented bias
    leaky = ipr_heldout(s + 1.0 * m, m)
    assert leaky.mean() > 0.3


def test_gprp_of_identical_groups_is_about_zero_and_detects_a_gap():
    rng = np.random.default_rng(4)
    R, N = 100, 4000
    m = pa_alooa_masks(N, R, seed=5)
    groups = pd.DataFrame({"g": np.where(rng.random(N) < 0.5, "a", "b")})
    same = group_risk_from_scores(rng.normal(size=(R, N)) + 0.5 * m, m, groups)
    assert same.gprp["g"]["pa_alooa_heldout"] < 0.02
    assert same.gprp["g"]["pa_alooa"] < 0.02
    leak = np.where(groups["g"].to_numpy() == "b", 1.5, 0.3)
    diff = group_risk_from_scores(rng.normal(size=(R, N)) + leak * m, m, groups)
    g = diff.gpr["g"]
    assert g["pa_alooa"]["b"]["gpr"] > g["pa_alooa"]["a"]["gpr"] + 0.2
    # worst-case (per record) audits see more risk than the average-case baselines
    for grp in ("a", "b"):
        assert g["pa_alooa"][grp]["gpr"] >= g["pa_gba"][grp]["gpr"] >= g["pa_ga"][grp]["gpr"] - 1e-9
    d = diff.to_dict()
    assert set(d["gprp"]["g"]) == {"pa_alooa", "pa_alooa_heldout", "pa_ga", "pa_gba"}


def test_tiny_groups_are_marked_and_left_out_of_gprp():
    rng = np.random.default_rng(6)
    R, N = 40, 2000
    m = pa_alooa_masks(N, R, seed=7)
    labels = np.where(np.arange(N) < 10, "tiny", np.where(rng.random(N) < 0.5, "a", "b"))
    scores = rng.normal(size=(R, N)) + 0.5 * m
    scores[:, :10] += 3.0 * m[:, :10]  # the 10-record group leaks far more
    res = group_risk_from_scores(scores, m, pd.DataFrame({"g": labels}), min_group_size=30)
    g = res.gpr["g"]["pa_alooa"]
    assert g["tiny"]["too_small"] and g["tiny"]["n"] == 10 and not g["a"]["too_small"]
    assert res.gprp["g"]["pa_alooa"] == pytest.approx(abs(g["a"]["gpr"] - g["b"]["gpr"]))
    loose = group_risk_from_scores(scores, m, pd.DataFrame({"g": labels}), min_group_size=1)
    assert loose.gprp["g"]["pa_alooa"] > 0.5  # with the tiny group in, it decides GPRP
    only_one = group_risk_from_scores(scores, m, pd.DataFrame({"g": labels}), min_group_size=1500)
    assert only_one.gprp["g"]["pa_alooa"] is None  # fewer than two groups to compare


def test_game_end_to_end_with_the_ensemble_trainer():
    ds = make_synthetic(600, n_features=5, label_noise=3.0, seed=0)
    X = ds.features.to_numpy(np.float32).copy()
    res = run_pa_alooa(
        X,
        ds.y,
        ds.sensitive,
        n_models=16,
        config=TrainConfig(hidden=(64,), epochs=60, batch_size=32, lr=3e-3),
    )
    assert res.ipr.shape == (600,) and res.n_models == 16
    assert res.ipr_heldout.mean() > 0.05  # an overfitting MLP leaks
    assert set(res.gpr["group"]["pa_alooa"]) == {"majority", "minority"}
    table = res.per_record(ds.sensitive)
    assert list(table.columns[:3]) == ["row", "ipr", "ipr_heldout"]


def test_null_level_shows_each_methods_optimism_and_real_leak_exceeds_it():
    rng = np.random.default_rng(8)
    R, N = 100, 3000
    m = pa_alooa_masks(N, R, seed=9)
    labels = np.where(np.arange(N) < 60, "small", "large")
    sf = pd.DataFrame({"g": labels})
    flat = group_risk_from_scores(rng.normal(size=(R, N)), m, sf, null_seed=0)
    # no leak: every figure sits at its null level (the oracle's bias ~1/sqrt(R) included),
    # within sampling error (held-out IPR of one record has sd ~0.14 here: wider for 60 records)
    for method in ("pa_alooa", "pa_alooa_heldout", "pa_gba"):
        for grp, tol in (("small", 0.1), ("large", 0.03)):
            real, null = flat.gpr["g"][method][grp]["gpr"], flat.null_gpr["g"][method][grp]["gpr"]
            assert abs(real - null) < tol, (method, grp)
    assert flat.null_gpr["g"]["pa_alooa"]["large"]["gpr"] > 0.05  # oracle optimism, R = 100
    # PA-GBA's best threshold on 60 records is far more optimistic than on 2,940
    assert flat.null_gpr["g"]["pa_gba"]["small"]["gpr"] > flat.null_gpr["g"]["pa_gba"]["large"]["gpr"] + 0.05
    leaky = group_risk_from_scores(rng.normal(size=(R, N)) + 1.0 * m, m, sf, null_seed=0)
    g, n = leaky.gpr["g"]["pa_alooa_heldout"], leaky.null_gpr["g"]["pa_alooa_heldout"]
    assert g["large"]["gpr"] > n["large"]["gpr"] + 0.2
    assert "null_gprp" in leaky.to_dict() and "null_gprp" not in group_risk_from_scores(
        rng.normal(size=(R, N)), m, sf
    ).to_dict()
