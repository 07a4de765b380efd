"""FLIP-lite: accounting against Opacus directly, per-sample gradients, seeds, alignment, errors."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant

from fairleak.errors import DataValidationError, ParameterError
from fairleak.synth import FlipLiteSynthesizer, TableSchema, TabularVAE
from fairleak.synth.flip import balanced_poisson_batch, per_sample_gradients
from fairleak.synth.vae import per_sample_loss


def toy(n=600, shift=1.5, seed=0):
    """S shifts x1 and the label; 'cat' depends on x1."""
    rng = np.random.default_rng(seed)
    s = rng.choice(["a", "b"], n, p=[0.7, 0.3])
    x1 = rng.normal(0, 1, n) + shift * (s == "b")
    x2 = rng.uniform(0, 10, n).round(2)
    cat = np.where(x1 + rng.normal(0, 0.5, n) > 0.5, "hi", "lo")
    y = (x1 + rng.normal(0, 1, n) > 0.7).astype(int)
    return pd.DataFrame({"s": s, "x1": x1.round(3), "x2": x2, "cat": cat, "y": y.astype(str)})


SCHEMA = TableSchema.from_dict({"columns": {
    "x1": {"type": "numeric", "min": -5, "max": 7}, "x2": {"type": "numeric", "min": 0, "max": 10},
    "cat": {"type": "categorical", "categories": ["hi", "lo"]},
    "y": {"type": "categorical", "categories": ["0", "1"]},
}}, source="test")  # fmt: skip


def fit(df=None, **kw):
    params = {"epsilon": 3.0, "epochs": 2, "batch_size": 64, "hidden": 16, "latent": 4,
              "schema": SCHEMA, "random_state": 0, "noise": "reproducible", "min_group_rows": 50, **kw}  # fmt: skip
    return FlipLiteSynthesizer(**params).fit(toy() if df is None else df, protected=["s"])


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_equals_opacus_accountant_per_group(accountant):
    m = fit(accountant=accountant, epochs=1)
    p = m.privacy_
    assert p["preprocessing_private"] and p["bin_noise_multiplier"] > 0 and p["count_noise_multiplier"] > 0
    eps = []
    for v in p["groups"].values():
        # independent: Opacus's accountant with the history written out here
        joint = (v["noise_multiplier"] ** -2 + v["mean_noise_multiplier"] ** -2) ** -0.5
        acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
        acc.history = [(joint, v["sample_rate"], p["steps"]), (p["bin_noise_multiplier"], 1.0, 1),
                       (p["count_noise_multiplier"], 1.0, 1)]  # fmt: skip
        with warnings.catch_warnings():  # PRV of an unsampled release: a log(0) branch not taken
            warnings.simplefilter("ignore", RuntimeWarning)
            e = acc.get_epsilon(delta=1e-5)
        assert v["epsilon"] == pytest.approx(e, rel=1e-6)
        assert e == pytest.approx(3.0, abs=0.05)  # calibrated to the target, per group
        eps.append(e)
    assert m.epsilon_ == pytest.approx(max(eps), rel=1e-6)
    # minorities are sampled more often and get more noise
    a, b = p["groups"]["a"], p["groups"]["b"]
    assert b["sample_rate"] > a["sample_rate"] and b["noise_multiplier"] > a["noise_multiplier"]


def test_per_sample_gradients_match_a_loop():
    torch.manual_seed(0)
    model = TabularVAE([3, 2, 4], hidden=8, latent=3)
    codes = torch.tensor([[0, 1, 3], [2, 0, 0], [1, 1, 2]])
    x = model.one_hot(codes)
    eps, d = torch.randn(3, 3), torch.randn(3, 3)
    params = {k: v.detach() for k, v in model.named_parameters()}
    g = per_sample_gradients(model, 1.0, 0.7)(params, x, eps, d)
    for i in range(3):
        model.zero_grad()
        per_sample_loss(model, model(x[i : i + 1], eps[i : i + 1]), x[i : i + 1], d[i : i + 1], 1.0, 0.7).sum().backward()
        for k, prm in model.named_parameters():
            torch.testing.assert_close(g[k][i], prm.grad, atol=1e-5, rtol=1e-5)


def test_balanced_sampler_includes_each_group_at_its_rate():
    members = [np.arange(0, 5000), np.arange(5000, 5500)]
    rates = [0.01, 0.1]  # equal expected counts (50 a step) from unequal groups
    rng = np.random.default_rng(0)
    hits = np.zeros(5500)
    sizes = []
    for _ in range(400):
        rows, grp = balanced_poisson_batch(members, rates, rng)
        assert np.array_equal(grp, (rows >= 5000).astype(int))
        hits[rows] += 1
        sizes.append(np.bincount(grp, minlength=2))
    for m, q in zip(members, rates, strict=True):
        rate = hits[m].mean() / 400
        assert abs(rate - q) < 4 * np.sqrt(q * (1 - q) / (400 * len(m)))
    assert np.abs(np.mean(sizes, 0) - 50).max() < 2


def test_reproducible_mode_replays_and_secure_mode_does_not():
    a, b = fit(epochs=1), fit(epochs=1)
    for (k, va), vb in zip(a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    pd.testing.assert_frame_equal(a.sample(50, random_state=1), b.sample(50, random_state=1))
    s1, s2 = fit(noise="secure", epochs=1), fit(noise="secure", epochs=1)
    assert not torch.equal(s1.model_.encoder[0].weight, s2.model_.encoder[0].weight)
    assert "secure" in s1.privacy_["noise"] and "reproducible" in a.privacy_["noise"]


def test_sample_has_the_columns_and_values_of_the_schema():
    m = fit()
    out = m.sample(300, random_state=0)
    assert list(out.columns) == ["s", "x1", "x2", "cat", "y"]
    assert set(out["s"]) <= {"a", "b"} and set(out["cat"]) <= {"hi", "lo"} and set(out["y"]) <= {"0", "1"}
    assert out["x1"].between(-5, 7).all() and out["x2"].between(0, 10).all()
    bal = m.sample(2000, random_state=0, marginal="balanced")
    assert abs((bal["s"] == "b").mean() - 0.5) < 0.05
    z = m.encode(toy().head(5))
    assert z.shape == (5, 4) and len(m.decode(z)) == 5
    assert isinstance(m.model_.encoder, torch.nn.Module) and isinstance(m.model_.decoder, torch.nn.Module)
    json.dumps(m.privacy_)  # JSON-able


def test_not_private_reconstructs_marginals():
    df = toy(1500)
    m = fit(df, epsilon=None, epochs=15, hidden=32)
    assert m.epsilon_ is None and m.privacy_["covers"] == []
    out = m.sample(1500, random_state=0)
    for c in ("cat", "y", "s"):
        p, q = df[c].value_counts(normalize=True), out[c].value_counts(normalize=True)
        assert 0.5 * (p - q.reindex(p.index, fill_value=0)).abs().sum() < 0.1, c


def test_alignment_removes_the_dependence_on_the_protected_attribute():
    from fairleak.synth.evaluate import protected_predictability

    df = toy(1500, shift=2.5)
    auc = {}
    for lam in (0.0, 5.0):
        m = fit(df, epsilon=None, epochs=15, hidden=32, align_weight=lam)
        auc[lam] = protected_predictability(m.sample(1500, random_state=0), "s", [], seed=0)
    assert protected_predictability(df, "s", [], seed=0) > 0.8
    assert auc[0.0] > 0.7
    assert auc[5.0] < auc[0.0] - 0.1


def test_schema_from_the_rows_is_flagged_not_private():
    m = fit(schema=None)
    assert not m.privacy_["preprocessing_private"]
    assert any("preprocessing not private" in n for n in m.notes_)


def test_bad_inputs_are_clear_errors():
    df = toy()
    with pytest.raises(DataValidationError, match="not columns of the data"):
        FlipLiteSynthesizer().fit(df, protected=["nope"])
    bad = df.copy()
    bad.loc[3, "cat"] = "mid"
    with pytest.raises(DataValidationError, match="'cat' has value"):
        fit(bad)
    bad = df.copy()
    bad.loc[3, "x2"] = np.nan
    with pytest.raises(DataValidationError, match="missing"):
        fit(bad)
    with pytest.raises(ParameterError, match="epsilon"):
        fit(epsilon=-1.0)
    with pytest.raises(ParameterError, match="groups"):
        fit(groups="colour")
    with pytest.raises(ParameterError, match="not fitted"):
        FlipLiteSynthesizer().sample(3)
    with pytest.raises(DataValidationError, match="'min' < 'max'"):
        TableSchema.from_dict({"columns": {"a": {"type": "numeric", "min": 3, "max": 1}}})
    with pytest.raises(DataValidationError, match="too few"):
        fit(min_group_rows=1, max_rate=0.001)
