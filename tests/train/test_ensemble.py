"""The ensemble trainer: K at once equals one by one, determinism, DP checked against Opacus."""

import warnings

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from opacus.accountants import PRVAccountant, RDPAccountant

from fairleak.data import load_dataset, make_synthetic
from fairleak.errors import ParameterError
from fairleak.train import (
    DPConfig,
    Ensemble,
    FairnessConfig,
    TrainConfig,
    clipped_gradient_sum,
    model_seeds,
    train_ensemble,
)


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic(1200, n_features=6, seed=0)
    X = ds.features.to_numpy(np.float32).copy()
    groups = (ds.sensitive["group"] == "minority").to_numpy().astype(np.int64)
    return X, ds.y, groups


def _masks(n, K, seed=0, frac=0.5):
    return np.random.default_rng(seed).random((K, n)) < frac


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(hidden=(16,), epochs=3, batch_size=64),
        TrainConfig(
            hidden=(), optimizer="sgd", lr=0.1, epochs=2, batch_size=100, weight_decay=1e-3
        ),
        TrainConfig(
            hidden=(8, 8), activation="tanh", optimizer="sgd", momentum=0.9, lr=0.05, epochs=2
        ),
    ],
)
def test_k_at_once_equals_one_by_one(data, cfg):
    X, y, _ = data
    masks = _masks(len(y), 5)  # unequal row counts per model: padding must not leak across
    ens = train_ensemble(X, y, masks, config=cfg, seed=7)
    for k in range(5):
        one = train_ensemble(X, y, masks[k : k + 1], config=cfg, seeds=[ens.seeds[k]])
        for w_all, w_one in zip(ens.weights, one.weights, strict=True):
            torch.testing.assert_close(w_all[k], w_one[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            ens.predict_logits(X)[k], one.predict_logits(X)[0], rtol=1e-5, atol=1e-5
        )


def test_same_seed_same_weights_and_different_seed_differs(data):
    X, y, _ = data
    masks = _masks(len(y), 3)
    cfg = TrainConfig(hidden=(16,), epochs=2)
    a = train_ensemble(X, y, masks, config=cfg, seed=1)
    b = train_ensemble(X, y, masks, config=cfg, seed=1)
    c = train_ensemble(X, y, masks, config=cfg, seed=2)
    for wa, wb, wc in zip(a.weights, b.weights, c.weights, strict=True):
        assert torch.equal(wa, wb)
        assert not torch.equal(wa, wc)
    assert model_seeds(1, 3) == a.seeds


def test_models_learn_and_predict_shapes(data):
    X, y, _ = data
    masks = _masks(len(y), 4)
    ens = train_ensemble(X, y, masks, config=TrainConfig(hidden=(16,), epochs=30, lr=1e-2))
    proba = ens.predict_proba(X)
    assert proba.shape == (4, len(y), 2)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-5)
    from sklearn.linear_model import LogisticRegression

    acc = ((proba[..., 1] > 0.5) == y).mean(1)
    ref = LogisticRegression().fit(X[masks[0]], y[masks[0]]).score(X, y)  # the rule is logistic
    assert (acc > ref - 0.03).all(), (acc, ref)


def _opacus_model(ens: Ensemble) -> torch.nn.Sequential:
    layers = []
    for i, (w, b) in enumerate(zip(ens.weights, ens.biases, strict=True)):
        lin = torch.nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            lin.weight.copy_(w[0].T)
            lin.bias.copy_(b[0])
        layers.append(lin)
        if i < len(ens.weights) - 1:
            layers.append(_TORCH_ACT[ens.config.activation]())
    return torch.nn.Sequential(*layers)


class _Square(torch.nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * z


_TORCH_ACT = {
    "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "elu": torch.nn.ELU,
    "square": _Square,
}  # fmt: skip


@pytest.mark.parametrize(
    "hidden,activation",
    [
        ((), "relu"),
        ((16,), "relu"),
        ((12, 8), "tanh"),
        ((8,), "sigmoid"),
        ((8,), "elu"),
        ((8, 6), "square"),
    ],
)
def test_clipped_gradient_sum_equals_opacus(data, hidden, activation):
    X, y, _ = data
    cfg = TrainConfig(hidden=hidden, activation=activation, epochs=1)
    ens = train_ensemble(X, y, _masks(len(y), 1), config=cfg, seed=3)
    Xb, yb = X[:64], y[:64]
    C = 0.5
    ours = clipped_gradient_sum(ens, Xb, yb, C)[0]

    model = GradSampleModule(_opacus_model(ens))
    loss = torch.nn.functional.cross_entropy(
        model(torch.from_numpy(Xb)), torch.from_numpy(yb), reduction="sum"
    )
    loss.backward()
    params = [p for p in model.parameters()]
    per_sample = torch.cat([p.grad_sample.reshape(len(yb), -1) for p in params], 1)
    norms = per_sample.norm(dim=1)
    factor = (C / (norms + 1e-6)).clamp(max=1.0)  # Opacus's flat clipping
    assert (norms > C).any()  # clipping is exercised
    linears = [m for m in model._module if isinstance(m, torch.nn.Linear)]
    for i, lin in enumerate(linears):
        ref_w = torch.einsum("b,boi->io", factor, lin.weight.grad_sample)
        ref_b = torch.einsum("b,bo->o", factor, lin.bias.grad_sample)
        torch.testing.assert_close(ours[f"weight_{i}"], ref_w, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours[f"bias_{i}"], ref_b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_reported_epsilon_is_opacus_accountant(data, accountant):
    X, y, _ = data
    masks = _masks(len(y), 2)
    cfg = TrainConfig(hidden=(8,), epochs=2, batch_size=60)
    ens = train_ensemble(
        X,
        y,
        masks,
        config=cfg,
        dp=DPConfig(noise_multiplier=1.1, delta=1e-5, accountant=accountant),
    )
    for k in range(2):
        n = masks[k].sum()
        q = 60 / n
        steps = 2 * int(np.ceil(n / 60))
        acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
        acc.history = [(1.1, q, steps)]
        assert ens.epsilon[k] == pytest.approx(acc.get_epsilon(delta=1e-5), rel=1e-9)
    assert ens.delta == 1e-5


def test_target_epsilon_is_met(data):
    X, y, _ = data
    ens = train_ensemble(
        X,
        y,
        _masks(len(y), 1),
        config=TrainConfig(hidden=(8,), epochs=3),
        dp=DPConfig(target_epsilon=3.0),
    )
    assert 2.9 <= ens.epsilon[0] <= 3.0 + 1e-6
    assert ens.noise_multiplier[0] > 0


def test_dp_sgd_s_with_one_group_is_dp_sgd(data):
    X, y, _ = data
    masks = _masks(len(y), 2)
    cfg = TrainConfig(hidden=(8,), epochs=2)
    one_group = np.zeros(len(y), dtype=np.int64)
    plain = train_ensemble(
        X, y, masks, config=cfg, seed=5, dp=DPConfig(noise_multiplier=1.0, noise="reproducible")
    )
    s = train_ensemble(
        X, y, masks, config=cfg, seed=5, groups=one_group,
        dp=DPConfig(noise_multiplier=1.0, group_clipping=True, tau=1.0, noise="reproducible"),
    )  # fmt: skip
    for a, b in zip(plain.weights, s.weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # The norm release (and the one-off group counts) cost more: DP-SGD-S reports a larger epsilon.
    assert s.epsilon[0] > plain.epsilon[0]


def test_dp_sgd_s_with_tau_one_is_dp_sgd_and_larger_tau_differs(data):
    """tau bounds the group bounds C_k to [C0 / tau, C0 * tau]: tau = 1 is DP-SGD's clipping,
    whatever the groups (same batches and gradient noise: the norm release has its own stream)."""
    X, y, groups = data
    masks = _masks(len(y), 2)
    cfg = TrainConfig(hidden=(8,), epochs=2)
    plain = train_ensemble(
        X, y, masks, config=cfg, seed=5, dp=DPConfig(noise_multiplier=1.0, noise="reproducible")
    )

    def dpsgd_s(tau):
        return train_ensemble(
            X, y, masks, config=cfg, seed=5, groups=groups,
            dp=DPConfig(noise_multiplier=1.0, group_clipping=True, tau=tau, norm_noise_multiplier=2.0,
                        noise="reproducible"),
        )  # fmt: skip

    for a, b in zip(plain.weights, dpsgd_s(1.0).weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    adaptive = dpsgd_s(3.0)
    assert not all(
        torch.allclose(a, b, atol=1e-4)
        for a, b in zip(plain.weights, adaptive.weights, strict=True)
    )


def test_dp_sgd_s_target_epsilon_counts_both_mechanisms(data):
    X, y, groups = data
    ens = train_ensemble(
        X, y, _masks(len(y), 1), config=TrainConfig(hidden=(8,), epochs=2), groups=groups,
        dp=DPConfig(target_epsilon=4.0, group_clipping=True, norm_noise_multiplier=5.0),
    )  # fmt: skip
    assert 3.8 <= ens.epsilon[0] <= 4.0 + 1e-6


def _dp_gap(p1, groups):
    return abs(p1[groups == 1].mean() - p1[groups == 0].mean())


def test_fairness_penalty_lowers_its_gap_on_adult():
    ds = load_dataset("adult")
    from fairleak.data import TabularPreprocessor

    rows = np.random.default_rng(0).choice(len(ds), 6000, replace=False)
    X = TabularPreprocessor().fit_transform(ds.features.iloc[rows])
    y = ds.y[rows]
    sex = (ds.sensitive["sex"].to_numpy()[rows] == "Male").astype(np.int64)
    masks = np.ones((2, len(y)), dtype=bool)
    ens = train_ensemble(
        X, y, masks, config=TrainConfig(hidden=(32,), epochs=8), seed=0, groups=sex,
        fairness=FairnessConfig(penalty="demographic_parity", weight=0.0), fairness_weights=[0.0, 2.0],
    )  # fmt: skip
    p1 = ens.predict_proba(X)[..., 1]
    gap0, gap1 = _dp_gap(p1[0], sex), _dp_gap(p1[1], sex)
    assert gap1 < 0.6 * gap0, (gap0, gap1)


@pytest.mark.parametrize("penalty", ["l2_softmax", "equalized_odds"])
def test_other_penalties_lower_their_gap(data, penalty):
    X, y, groups = data
    masks = np.ones((2, len(y)), dtype=bool)
    ens = train_ensemble(
        X, y, masks, config=TrainConfig(hidden=(16,), epochs=15), groups=groups,
        fairness=FairnessConfig(penalty=penalty), fairness_weights=[0.0, 3.0],
    )  # fmt: skip
    p1 = ens.predict_proba(X)[..., 1]
    if penalty == "l2_softmax":
        gaps = [_dp_gap(p, groups) for p in p1]
    else:
        gaps = [max(_dp_gap(p[y == c], groups[y == c]) for c in (0, 1)) for p in p1]
    assert gaps[1] < gaps[0]


def test_linearised_penalty_under_dp_lowers_gap(data):
    X, y, groups = data
    masks = np.ones((2, len(y)), dtype=bool)
    ens = train_ensemble(
        X, y, masks, config=TrainConfig(hidden=(16,), epochs=10, lr=5e-3), groups=groups,
        fairness=FairnessConfig(penalty="demographic_parity"), fairness_weights=[0.0, 1.0],
        dp=DPConfig(noise_multiplier=0.3, max_grad_norm=5.0),
    )  # fmt: skip
    p1 = ens.predict_proba(X)[..., 1]
    assert _dp_gap(p1[1], groups) < _dp_gap(p1[0], groups)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: DPConfig(target_epsilon=-1.0), r"'target_epsilon' parameter of DPConfig must be a float in the range \(0, inf\)( or None)?\. Got -1.0"),
        (lambda: DPConfig(target_epsilon=1.0, delta=1.0), r"'delta' parameter of DPConfig must be a float in the range \(0, 1\). Got 1.0"),
        (lambda: DPConfig(), r"needs either 'target_epsilon'"),
        (lambda: FairnessConfig(penalty="parity"), r"'penalty' parameter of FairnessConfig must be one of .*'demographic_parity'.* Got 'parity'"),
        (lambda: TrainConfig(lr=0), r"'lr' parameter of TrainConfig"),
        (lambda: TrainConfig(activation="gelu"), r"'activation' parameter of TrainConfig must be one of"),
    ],
)  # fmt: skip
def test_bad_hyperparameters_name_parameter_value_and_range(make, pattern):
    with pytest.raises(ParameterError, match=pattern):
        make()


def test_groups_of_wrong_length(data):
    X, y, groups = data
    with pytest.raises(
        ParameterError, match=r"'groups' parameter must have one row per row of X \(1200\); got 10"
    ):
        train_ensemble(X, y, _masks(len(y), 1), groups=groups[:10], fairness=FairnessConfig())
    with pytest.raises(ParameterError, match="needs the 'groups' parameter"):
        train_ensemble(X, y, _masks(len(y), 1), fairness=FairnessConfig())


def test_state_round_trip(data):
    X, y, _ = data
    ens = train_ensemble(X, y, _masks(len(y), 2), config=TrainConfig(hidden=(4,), epochs=1))
    again = Ensemble.from_state(ens.state_dict(), ens.metadata())
    np.testing.assert_array_equal(again.predict_logits(X), ens.predict_logits(X))


@pytest.mark.parametrize("compiled", [True, False])
def test_dp_batches_are_poisson_samples_of_each_models_rows(compiled, monkeypatch):
    """DP accounting assumes Poisson sampling: every row joins each step independently with
    probability q. Check inclusion rates, batch-size mean and variance, and that a model only
    ever samples its own rows, once per step; with the compiled sampler and with numpy's."""
    from fairleak.train import native
    from fairleak.train.batches import BatchSampler

    if compiled and not native.available():
        pytest.skip("no C compiler: numpy's sampler only")
    if not compiled:
        monkeypatch.setenv("FAIRLEAK_NATIVE", "0")
    n, K, steps, B = 3000, 3, 400, 60
    masks = np.zeros((K, n), bool)
    masks[0, :1000] = masks[1, 500:2500] = masks[2] = True
    sampler = BatchSampler([np.flatnonzero(m) for m in masks], model_seeds(0, K), B)
    q = B / masks.sum(1)
    blk = sampler.poisson(q, np.full(K, steps), 0, steps)
    assert (sampler.keys is not None) == compiled
    idx, valid = blk.dense()
    for t in range(steps):  # each step is padded to its largest batch, no wider
        assert blk.widths[t] == max(1, valid[t].sum(1).max())
    for k in range(K):
        counts = np.zeros(n)
        sizes = valid[:, k].sum(1)
        for t in range(steps):
            rows = idx[t, k][valid[t, k]]
            assert len(np.unique(rows)) == len(rows) and masks[k, rows].all()
            counts[rows] += 1
        nk = masks[k].sum()
        assert abs(sizes.mean() - nk * q[k]) < 4 * np.sqrt(nk * q[k] * (1 - q[k]) / steps)
        assert sizes.var() == pytest.approx(nk * q[k] * (1 - q[k]), rel=0.25)
        rate = counts[masks[k]] / steps
        assert abs(rate.mean() - q[k]) < 0.01 and rate.std() < 2 * np.sqrt(
            q[k] * (1 - q[k]) / steps
        )
    # a model whose schedule ended draws nothing
    _, valid2 = sampler.poisson(q, np.array([steps, 5, steps]), 0, 10).dense()
    assert not valid2[5:, 1].any() and valid2[:5, 1].any()
    # a model's batches depend on its own seed only: the same when sampled alone
    alone = BatchSampler([np.flatnonzero(masks[1])], model_seeds(0, K)[1:2], B)
    i1, v1 = alone.poisson(q[1:2], np.array([steps]), 0, steps).dense()
    for t in range(steps):
        np.testing.assert_array_equal(i1[t, 0][v1[t, 0]], idx[t, 1][valid[t, 1]])


def test_dp_models_do_not_depend_on_threads_chunks_or_shards(data, monkeypatch):
    """Sharding invariance: a model's batches, noise (and every other release) come from its own
    streams only, so training 4 models at once, in two shards of 2, with 1 or 2 threads, or in
    chunks of 1 model gives the same weights (reproducible mode)."""
    from fairleak.train import trainer as trainer_mod

    X, y, groups = data
    masks = _masks(len(y), 4)
    seeds = model_seeds(9, 4)
    cfg = TrainConfig(hidden=(64,), epochs=1, batch_size=100)
    dp = DPConfig(noise_multiplier=1.0, group_clipping=True, noise="reproducible")
    kw = dict(config=cfg, groups=groups, fairness=FairnessConfig(weight=0.5), dp=dp)
    canaries = np.random.default_rng(1).random((4, 50)) < 0.5

    def run(sl, **extra):
        return train_ensemble(
            X, y, masks[sl], seeds=seeds[sl], canaries=canaries[sl], **kw, **extra
        )

    whole = run(slice(0, 4))
    shards = [run(slice(0, 2)), run(slice(2, 4))]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = run(slice(0, 4))
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(trainer_mod, "_CHUNK_BYTES", 1)  # one model per chunk
    chunked = run(slice(0, 4))
    for other in (single, chunked):
        for a, b in zip(whole.weights, other.weights, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for i, w in enumerate(whole.weights):
        torch.testing.assert_close(
            w, torch.cat([sh.weights[i] for sh in shards]), rtol=1e-5, atol=1e-6
        )
    np.testing.assert_allclose(whole.canary_scores, np.concatenate([sh.canary_scores for sh in shards]),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    assert whole.epsilon == [e for sh in shards for e in sh.epsilon]


@pytest.mark.parametrize("compiled", [True, False])
def test_model_noise_rows_are_standard_normal_and_thread_independent(compiled):
    from fairleak.train import native
    from fairleak.train.dp import ModelNoise

    if compiled and not native.available():
        pytest.skip("no C compiler: torch's generators only")

    def rows(K, widths, threads=None):
        old = torch.get_num_threads()
        try:
            torch.set_num_threads(threads or old)
            noise = ModelNoise(K, widths, range(K), compiled=compiled)
            if not compiled and threads == 1:
                noise.threaded = False
            noise.fill()
            return torch.cat([noise.first(), noise.buf[:, widths[0] :]], 1).clone()
        finally:
            torch.set_num_threads(old)

    a, b = rows(8, [3000, 97]), rows(8, [3000, 97], threads=1)
    assert torch.equal(a, b)
    assert abs(a.mean().item()) < 0.02 and abs(a.std().item() - 1) < 0.02
    c = rows(8, [3000, 5])  # the first segment does not depend on the second
    assert torch.equal(c[:, :3000], a[:, :3000])
    assert torch.equal(rows(3, [3000, 97]), a[:3])  # nor a model's row on the others


def test_joint_accounting_of_releases_from_one_batch_matches_opacus():
    """Every release computed from one Poisson batch is one subsampled Gaussian with
    sigma_eff = (sum sigma_i^-2)^(-1/2); recomputed here independently with Opacus's accountants
    (and the issue's example: sigma = sigma_n = 1, q = 256/22611, T = 890 is 4.81 by PRV, not
    the 3.10 of separately sampled mechanisms)."""
    from fairleak.train.dp import compute_epsilon, joint_noise_multiplier

    q, T, d = 256 / 22611, 890, 1e-5
    prv = PRVAccountant()
    prv.history = [((1.0**-2 + 1.0**-2) ** -0.5, q, T)]
    joint = prv.get_epsilon(delta=d)
    assert joint == pytest.approx(4.81, abs=0.01)
    assert compute_epsilon([((1.0**-2 + 1.0**-2) ** -0.5, q, T)], d, "rdp") == pytest.approx(
        5.61, abs=0.01
    )
    separate = compute_epsilon([(1.0, q, T), (1.0, q, T)], d, "rdp")  # what was reported before
    assert separate == pytest.approx(3.10, abs=0.01) and joint > separate + 1.5
    assert joint_noise_multiplier([1.0, 1.0]) == pytest.approx(2**-0.5)
    assert joint_noise_multiplier([2.0, 10.0, 10.0]) == pytest.approx((0.25 + 0.02) ** -0.5)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_dp_sgd_s_and_fairness_sign_epsilon_is_the_joint_mechanism(data, accountant):
    X, y, groups = data
    masks = _masks(len(y), 1)
    dp = DPConfig(noise_multiplier=1.0, group_clipping=True, norm_noise_multiplier=2.0,
                  fairness_noise_multiplier=3.0, count_noise_multiplier=20.0, accountant=accountant)  # fmt: skip
    ens = train_ensemble(X, y, masks, config=TrainConfig(hidden=(8,), epochs=2, batch_size=60), groups=groups,
                         fairness=FairnessConfig(weight=0.5), dp=dp)  # fmt: skip
    n = masks[0].sum()
    q, steps = 60 / n, 2 * int(np.ceil(n / 60))
    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    acc.history = [((1.0**-2 + 2.0**-2 + 3.0**-2) ** -0.5, q, steps), (20.0, 1.0, 1)]
    with warnings.catch_warnings():  # Opacus's PRV at sample rate 1 evaluates log(0) harmlessly
        warnings.simplefilter("ignore")
        expected = acc.get_epsilon(delta=1e-5)
    assert ens.epsilon[0] == pytest.approx(expected, rel=1e-6)
    per_step = {r["name"]: r["noise_multiplier"] for r in ens.privacy["per_step"]}
    assert per_step == {"clipped gradient sum": 1.0, "per-group clipped norm sums": 2.0,
                        "fairness gap signs": 3.0}  # fmt: skip


def test_target_epsilon_is_met_jointly(data):
    X, y, groups = data
    dp = DPConfig(target_epsilon=3.0, group_clipping=True, norm_noise_multiplier=5.0)
    ens = train_ensemble(
        X, y, _masks(len(y), 1), config=TrainConfig(hidden=(8,), epochs=2), groups=groups, dp=dp
    )
    assert 2.85 <= ens.epsilon[0] <= 3.0 + 1e-6
    with pytest.raises(ParameterError, match="the other releases of each step"):
        train_ensemble(X, y, _masks(len(y), 1), config=TrainConfig(hidden=(8,), epochs=2), groups=groups,
                       dp=DPConfig(target_epsilon=0.5, group_clipping=True, norm_noise_multiplier=0.5))  # fmt: skip


def test_released_models_noise_is_not_replayable_and_simulation_is(data):
    """The default draws Poisson sampling and noise from OS entropy: the same random_state gives
    different models (initialisation is the same); the reproducible mode gives identical ones,
    and each model says which it is."""
    from fairleak.train import FairleakClassifier

    X, y, _ = data
    kw = dict(hidden_layer_sizes=(8,), epochs=2, noise_multiplier=1.0, random_state=4)
    a, b = (FairleakClassifier(**kw).fit(X, y) for _ in range(2))
    assert not np.allclose(a.predict_proba(X), b.predict_proba(X))
    assert "secure" in a.ensemble_.privacy["noise"]
    assert (
        "preprocessing" in a.privacy_["does_not_cover"] and "gradient step" in a.privacy_["covers"]
    )
    c, d = (FairleakClassifier(**kw, noise="reproducible").fit(X, y) for _ in range(2))
    np.testing.assert_array_equal(c.predict_proba(X), d.predict_proba(X))
    assert "not a DP release" in c.ensemble_.privacy["noise"]
    # without DP, random_state alone fixes everything
    e, f = (
        FairleakClassifier(hidden_layer_sizes=(8,), epochs=2, random_state=4).fit(X, y)
        for _ in range(2)
    )
    np.testing.assert_array_equal(e.predict_proba(X), f.predict_proba(X))
    assert e.privacy_ is None and e.epsilon_ is None


def test_dp_sgd_s_bounds_adapt_with_a_separate_norm_bound_and_pool_small_groups():
    """The clipping rule on constructed norms: group 1's gradients are 4x group 0's. With C_est
    above C0 the bounds adapt (C_1 < C0 < C_0, within [C0/tau, C0 tau]); with C_est = C0 every
    norm is clipped to C0 and nothing adapts (the collapse ALGORITHMS.md warns about); a group
    expected below min_group_batch a batch shares the pooled estimate; the authors' one-sided
    rule has no lower bound."""
    from fairleak.train.mechanisms import BatchView, GroupAdaptiveClipping

    codes = torch.tensor([0] * 50 + [1] * 50 + [2] * 2)
    sq = torch.cat([torch.full((50,), 1.0), torch.full((50,), 16.0), torch.full((2,), 9.0)])[None]
    exp_group = torch.tensor([[50.0, 50.0, 2.0]])
    batch = BatchView(slice(0, 1), torch.arange(102)[None], torch.ones(1, 102))

    def bounds(tau=2.0, **kw):
        dp = DPConfig(noise_multiplier=1.0, group_clipping=True, max_grad_norm=1.0, tau=tau,
                      norm_noise_multiplier=1.0, min_group_batch=5.0, **kw)  # fmt: skip
        rule = GroupAdaptiveClipping(dp, codes, 3, exp_group)
        rule.bind_noise(torch.zeros(1, 3))  # no noise: the rule on exact sums
        rule.begin_step()
        rule.factors(sq, batch)
        return rule.trace[-1][0]

    C = bounds()  # C_est = 2 tau C0 = 4
    r0, r1 = 1.0, 4.0
    r = (50 * 1.0 + 50 * 4.0 + 2 * 3.0) / 102
    assert C[0] == pytest.approx(min(2.0, r / r0), rel=1e-5) and C[0] > 1.0
    assert C[1] == pytest.approx(r / r1, rel=1e-5) and 0.5 <= C[1] < 1.0
    assert C[2] == pytest.approx(min(2.0, r / 3.0), rel=1e-5)  # the pool of small groups (one here)
    flat = bounds(norm_clip=1.0)  # C_est = C0: every norm clipped to 1, no adaptation
    torch.testing.assert_close(flat, torch.ones(3))
    upper = bounds(tau=10.0, tau_mode="upper")
    assert upper[1] == pytest.approx(r / r1, rel=1e-5)
    strict = bounds(tau=1.5)  # C_est = 3: group 1's norms 4 are estimated as 3
    r_s = (50 * 1.0 + 50 * 3.0 + 2 * 3.0) / 102
    assert strict[0] == pytest.approx(1.5) and strict[1] == pytest.approx(
        max(1 / 1.5, r_s / 3.0), rel=1e-5
    )


def test_dp_sgd_s_records_its_bounds_during_training(data):
    X, y, groups = data
    dp = DPConfig(noise_multiplier=1.0, group_clipping=True, tau=2.0, noise="reproducible")
    ens = train_ensemble(
        X, y, _masks(len(y), 2), config=TrainConfig(hidden=(8,), epochs=2), groups=groups, dp=dp
    )
    tr = ens.clip_trace
    assert tr.shape[1:] == (2, 2) and len(tr) == 2 * int(np.ceil(_masks(len(y), 2)[0].sum() / 256))
    assert (tr >= 0.5 - 1e-6).all() and (tr <= 2.0 + 1e-6).all()


def test_gradient_canaries_go_through_the_mechanism(data):
    """White-box canaries: a canary's score is the sum over steps of its coordinate of the noisy
    clipped gradient sum, in units of C: in, about N(qT, sigma^2 T + q(1-q)T); out, N(0, sigma^2 T)."""
    X, y, _ = data
    m, sigma, B, epochs = 4000, 2.0, 120, 3
    rng = np.random.default_rng(0)
    canaries = rng.random((2, m)) < 0.5
    masks = _masks(len(y), 2, frac=1.0)
    ens = train_ensemble(X, y, masks, config=TrainConfig(hidden=(4,), epochs=epochs, batch_size=B),
                         dp=DPConfig(noise_multiplier=sigma, noise="reproducible"), canaries=canaries)  # fmt: skip
    q, T = B / len(y), epochs * int(np.ceil(len(y) / B))
    sc = ens.canary_scores
    for k in range(2):
        inn, out = sc[k][canaries[k]], sc[k][~canaries[k]]
        assert abs(out.mean()) < 4 * sigma * np.sqrt(T / len(out))
        assert abs(inn.mean() - q * T) < 4 * np.sqrt((sigma**2 * T + q * (1 - q) * T) / len(inn))
        assert out.std() == pytest.approx(sigma * np.sqrt(T), rel=0.08)
    with pytest.raises(ParameterError, match="'canaries' parameter audits DP-SGD"):
        train_ensemble(X, y, masks, config=TrainConfig(hidden=(4,), epochs=1), canaries=canaries)


@pytest.mark.parametrize("compiled", [True, False])
def test_dp_step_adds_gaussian_noise_of_sigma_c_over_expected_batch(data, compiled, monkeypatch):
    """One SGD step of DP-SGD moves every weight by -lr (clipped sum + sigma C z) / (q n): with a
    large sigma the move is the noise, whose standard deviation must be lr sigma C / (q n) in
    every parameter tensor (with the compiled generator's fused update and with torch's)."""
    from fairleak.train import native

    if compiled and not native.available():
        pytest.skip("no C compiler: torch's generators only")
    if not compiled:
        monkeypatch.setenv("FAIRLEAK_NATIVE", "0")
    X, y, _ = data
    K, B, lr, sigma, C = 4, 200, 0.1, 1e4, 0.5  # the gradient moves a weight by lr C a step at most
    masks = _masks(len(y), K, frac=1.0)
    cfg = TrainConfig(hidden=(64,), optimizer="sgd", lr=lr, epochs=1, batch_size=B)
    dp = DPConfig(noise_multiplier=sigma, max_grad_norm=C, noise="reproducible")
    before = train_ensemble(
        X, y, masks, config=cfg.model_copy(update={"lr": 0.0}), dp=dp, seed=1
    )  # the init
    after = train_ensemble(X, y, masks, config=cfg, dp=dp, seed=1)
    steps = int(np.ceil(len(y) / B))
    sd = lr * sigma * C / B * np.sqrt(steps)  # q n = B; independent steps add up
    for w0, w1 in zip(
        [*before.weights, *before.biases], [*after.weights, *after.biases], strict=True
    ):
        move = (w1 - w0).double().numpy().ravel()
        if move.size >= 200:  # sample sd within 4.5 standard errors
            assert move.std() == pytest.approx(sd, rel=0.1 if move.size > 400 else 0.2)
            assert abs(move.mean()) < 5 * sd / np.sqrt(move.size)
