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
def test_sparse_path_trains_the_models_the_dense_path_trains(
    onehot, monkeypatch, private, hidden, activation
):
    """Same seeds, same maths: the compiled model-side kernels (sparse first layer, fused last
    hidden backward with its norms) differ from the dense eager kernels only by float32
    rounding (sums in another order), which a short training keeps at the level of rounding, for
    every activation and depth; under DP through per-sample norms and DP-SGD-S's clipping
    factors (which the weight-gradient kernel applies) too, with the same (compiled) noise and
    sampling streams. Without DP, the whole fall-back (FAIRLEAK_NATIVE=0: torch's sigmoid and
    optimiser too) trains the same models."""
    from fairleak.train import trainer as trainer_mod

    X, y, groups = onehot
    masks = np.random.default_rng(2).random((3, len(y))) < 0.6
    # SGD: Adam divides by the root of tiny second moments on rarely active one-hot columns and
    # turns float32 rounding into sign flips of whole steps (a few weights differ by ~lr)
    cfg = TrainConfig(hidden=hidden, activation=activation, epochs=2, batch_size=64, lr=0.05,
                      optimizer="sgd", momentum=0.9)  # fmt: skip
    dp = (
        DPConfig(noise_multiplier=1.0, noise="reproducible", group_clipping=True)
        if private
        else None
    )
    sparse = train_ensemble(X, y, masks, config=cfg, seed=3, dp=dp, groups=groups)
    if private:  # the eager kernels, the compiled generators
        monkeypatch.setattr(trainer_mod, "sparse_rows", lambda *a, **k: None)
        monkeypatch.setattr(native, "HIDDEN_BACKWARD_ACTS", {})
    else:
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
    with pytest.warns(
        RuntimeWarning, match="compiled kernels are unavailable.*internal compiler error"
    ):
        ens = train_ensemble(X, y, np.ones((2, len(y)), dtype=bool), config=cfg, seed=0)
    assert "internal compiler error" in native.status()
    assert ((ens.predict_proba(X)[..., 1] > 0.5) == y).mean() > 0.6


# ---------------------------------------------------------------- counter-based DP noise


@needs_cc
def test_philox_matches_random123_known_answers():
    """Random123's tests/kat_vectors, the three ``philox4x32 10`` lines (counter, key, result)."""
    cases = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            [0xA4093822, 0x299F31D0],
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ]
    for ctr, key, want in cases:
        assert native.philox4x32_10(np.array(ctr), np.array(key)).tolist() == want


@needs_cc
def test_compiled_noise_is_standard_normal_and_independent():
    """DP's guarantee assumes N(0, 1) draws, independent across coordinates, steps and models:
    moments, a Kolmogorov-Smirnov test on 2 million draws, the tail mass beyond 4 sigma, and
    no correlation between models, steps or segments."""
    from scipy import stats

    keys = np.random.default_rng(0).integers(0, 2**63, 4, dtype=np.uint64)
    out = torch.empty(4, 500_000)
    native.normal_fill(keys, 11, out, [(0, 500_000, 0)])
    z = out.double().numpy()
    flat = z.ravel()
    assert abs(flat.mean()) < 5 / np.sqrt(flat.size) and abs(flat.var() - 1) < 5 * np.sqrt(
        2 / flat.size
    )
    assert abs(stats.skew(flat)) < 0.01 and abs(stats.kurtosis(flat)) < 0.02
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    tail, expect = (np.abs(flat) > 4).sum(), flat.size * 2 * stats.norm.sf(4)
    assert abs(tail - expect) < 5 * np.sqrt(expect)
    other_step, other_seg = torch.empty(4, 500_000), torch.empty(4, 500_000)
    native.normal_fill(keys, 12, other_step, [(0, 500_000, 0)])
    native.normal_fill(keys, 11, other_seg, [(0, 500_000, 1)])
    bound = 5 / np.sqrt(500_000)
    for a, b in [(z[0], z[1]), (z[0], other_step[0].double().numpy()), (z[0], other_seg[0].double().numpy()),
                 (z[0, :-1], z[0, 1:])]:  # fmt: skip
        assert abs(np.corrcoef(a, b)[0, 1]) < bound


@needs_cc
def test_compiled_noise_depends_on_key_step_and_segment_only():
    """Sharding invariance and determinism: a row's draws are the same whatever the other rows,
    the row's position, the thread count or the segment's place in the row."""
    keys = np.array([3, 2**40 + 7, 2**63 + 1], dtype=np.uint64)
    a = torch.empty(3, 1000)
    native.normal_fill(keys, 5, a, [(0, 600, 0), (600, 400, 1)])
    b = torch.empty(1, 1300)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        native.normal_fill(keys[1:2], 5, b, [(0, 400, 1), (700, 600, 0)])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(a[1, :600], b[0, 700:]) and torch.equal(a[1, 600:], b[0, :400])
    c = torch.empty(3, 1000)
    native.normal_fill(keys, 6, c, [(0, 600, 0), (600, 400, 1)])
    assert not torch.isclose(a, c).any()


@needs_cc
def test_noise_add_is_the_drawn_noise_added_in_place():
    """The fused update draws exactly the gradient segment's normals, laid over the gradient
    tensors end to end (pieces that split a tile of draws anywhere), and computes
    (g + scale z) / divisor."""
    K = 3
    grads = [torch.randn(K, 37, 13), torch.randn(K, 13, 2), torch.randn(K, 13), torch.randn(K, 2)]
    P = sum(g[0].numel() for g in grads)
    keys = np.array([11, 12, 13], dtype=np.uint64)
    z = torch.empty(K, P)
    native.normal_fill(keys, 4, z, [(0, P, 0)])
    scale, div = torch.tensor([0.5, 1.0, 2.0]), torch.tensor([10.0, 20.0, 30.0])
    want, off = [], 0
    for g in grads:
        n = g[0].numel()
        shape = (K,) + (1,) * (g.ndim - 1)
        want.append((g + z[:, off : off + n].view(g.shape) * scale.view(shape)) / div.view(shape))
        off += n
    native.noise_add(keys, 4, 0, grads, scale, div)
    for g, w in zip(grads, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-7)


@needs_cc
@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "elu"])
def test_hidden_backward_equals_torch(act):
    """The fused last-hidden-layer backward: torch's product and activation backward, and the
    per-sample squared norms of the result and of the activations."""
    from fairleak.train.kernels import ACTIVATIONS, sq_norm

    k, M, H = 3, 17, 24
    z = torch.randn(k, M, H) * 2
    h = ACTIVATIONS[act].forward_(z.clone())
    d, wd = torch.randn(k, M), torch.randn(k, H)
    want = ACTIVATIONS[act].backward_(d.unsqueeze(-1) * wd.unsqueeze(1), z, h)
    dz, dz_sq, h_sq = torch.empty(k, M, H), torch.empty(k, M), torch.empty(k, M)
    native.hidden_backward(d, wd, h, act, dz, dz_sq, h_sq)
    torch.testing.assert_close(dz, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dz_sq, sq_norm(want), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_sq, sq_norm(h), rtol=1e-5, atol=1e-6)


@needs_cc
def test_box_muller_matches_double_precision_and_reaches_the_far_tail():
    """The transform (polynomial log and sincos) equals the textbook formula in double precision
    to float32 rounding, and u1 has 62 bits: the largest draw is sqrt(-2 ln 2^-62) = 9.27, not
    the 6.7 of a 32-bit uniform (a truncated Gaussian, whose missing tail a worst-case privacy
    analysis would charge to delta)."""
    rng = np.random.default_rng(0)
    n = 200_000
    hi, lo, ang = (rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32) for _ in range(3))
    hi[:3], lo[:3], ang[:3] = [0, 0xFFFFFFFF, 0], [0, 0xFFFFFFFF, 1], [0, 0xFFFFFFFF, 0x80000000]
    z0, z1 = native.box_muller(hi, lo, ang)
    u1 = ((hi >> 1).astype(np.float32) * np.float32(2.0**-31)
          + ((lo >> 1).astype(np.float32) + np.float32(1)) * np.float32(2.0**-62)).astype(np.float64)  # fmt: skip
    u2 = (ang >> 8).astype(np.float64) * 2.0**-24
    r = np.sqrt(-2 * np.log(u1))
    tol = 1e-6 * np.maximum(r, 1)  # a few float32 ulps of the result
    assert (np.abs(z0 - r * np.cos(2 * np.pi * u2)) <= tol).all()
    assert (np.abs(z1 - r * np.sin(2 * np.pi * u2)) <= tol).all()
    assert np.hypot(z0[0], z1[0]) == pytest.approx(np.sqrt(-2 * np.log(2.0**-62)), rel=1e-6)
    assert z0[0] == pytest.approx(9.27, abs=0.01)  # u1 = 2^-62, angle 0


@needs_cc
def test_dp_shards_are_bit_identical_whatever_the_padding(onehot):
    """Poisson batches are padded to the largest batch of the models trained together, so a
    model's padding differs between the whole set and a shard, and models with fewer rows end
    their schedules early. The compiled kernels sum in batch order (padding adds exact zeros),
    per-row norms and margins in a fixed lane order, the sigmoid and the optimiser element by
    element, so DP-SGD gives the same bits in any split (torch's batched GEMV, vectorised sigmoid
    and fused Adam round by position and did not)."""
    X, y, _ = onehot
    rng = np.random.default_rng(7)
    masks = rng.random((5, len(y))) < np.array([[0.3], [0.5], [0.7], [0.4], [0.6]])  # unequal
    seeds = model_seeds(11, 5)
    for hidden, opt in [((8,), "adam"), ((24,), "adam"), ((16,), "sgd")]:
        cfg = TrainConfig(hidden=hidden, epochs=2, batch_size=64, optimizer=opt, momentum=0.5 * (opt == "sgd"))
        dp = DPConfig(noise_multiplier=1.0, noise="reproducible")
        whole = train_ensemble(X, y, masks, config=cfg, seeds=seeds, dp=dp)
        parts = [train_ensemble(X, y, masks[a:b], config=cfg, seeds=seeds[a:b], dp=dp)
                 for a, b in [(0, 2), (2, 4), (4, 5)]]  # fmt: skip
        for i, w in enumerate([*whole.weights, *whole.biases]):
            assert torch.equal(w, torch.cat([[*p.weights, *p.biases][i] for p in parts])), (hidden, i)


@needs_cc
def test_last_layer_grad_ignores_padding_and_norms_ignore_position():
    """Padding rows (d = 0) appended to a batch change no bit of the last layer's gradient, and a
    row's squared norms are the same wherever it sits in memory."""
    rng = torch.Generator().manual_seed(0)
    d, h = torch.randn(3, 37, generator=rng), torch.randn(3, 37, 24, generator=rng)
    gw, gb = torch.empty(3, 24), torch.empty(3)
    native.last_layer_grad(d, h, gw, gb)
    dp_, hp = torch.cat([d, torch.zeros(3, 9)], 1), torch.cat([h, torch.randn(3, 9, 24, generator=rng)], 1)
    gw2, gb2 = torch.empty(3, 24), torch.empty(3)
    native.last_layer_grad(dp_, hp, gw2, gb2)
    assert torch.equal(gw, gw2) and torch.equal(gb, gb2)
    torch.testing.assert_close(gw, torch.einsum("km,kmh->kh", d, h), rtol=1e-5, atol=1e-5)
    wd = torch.randn(3, 24, generator=rng)
    out = [torch.empty(3, 37, 24), torch.empty(3, 37), torch.empty(3, 37)]
    native.hidden_backward(d, wd, h, "tanh", out[0], out[1], out[2])
    for shift in (1, 3):  # the same rows at other offsets (and alignments) of a larger batch
        h2 = torch.cat([torch.randn(3, shift, 24, generator=rng), h], 1).contiguous()
        d2 = torch.cat([torch.randn(3, shift, generator=rng), d], 1).contiguous()
        o2 = [torch.empty(3, 37 + shift, 24), torch.empty(3, 37 + shift), torch.empty(3, 37 + shift)]
        native.hidden_backward(d2, wd, h2, "tanh", o2[0], o2[1], o2[2])
        assert torch.equal(o2[1][:, shift:], out[1]) and torch.equal(o2[2][:, shift:], out[2])
