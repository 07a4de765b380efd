"""L2T-FMT: the teacher learns to pick the fairness loss for the biased task; task weights."""

import numpy as np
import pytest
import torch

from fairleak.data.multitask import make_multitask_synthetic
from fairleak.multitask import MultiTaskFairClassifier
from fairleak.multitask.gradnorm import gradnorm_step
from fairleak.multitask.teacher import Teacher, Transitions
from fairleak.multitask.training import one_thread


@pytest.mark.parametrize("seed", [0, 1])
def test_teacher_picks_fairness_more_often_for_the_task_with_the_larger_gap(seed):
    # Task 0's labels carry a planted group bias (and feature x0 is a proxy of the group);
    # task 1 is unbiased. Rewards on a separate validation set of 2,000 rows. The share is
    # read over the second half of training, once the teacher has had three epochs to learn
    # (the first epoch's actions come from its random start and 30% exploration).
    ds = make_multitask_synthetic(4000, n_features=6, task_groups=(0, 1), group_bias=(3.0, 0.0),
                                  seed=seed)  # fmt: skip
    X, tr, va = ds.features.to_numpy(), slice(0, 2000), slice(2000, None)
    clf = MultiTaskFairClassifier(method="l2t", hidden_layer_sizes=(16,), epochs=6,
                                  batch_size=64, lr=3e-3, random_state=seed)  # fmt: skip
    clf.fit(X[tr], ds.Y[tr], sensitive_features=ds.sensitive.iloc[tr],
            validation_data=(X[va], ds.Y[va], ds.sensitive.iloc[va]))  # fmt: skip
    actions = np.asarray(clf.log_["actions"])  # [epoch, task, (accuracy, fairness)]
    assert actions.shape == (6, 2, 2) and (actions.sum(-1) == 32).all()  # 2000 rows / 64
    late = actions[3:].sum(0)
    biased, fair = late[:, 1] / late.sum(1)
    assert biased > 0.7 and biased > fair + 0.15, (biased, fair)
    assert clf.log_["validation_rows"] == 2000


def test_teacher_regression_learns_which_action_pays():
    # Constant rewards, gamma 0: Q converges to the rewards, and the greedy action follows.
    teacher = Teacher(3, 2, hidden=8, seed=0)
    trans = Transitions()
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        s = torch.randn(3, generator=gen)
        trans.add(0, s, s, s, 0.5, -0.5)  # task 0: accuracy pays
        trans.add(1, s, s, s, -0.2, 0.3)  # task 1: fairness pays
    with one_thread():
        teacher.fit(trans, gamma=0.0, lr=1e-2, updates=300, batch_size=64, generator=gen)
    s = torch.randn(5, 3, generator=gen)
    q0 = teacher(s, torch.zeros(5, dtype=torch.long))
    q1 = teacher(s, torch.ones(5, dtype=torch.long))
    np.testing.assert_allclose(q0.detach().numpy(), [[0.5, -0.5]] * 5, atol=0.05)
    np.testing.assert_allclose(q1.detach().numpy(), [[-0.2, 0.3]] * 5, atol=0.05)
    assert teacher.act(s[0], 0, 0.0, gen) == 0 and teacher.act(s[0], 1, 0.0, gen) == 1
    trans.keep_last(10)
    assert len(trans) == 10


def test_gradnorm_weights_favour_the_slower_task_and_sum_to_t():
    w = np.ones(3)
    for _ in range(50):  # equal gradient norms; task 2's loss falls slowest
        w = gradnorm_step(w, np.ones(3), np.array([0.5, 0.5, 0.9]))
    assert w.sum() == pytest.approx(3.0) and w[2] > w[0] == pytest.approx(w[1])
    same = gradnorm_step(np.ones(2), np.array([2.0, 2.0]), np.array([0.7, 0.7]))
    np.testing.assert_allclose(same, [1.0, 1.0])


def test_l2t_needs_a_fairness_loss_and_holds_out_validation_rows():
    ds = make_multitask_synthetic(400, n_features=4, task_groups=(0, 1), seed=0)
    X = ds.features.to_numpy()
    with pytest.raises(Exception, match="cannot be None with method='l2t'"):
        MultiTaskFairClassifier(method="l2t", fairness=None).fit(X, ds.Y)
    clf = MultiTaskFairClassifier(method="l2t", hidden_layer_sizes=(4,), epochs=1,
                                  validation_fraction=0.25, random_state=0)  # fmt: skip
    clf.fit(X, ds.Y, sensitive_features=ds.sensitive)
    assert clf.log_["validation_rows"] == 100
    assert np.asarray(clf.log_["actions"]).sum() == 2 * 2  # 300 rows: 2 batches, 2 tasks
