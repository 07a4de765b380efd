"""Cross-check against adversarial-robustness-toolbox (optional extra ``robustness``): ART's
DeepFool on the same MLP finds flips of about the same size as fairleak's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairleak.robustness import PerturbationSpace, minimal_perturbation
from fairleak.train import TrainConfig, train_ensemble

art = pytest.importorskip("art")


def test_deepfool_agrees_with_art_on_an_mlp():
    from art.attacks.evasion import DeepFool
    from art.estimators.classification import PyTorchClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    y = ((X[:, 0] ** 2 + X[:, 1] - 0.5 * X[:, 2] * X[:, 3]) > 0.7).astype(int)
    ens = train_ensemble(X, y, np.ones((1, 300), bool), config=TrainConfig(hidden=(32,), epochs=40), seeds=[3])
    net = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    with torch.no_grad():
        for lin, w, b in zip((net[0], net[2]), ens.weights, ens.biases, strict=True):
            lin.weight.copy_(w[0].T)
            lin.bias.copy_(b[0])
    clf = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=(5,), nb_classes=2)
    X = X[:150]
    x_art = DeepFool(clf, max_iter=50, epsilon=0.02, nb_grads=2, batch_size=150, verbose=False).generate(X)
    pred0 = clf.predict(X).argmax(1)
    flipped = clf.predict(x_art).argmax(1) != pred0
    d_art = np.linalg.norm(x_art - X, axis=1)
    ours = minimal_perturbation(ens, X, PerturbationSpace.all_numeric(5), method="deepfool")
    assert flipped.mean() > 0.9 and ours.flipped.all()
    r = ours.distance[flipped] / d_art[flipped]
    # ours refines each flip back to the boundary along its segment: never larger than ART's
    # by more than the overshoot, and the same size to within 5% on the median record
    assert 0.9 <= np.median(r) <= 1.05
    assert np.mean(r <= 1.05) > 0.9
