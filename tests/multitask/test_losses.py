"""Per-task fairness losses: known values, empty cells skipped, views combined."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fairleak.multitask import fairness_loss
from fairleak.multitask.losses import (
    demographic_parity_loss,
    equalized_odds_loss,
    robust_log_loss,
)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 2, generator=gen)
    y = torch.tensor([0, 1] * 20)
    codes = torch.tensor([0] * 10 + [1] * 10 + [2] * 20)
    return logits, y, codes


def test_robust_log_is_the_worst_groups_loss_per_label(batch):
    logits, y, codes = batch
    ce = F.cross_entropy(logits, y, reduction="none").numpy()
    expected = sum(
        max(ce[(y.numpy() == lab) & (codes.numpy() == g)].mean() for g in range(3))
        for lab in (0, 1)
    )
    assert float(robust_log_loss(logits, y, codes, 3)) == pytest.approx(expected, rel=1e-6)


def test_empty_cells_are_skipped_not_nan(batch):
    logits, y, codes = batch
    # Group 3 is declared but absent; group 0 has no positive rows.
    codes = codes.clone()
    codes[(codes == 0) & (y == 1)] = 1
    for fn in (robust_log_loss, demographic_parity_loss, equalized_odds_loss):
        leaf = logits.clone().requires_grad_(True)
        value = fn(leaf, y, codes, 4)
        value.backward()
        assert math.isfinite(float(value.detach())) and torch.isfinite(leaf.grad).all()
    only_neg = y == 0  # a batch with one label only
    assert math.isfinite(float(robust_log_loss(logits[only_neg], y[only_neg], codes[only_neg], 4)))
    # One group present: no gap to close.
    one = torch.zeros(40, dtype=torch.long)
    assert float(demographic_parity_loss(logits, y, one, 2)) == 0.0
    assert float(equalized_odds_loss(logits, y, one, 2)) == 0.0


def test_gap_losses_match_numpy(batch):
    logits, y, codes = batch
    p1 = torch.softmax(logits, -1)[:, 1].numpy()
    c, yy = codes.numpy(), y.numpy()
    means = [p1[c == g].mean() for g in range(3)]
    assert float(demographic_parity_loss(logits, y, codes, 3)) == pytest.approx(
        np.ptp(means), rel=1e-6
    )
    eo = sum(np.ptp([p1[(c == g) & (yy == lab)].mean() for g in range(3)]) for lab in (0, 1))
    assert float(equalized_odds_loss(logits, y, codes, 3)) == pytest.approx(eo, rel=1e-6)


def test_views_are_summed_or_maxed(batch):
    logits, y, codes = batch
    other = torch.tensor([0, 1] * 20)
    views, sizes = [codes, other], [3, 2]
    a = float(fairness_loss("demographic_parity", logits, y, [codes], [3]))
    b = float(fairness_loss("demographic_parity", logits, y, [other], [2]))
    assert float(fairness_loss("demographic_parity", logits, y, views, sizes)) == pytest.approx(
        a + b
    )
    assert float(
        fairness_loss("demographic_parity", logits, y, views, sizes, "max")
    ) == pytest.approx(max(a, b))


def test_gradient_of_the_dp_loss_closes_the_gap():
    logits = torch.zeros(6, 2, requires_grad=True)
    codes = torch.tensor([0, 0, 0, 1, 1, 1])
    with torch.no_grad():
        logits[:3, 1] = 2.0  # group 0 predicted positive more often
    loss = demographic_parity_loss(logits, torch.zeros(6, dtype=torch.long), codes, 2)
    loss.backward()
    assert (logits.grad[:3, 1] > 0).all() and (logits.grad[3:, 1] < 0).all()
