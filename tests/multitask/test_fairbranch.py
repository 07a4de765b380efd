"""FairBranch: CKA, greedy grouping, FBGrad's projection, branching, and the published bugs."""

import numpy as np
import pytest
import torch

from fairleak.data.multitask import make_multitask_synthetic
from fairleak.multitask import (
    MultiTaskFairClassifier,
    MultiTaskMLP,
    greedy_pairs,
    intra_task_weight,
    linear_cka,
    project_conflicts,
)
from fairleak.multitask.fairbranch import fairbranch_gradients


def test_linear_cka_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0)  # rotation, scale, shift
    # One column each: CKA is the squared correlation.
    a, b = rng.normal(size=(200, 1)), rng.normal(size=(200, 1))
    assert linear_cka(a, b) == pytest.approx(np.corrcoef(a[:, 0], b[:, 0])[0, 1] ** 2)
    # Orthogonal centred columns: 0.
    u = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    v = np.array([[1.0], [1.0], [-1.0], [-1.0]])
    assert linear_cka(u, v) == pytest.approx(0.0)
    assert linear_cka(np.ones((5, 2)), x[:5]) == 0.0  # a constant side
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(x, x[:10])


def test_greedy_pairs_merges_most_similar_first_and_leaves_singletons():
    a = np.array([
        [1.0, 0.90, 0.80, 0.10, 0.0],
        [0.90, 1.0, 0.95, 0.10, 0.0],
        [0.80, 0.95, 1.0, 0.20, 0.0],
        [0.10, 0.10, 0.20, 1.0, 0.75],
        [0.0, 0.0, 0.0, 0.75, 1.0],
    ])  # fmt: skip
    # (1, 2) first at 0.95; every pair touching 1 or 2 is dropped, so 0 stays alone.
    assert greedy_pairs(a, 0.7) == [[0], [1, 2], [3, 4]]
    assert greedy_pairs(a, 0.8) == [[0], [1, 2], [3], [4]]
    assert greedy_pairs(a, 0.99) == [[0], [1], [2], [3], [4]]


def test_grouping_recovers_planted_task_pairs():
    # Tasks 0 and 1 share a concept, tasks 2 and 3 another (orthogonal) one.
    ds = make_multitask_synthetic(2000, n_features=8, task_groups=(0, 0, 1, 1), seed=0)
    clf = MultiTaskFairClassifier(
        method="fairbranch", hidden_layer_sizes=(32, 16), fairness=None, epochs=21,
        branch_every=20, lr=3e-3, random_state=0,
    ).fit(ds.features.to_numpy(), ds.Y)  # fmt: skip
    (event,) = clf.log_["branchings"]
    assert event["groups"] == [[0, 1], [2, 3]] and event["level"] == 1
    aff = np.asarray(event["affinity"])
    assert min(aff[0, 1], aff[2, 3]) > 0.9 > 0.1 > aff[[0, 0, 1, 1], [2, 3, 2, 3]].max()
    assert clf.log_["routes"] == [[0, 0, 0, 0], [0, 0, 1, 1]]
    assert len(clf.networks_[0].levels[1]) == 2


def test_projection_removes_the_conflict_and_leaves_agreement_alone():
    g1 = torch.tensor([1.0, 0.0, 2.0])
    g2 = torch.tensor([-1.0, 1.0, 0.0])
    assert float(g1 @ g2) < 0
    c1, c2 = project_conflicts([g1, g2])
    assert float(c1 @ g2) == pytest.approx(0.0, abs=1e-6) and float(c2 @ g1) == pytest.approx(
        0.0, abs=1e-6
    )
    torch.testing.assert_close(c1, g1 - (g1 @ g2) / (g2 @ g2) * g2)
    # No conflict: nothing changes.
    h1, h2 = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.5, 0.0, 1.0])
    out = project_conflicts([h1, h2])
    assert torch.equal(out[0], h1) and torch.equal(out[1], h2)
    # Random conflicting pairs: the corrected gradient never points against the other one.
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        a, b = torch.randn(20, generator=gen), torch.randn(20, generator=gen)
        ca, cb = project_conflicts([a, b])
        assert float(ca @ b) >= -1e-5 and float(cb @ a) >= -1e-5


def test_intra_task_weight():
    assert intra_task_weight(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.1])) == 0.0
    assert intra_task_weight(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 1.0


def test_fbgrad_acts_on_branches_only_not_on_the_shared_trunk():
    net = MultiTaskMLP(4, (6, 5), 3, seed=1)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for head in net.heads:  # non-zero heads so that every layer gets a gradient
            head.weight.normal_(generator=gen)
    net.split_level(1, [[0, 1], [2]])
    x = torch.randn(32, 4, generator=gen)
    logits = net(x)
    acc = torch.stack([logits[t, :, 1].mean() for t in range(3)])
    fair = torch.stack([(logits[0, :, 1] ** 2).mean(), -(logits[1, :, 1] ** 2).mean(),
                        logits[2, :, 0].mean()])  # fmt: skip
    grads, conflicts, dropped = fairbranch_gradients(net, acc, fair, shared_depth=1)

    def grad(loss, params):
        return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)

    def flat(gs):
        return torch.cat([g.reshape(-1) for g in gs])

    lam = [intra_task_weight(flat(grad(acc[t], net.task_parameters(t))),
                             flat(grad(fair[t], net.task_parameters(t)))) for t in range(3)]  # fmt: skip
    assert dropped == [t for t in range(3) if lam[t] == 0.0]
    branch = list(net.levels[1][0].parameters())  # shared by tasks 0 and 1
    f0, f1 = flat(grad(fair[0], branch)), flat(grad(fair[1], branch))
    assert float(f0 @ f1) < 0 and conflicts == 1
    c0, c1 = project_conflicts([f0, f1])
    expected = flat(grad(acc[0] + acc[1], branch)) + lam[0] * c0 + lam[1] * c1
    torch.testing.assert_close(flat([grads[p] for p in branch]), expected)
    uncorrected = flat(grad(acc[0] + acc[1], branch)) + lam[0] * f0 + lam[1] * f1
    assert not torch.allclose(expected, uncorrected)
    # The fully shared trunk: every task's accuracy + lambda_t fairness gradient, uncorrected.
    trunk = list(net.levels[0][0].parameters())
    plain = sum(flat(grad(acc[t], trunk)) + lam[t] * flat(grad(fair[t], trunk)) for t in range(3))
    torch.testing.assert_close(flat([grads[p] for p in trunk]), plain)


def test_branch_split_keeps_predictions_and_is_batch_size_invariant():
    ds = make_multitask_synthetic(600, n_features=6, task_groups=(0, 1, 0), seed=2)
    X = ds.features.to_numpy()
    clf = MultiTaskFairClassifier(
        method="fairbranch", hidden_layer_sizes=(8, 8, 8), epochs=5, branch_every=1,
        affinity_threshold=0.0, random_state=0,
    ).fit(X, ds.Y, sensitive_features=ds.sensitive)  # fmt: skip
    assert len(clf.log_["branchings"]) == 2  # two of the three levels split; level 0 stays
    assert len(clf.networks_[0].levels[0]) == 1
    full = np.asarray(clf.predict_proba(X))
    one_by_one = np.concatenate(
        [np.asarray(clf.predict_proba(X[i : i + 1])) for i in range(50)], axis=1
    )
    np.testing.assert_allclose(one_by_one, full[:, :50], rtol=1e-6, atol=1e-7)
    net = MultiTaskMLP(6, (8, 8), 3, seed=3)
    x = torch.tensor(X[:20])
    before = net(x)
    net.split_level(1, [[0, 2], [1]])
    torch.testing.assert_close(net(x), before)  # copies start from the shared weights
    with pytest.raises(ValueError, match="already branched"):
        net.split_level(1, [[0], [1], [2]])
    net2 = MultiTaskMLP(6, (8, 8), 3, seed=3)
    net2.split_level(1, [[0, 2], [1]])
    with pytest.raises(ValueError, match="unions of the groups above"):
        net2.split_level(0, [[0], [1, 2]])


def test_one_task_without_fairness_is_single_task_learning():
    ds = make_multitask_synthetic(500, n_features=5, task_groups=(0,), seed=3)
    X, y = ds.features.to_numpy(), ds.Y[:, :1]
    kw = dict(hidden_layer_sizes=(8, 4), fairness=None, epochs=3, random_state=4)
    fb = np.asarray(MultiTaskFairClassifier(method="fairbranch", **kw).fit(X, y).predict_proba(X))
    stl = np.asarray(MultiTaskFairClassifier(method="stl", **kw).fit(X, y).predict_proba(X))
    np.testing.assert_allclose(fb, stl, rtol=1e-5, atol=1e-6)


def test_robust_log_fairbranch_lowers_the_planted_error_rate_gap():
    ds = make_multitask_synthetic(3000, n_features=6, task_groups=(0, 1), group_bias=(3.0, 0.0),
                                  seed=5)  # fmt: skip
    X, y = ds.features.to_numpy(), ds.Y[:, 0]
    minority = ds.sensitive["group"].to_numpy() == "minority"

    def eo_sum(pred):  # the papers' EO: TPR gap + FPR gap between the two groups
        rate = lambda g, lab: pred[g & (y == lab), 0].mean()  # noqa: E731
        return sum(abs(rate(minority, lab) - rate(~minority, lab)) for lab in (0, 1))

    gaps = {}
    for w in (0.0, 2.0):
        clf = MultiTaskFairClassifier(
            method="fairbranch",
            hidden_layer_sizes=(16, 8),
            fairness_weight=w,
            epochs=8,
            lr=3e-3,
            random_state=0,
        )
        gaps[w] = eo_sum(clf.fit(X, ds.Y, sensitive_features=ds.sensitive).predict(X))
    assert gaps[2.0] < gaps[0.0] - 0.05
