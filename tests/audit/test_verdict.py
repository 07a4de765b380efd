"""The verdict: sentences made from the numbers and their intervals, thresholds configurable."""

import functools

import pytest

from fairleak.audit import apply_overrides, default_config, run_audit
from fairleak.audit.verdict import VerdictSection, verdict


def _gap(value, lo, hi):
    return {"value": value, "ci_low": lo, "ci_high": hi, "groups_used": ["Female", "Male"], "note": None}


def _attack(auc, lo, hi, tpr, n=200):
    return {"auc": auc, "tpr_at_1%_fpr": tpr, "n_members": n, "n_nonmembers": n,
            "ci": {"auc": [lo, hi], "tpr_at_1%_fpr": [tpr / 2, tpr * 2]}}  # fmt: skip


def _results(**over):
    leaky = _attack(0.61, 0.57, 0.65, 0.03, 2000)
    leaky["by_group"] = {"race": {"Black": _attack(0.66, 0.6, 0.72, 0.05, 150),
                                  "Tiny": _attack(0.9, 0.7, 0.99, 0.2, 12)},
                         "sex": {"Male": _attack(0.52, 0.47, 0.57, 0.01, 900)}}  # fmt: skip
    model = {
        "epsilon": None, "delta": None,
        "fairness": {
            "accuracy": {"test": 0.83}, "predictor": {"degenerate": False, "majority_rate": 0.75},
            "gaps": {"sex": {"demographic_parity_difference": _gap(0.18, 0.16, 0.20),
                             "equalized_odds_difference": _gap(0.12, 0.05, 0.19)},
                     "race": {"demographic_parity_difference": _gap(0.04, 0.01, 0.08),
                              "equalized_odds_difference": _gap(0.06, 0.02, 0.1)}},
        },
        "attacks": {"strongest": "lira_online", "results": {"lira_online": leaky}},
    }  # fmt: skip
    safe = {
        "epsilon": 1.0, "delta": 1e-5,
        "fairness": {"accuracy": {"test": 0.8}, "predictor": {"degenerate": False, "majority_rate": 0.75},
                     "gaps": {"sex": {"demographic_parity_difference": _gap(0.03, 0.01, 0.05),
                                      "equalized_odds_difference": _gap(0.05, 0.02, 0.08)}}},
        "attacks": {"strongest": "loss", "results": {"loss": _attack(0.51, 0.49, 0.53, 0.011)}},
    }  # fmt: skip
    return {"models": {"baseline": model, "dp": safe, **over}}


def test_sentences_carry_numbers_intervals_and_thresholds():
    v = verdict(_results())
    text = [s["text"] for s in v["models"]["baseline"]]
    joined = " ".join(text)
    assert "Leaks membership above chance: lira_online AUC 0.61 [0.57, 0.65]" in joined
    assert "3.0x chance" in joined
    assert "race=Black (AUC 0.66 [0.60, 0.72], n=150)" in joined
    assert "Tiny" not in joined  # 12 members: below the per-group minimum
    assert "sex=Male" not in joined  # interval includes chance
    assert "Demographic parity gap for sex 0.18 [0.16, 0.20], above the 0.1 rule of thumb (" in joined
    assert "Equalized odds gap for sex 0.12 [0.05, 0.19], above the 0.1 rule of thumb, though its interval reaches below it" in joined
    assert "race 0.04" not in joined
    level = {s["text"].split(",")[0]: s["level"] for s in v["models"]["baseline"] if s["topic"] == "fairness"}
    assert level["Demographic parity gap for sex 0.18 [0.16"] == "concern"  # the interval clears 0.1
    assert level["Equalized odds gap for sex 0.12 [0.05"] == "info"  # it does not: a note
    dp = " ".join(s["text"] for s in v["models"]["dp"])
    assert "No membership leakage shown beyond chance" in dp and "at or below the 0.1 rule of thumb" in dp
    assert "(epsilon, delta) = (1.00, 1e-05)" in dp
    assert v["thresholds"]["gap_threshold"] == 0.1


def test_thresholds_are_configurable():
    v = verdict(_results(), {"gap_threshold": 0.2, "min_group_size": 10})
    joined = " ".join(s["text"] for s in v["models"]["baseline"])
    assert "rule of thumb" in joined and "above the 0.2" not in joined  # 0.18 is below 0.2
    assert "race=Tiny" in joined
    with pytest.raises(ValueError):
        VerdictSection(gap_threshold=2)


def test_degenerate_model_gets_no_fairness_sentences():
    res = _results()
    res["models"]["baseline"]["fairness"]["predictor"] = {
        "degenerate": True, "reason": "constant predictor: positive for 100.0% of rows", "majority_rate": 0.7}
    sentences = verdict(res)["models"]["baseline"]
    assert sentences[0]["level"] == "concern" and "constant predictor" in sentences[0]["text"]
    assert not [s for s in sentences if s["topic"] == "fairness"]


def test_privacy_sentence_says_a_dp_model_started_from_public_pretraining():
    res = _results()
    res["models"]["dp"]["privacy"] = {"public_pretraining": {"rows": 500}}
    dp = " ".join(s["text"] for s in verdict(res)["models"]["dp"])
    assert "(1.00, 1e-05), fine-tuned from a model trained without privacy on 500 public rows" in dp
    assert "public rows" not in " ".join(s["text"] for s in verdict(_results())["models"]["dp"])


@functools.cache
def _default_models_on(dataset: str, fast: bool) -> dict:
    """The default audit's models on a bundled dataset (training only: no attacks, no bootstrap)."""
    cfg = apply_overrides(default_config(fast=fast), {
        "data.dataset": dataset, "attacks.enabled": False, "fd_mia.enabled": False,
        "group_risk.enabled": False, "robustness.enabled": False, "fairness.n_bootstrap": 0})  # fmt: skip
    return run_audit(cfg, threads=1).results["models"]


@pytest.mark.parametrize("dataset", ["adult", "compas", "german"])
def test_default_fast_recipes_beat_the_majority_rate(dataset):
    """The default audit's fair and DP recipes must not fall back to predicting the majority class
    (they did: German's DP models and Adult's fair model), on --fast-sized settings."""
    for name, m in _default_models_on(dataset, True).items():
        pred = m["fairness"]["predictor"]
        assert not pred["degenerate"], (dataset, name, pred)
        assert m["fairness"]["accuracy"]["test"] > pred["majority_rate"], (dataset, name)


@pytest.mark.parametrize("dataset, model", [
    (d, m) for d in ("adult", "compas", "german") for m in [s.name for s in default_config().models]
])  # fmt: skip
def test_default_full_recipes_beat_the_majority_rate(dataset, model):
    """The full default audit's models beat the majority rate at the epsilon they were given: on
    small data (German: 250 members, COMPAS: 1,543) ten epochs left the non-private and DP models
    at the majority class until min_steps raised the epochs, and DP-SGD at epsilon 1 on German's
    250 members stayed at the base rate until it started from a model pretrained on the public
    population rows (public_pretraining)."""
    m = _default_models_on(dataset, False)[model]
    pred = m["fairness"]["predictor"]
    assert not pred["degenerate"], pred
    assert m["fairness"]["accuracy"]["test"] > pred["majority_rate"]
    spec = next(s for s in default_config().models if s.name == model)
    if spec.dp is not None:  # more epochs, the same budget: the accountant's epsilon
        assert spec.dp.target_epsilon * 0.98 <= m["epsilon"] <= spec.dp.target_epsilon
