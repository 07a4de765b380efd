"""A constant or majority-rate predictor is flagged; its gaps are not shown as a reassuring 0."""

import numpy as np

from fairleak.fairness import check_predictor


def test_constant_predictor_is_flagged():
    y = np.r_[np.ones(70), np.zeros(30)].astype(int)
    c = check_predictor(y, np.ones(100, int))
    assert c.constant and c.degenerate and c.no_better_than_majority
    assert c.majority_rate == 0.7 and c.accuracy == 0.7 and c.positive_share == 1.0
    assert "constant predictor" in c.reason and c.gap_note.startswith("not meaningful")
    # nearly constant: one negative decision in 200 rows is still "constant" at the 1% default
    y2 = np.r_[y, y]
    pred = np.ones(200, int)
    pred[0] = 0
    assert check_predictor(y2, pred).constant


def test_majority_rate_predictor_is_flagged_but_a_useful_one_is_not():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.7).astype(int)
    # varied decisions, but accuracy no better than always predicting 1
    noisy = np.where(rng.random(1000) < 0.9, 1, 1 - y)
    c = check_predictor(y, noisy)
    assert not c.constant and c.no_better_than_majority and c.degenerate
    assert "no better than the majority rate" in c.reason
    good = np.where(rng.random(1000) < 0.85, y, 1 - y)
    g = check_predictor(y, good)
    assert not g.degenerate and g.reason is None and g.accuracy > g.majority_rate


def test_audit_marks_a_constant_model_in_summary_and_report(tmp_path):
    import pandas as pd

    from fairleak.audit import apply_overrides, default_config, run_audit
    from fairleak.report import render_report

    rng = np.random.default_rng(0)
    n = 800
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b"], n)})
    df["y"] = (df["x"] + rng.normal(size=n) > -1.0).astype(int)  # mostly 1
    df["always_yes"] = 0.9
    df["member"] = rng.random(n) < 0.5
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    cfg = apply_overrides(default_config(fast=True), {
        "data.dataset": str(path), "data.label": "y", "data.protected": ["g"],
        "data.member_column": "member", "models": [{"name": "always_yes", "predictions": "always_yes"}],
        "attacks.enabled": False, "fd_mia.enabled": False, "group_risk.enabled": False})  # fmt: skip
    res = run_audit(cfg).results
    row = res["summary"][0]
    assert row["predictor_warning"] == "constant predictor"
    assert row["demographic_parity_difference"] == "n/m (constant)"
    gap = res["models"]["always_yes"]["fairness"]["gaps"]["g"]["demographic_parity_difference"]
    assert gap["note"].startswith("not meaningful (constant predictor)")
    sentences = res["verdict"]["models"]["always_yes"]
    assert sentences[0]["level"] == "concern" and "Not a useful model" in sentences[0]["text"]
    assert not any(s["topic"] == "fairness" for s in sentences)
    page = render_report(res)
    assert "constant predictor" in page and "not meaningful" in page
