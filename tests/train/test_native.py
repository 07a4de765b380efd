"""The compiled sparse first-layer kernels (one-hot inputs) against the dense eager path, and the
fall-back when no compiler is found."""

import numpy as np
import pytest
import torch

from fairleak.train import DPConfig, TrainConfig, native, train_ensemble
from fairleak.train.model import model_seeds

needs_cc = pytest.mark.skipif(not native.available(), reason="no C compiler: the eager path only")


@pytest.fixture(scope="module")
def onehot():
    """A one-hot table: 2 numeric columns and 4 categoricals (28 columns, 6 non-zeros a row)."""
    rng = np.random.default_rng(0)
    n = 900
    cats = [rng.integers(0, c, n) for c in (3, 5, 8, 10)]
    num = rng.normal(size=(n, 2)).astype(np.float32)
    X = np.concatenate(
        [num, *[np.eye(c, dtype=np.float32)[v] for c, v in zip((3, 5, 8, 10), cats, strict=True)]],
        1,
    )
    logit = num[:, 0] + (cats[1] > 2) - (cats[3] % 3 == 0) + rng.normal(0, 0.5, n)
    y = (logit > 0).astype(np.int64)
    groups = cats[0] % 2
    return X, y, groups


@needs_cc
def test_kernels_equal_dense_products(onehot):
    X, _, _ = onehot
    Xt = torch.from_numpy(X)
    sr = native.sparse_rows(Xt, 16)
    assert sr is not None and sr.J == 6
    idx = torch.from_numpy(np.random.default_rng(1).integers(0, len(X), (5, 33)))
    W, b, dz = torch.randn(5, X.shape[1], 16), torch.randn(5, 16), torch.randn(5, 33, 16)
    rows = sr.gather(idx)
    out = sr.forward(rows, W, b, torch.empty(5, 33, 16))
    torch.testing.assert_close(out, torch.baddbmm(b.unsqueeze(1), Xt[idx], W), rtol=1e-5, atol=1e-5)
    g = torch.full((5, X.shape[1], 16), 7.0)  # overwritten, not accumulated
    sr.weight_grad_into(rows, dz, g)
    torch.testing.assert_close(g, torch.bmm(Xt[idx].transpose(1, 2), dz), rtol=1e-5, atol=1e-5)
    scale, gb = torch.rand(5, 33), torch.full((5, 16), 7.0)  # DP's per-sample clipping factors
    scale[0, :4] = 0.0  # padding
    sr.weight_grad_into(rows, dz, g, scale=scale, bias_out=gb)
    sdz = dz * scale.unsqueeze(-1)
    torch.testing.assert_close(g, torch.bmm(Xt[idx].transpose(1, 2), sdz), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gb, sdz.sum(1), rtol=1e-5, atol=1e-5)


def test_dense_data_and_linear_models_take_the_dense_path(onehot):
    dense = torch.randn(50, 8)
    assert native.sparse_rows(dense, 16) is None  # every column non-zero
    assert native.sparse_rows(torch.from_numpy(onehot[0]), 0) is None  # no hidden layer


@needs_cc
@pytest.mark.parametrize(
    "hidden,activation",
    [((16,), "relu"), ((16,), "tanh"), ((16,), "sigmoid"), ((16,), "elu"), ((16, 8), "relu")],
)
@pytest.mark.parametrize("private", [False, True])
def test_sparse_path_trains_the_models_the_dense_path_trains(onehot, monkeypatch, private, hidden, activation):
    """Same seeds, same maths: the sparse first layer differs from the dense path only by
    float32 rounding (sums in another order), which a short training keeps at the level of
    rounding, for every activation and depth; under DP through per-sample norms and DP-SGD-S's
    clipping factors (which the weight-gradient kernel applies) too."""
    X, y, groups = onehot
    masks = np.random.default_rng(2).random((3, len(y))) < 0.6
    cfg = TrainConfig(hidden=hidden, activation=activation, epochs=2, batch_size=64, lr=0.01)
    dp = DPConfig(noise_multiplier=1.0, noise="reproducible", group_clipping=True) if private else None
    sparse = train_ensemble(X, y, masks, config=cfg, seed=3, dp=dp, groups=groups)
    monkeypatch.setenv("FAIRLEAK_NATIVE", "0")
    dense = train_ensemble(X, y, masks, config=cfg, seed=3, dp=dp, groups=groups)
    for a, b in zip(sparse.weights, dense.weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)
    assert sparse.epsilon == dense.epsilon
    if private:
        np.testing.assert_allclose(sparse.clip_trace, dense.clip_trace, rtol=1e-4, atol=1e-5)


@needs_cc
def test_sparse_path_is_split_and_thread_invariant(onehot):
    """Each model's first layer is computed from its own rows and weights only: training on 1 or
    2 threads gives the same weights bit for bit; 4 at once or one by one, the same up to float32
    rounding (torch's element-wise kernels may round a model differently at another position in
    the stack, as on the dense path)."""
    X, y, _ = onehot
    masks = np.random.default_rng(4).random((4, len(y))) < 0.5  # unequal row counts
    seeds = model_seeds(5, 4)
    cfg = TrainConfig(hidden=(32,), epochs=1, batch_size=50)
    whole = train_ensemble(
        X,
        y,
        masks,
        config=cfg,
        seeds=seeds,
        dp=DPConfig(noise_multiplier=0.8, noise="reproducible"),
    )
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = train_ensemble(
            X,
            y,
            masks,
            config=cfg,
            seeds=seeds,
            dp=DPConfig(noise_multiplier=0.8, noise="reproducible"),
        )
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(whole.weights, single.weights, strict=True):
        assert torch.equal(a, b)
    for k in range(4):
        one = train_ensemble(X, y, masks[k : k + 1], config=cfg, seeds=seeds[k : k + 1],
                             dp=DPConfig(noise_multiplier=0.8, noise="reproducible"))  # fmt: skip
        for a, b in zip(whole.weights, one.weights, strict=True):
            torch.testing.assert_close(a[k], b[0], rtol=1e-5, atol=1e-6)


def _reset(monkeypatch, tmp_path, cc):
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_last", None)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setenv("FAIRLEAK_CACHE_DIR", str(tmp_path / "cache"))


def test_without_a_compiler_training_takes_the_dense_path_quietly(onehot, monkeypatch, tmp_path):
    X, y, _ = onehot
    _reset(monkeypatch, tmp_path, tmp_path / "no-such-compiler")
    cfg = TrainConfig(hidden=(8,), epochs=5, batch_size=50, lr=0.01)
    ens = train_ensemble(X, y, np.ones((2, len(y)), dtype=bool), config=cfg, seed=0)  # no warning
    assert native.sparse_rows(torch.from_numpy(X), 8) is None
    assert "no C compiler" in native.status()
    assert ((ens.predict_proba(X)[..., 1] > 0.5) == y).mean() > 0.6


def test_a_failing_compiler_warns_once_and_training_falls_back(onehot, monkeypatch, tmp_path):
    X, y, _ = onehot
    cc = tmp_path / "broken-cc"
    cc.write_text("#!/bin/sh\necho 'internal compiler error' >&2\nexit 1\n")
    cc.chmod(0o755)
    _reset(monkeypatch, tmp_path, cc)
    cfg = TrainConfig(hidden=(8,), epochs=5, batch_size=50, lr=0.01)
    with pytest.warns(RuntimeWarning, match="compiled sparse kernels are unavailable.*internal compiler error"):
        ens = train_ensemble(X, y, np.ones((2, len(y)), dtype=bool), config=cfg, seed=0)
    assert "internal compiler error" in native.status()
    assert ((ens.predict_proba(X)[..., 1] > 0.5) == y).mean() > 0.6
