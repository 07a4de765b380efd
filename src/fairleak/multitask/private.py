"""DP-SGD for the multi-task network, through Opacus (per-sample gradients, clipping, noise,
Poisson sampling and the RDP accountant are all Opacus's).

Which methods can be private, and why (checked by ``MultiTaskFairClassifier.fit``):

- STL and plain MTL **without a fairness loss**: the loss ``sum_t CE_t(x_i)`` is a sum over rows,
  so each row's gradient (all of its task labels together) is clipped and noised: record-level
  DP for the whole row. STL releases T models trained on the same rows; their privacy losses
  compose, so ``target_epsilon`` is the budget of all T together (each gets more noise) and the
  reported epsilon is Opacus's RDP accountant over the T runs. MTL and STL are then compared
  at the same total epsilon.
- **Any fairness loss**: the robust-log loss (worst group's mean loss), the demographic-parity and
  the equalized-odds gaps are functions of group means over the batch; a row's influence on them
  is not a per-sample gradient that can be clipped, so DP-SGD's sensitivity bound does not hold.
- **FairBranch**: grouping tasks by the similarity of (private) parameters would be
  post-processing and cost nothing, but each step needs the batch's per-task fairness gradients
  (for lambda_t and FBGrad), which are batch-level as above; privatising 2T separate gradient
  sums per step would also multiply the noise. Not offered.
- **L2T-FMT**: the teacher's rewards are accuracy and EO on validation rows, which are not
  clipped or noised, and its actions choose a batch-level fairness loss: the student's updates
  depend on data outside any accounted mechanism. Not offered.
"""

from __future__ import annotations

import warnings

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from fairleak.multitask.network import MultiTaskMLP
from fairleak.multitask.training import Progress, TaskData, TrainSettings, derived_seed

__all__ = ["PRIVATE_METHODS", "composed_epsilon", "fit_private", "private_noise_multiplier"]

#: Methods that can train with DP-SGD (without a fairness loss).
PRIVATE_METHODS = ("stl", "mtl")


def private_noise_multiplier(
    target_epsilon: float, delta: float, n_rows: int, batch_size: int, epochs: int, runs: int = 1
) -> float:
    """Opacus's noise multiplier reaching ``target_epsilon`` for ``runs`` trainings on the same
    rows together (STL's T models). Composing identical subsampled Gaussian mechanisms adds
    their RDP, as one run with ``runs`` times the steps does, so Opacus's search over one run's
    steps is used as it is."""
    from opacus.accountants.utils import get_noise_multiplier  # Opacus imports in seconds

    steps_per_epoch = -(-n_rows // batch_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return float(
            get_noise_multiplier(
                target_epsilon=target_epsilon, target_delta=delta,
                sample_rate=1.0 / steps_per_epoch, steps=runs * epochs * steps_per_epoch,
                accountant="rdp",
            )
        )  # fmt: skip


def composed_epsilon(
    noise_multiplier: float, n_rows: int, batch_size: int, epochs: int, runs: int, delta: float
) -> float:
    """Epsilon of ``runs`` DP-SGD trainings on the same rows, composed (Opacus RDP)."""
    from opacus.accountants import RDPAccountant

    steps_per_epoch = -(-n_rows // batch_size)
    acc = RDPAccountant()
    acc.history = [(noise_multiplier, 1.0 / steps_per_epoch, epochs * steps_per_epoch)] * runs
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return float(acc.get_epsilon(delta=delta))


def fit_private(
    model: MultiTaskMLP,
    data: TaskData,
    settings: TrainSettings,
    *,
    noise_multiplier: float,
    max_grad_norm: float,
    delta: float,
    seed: int,
    progress: Progress | None = None,
) -> float:
    """Train ``model`` with DP-SGD on ``sum_t CE_t`` (no fairness loss); returns its epsilon.

    Poisson sampling with expected batch ``batch_size``; AdamW on the noised gradients (any
    optimiser is post-processing). Same seed, same batches and noise.
    """
    from opacus import PrivacyEngine

    loader = DataLoader(
        TensorDataset(data.x, data.y), batch_size=settings.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(derived_seed(seed, 1)),
    )  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant="rdp")
        private_model, opt, loader = engine.make_private(
            module=model, optimizer=opt, data_loader=loader, noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm, poisson_sampling=True,
            noise_generator=torch.Generator().manual_seed(derived_seed(seed, 2)),
        )  # fmt: skip
    n_steps = settings.epochs * len(loader)
    with warnings.catch_warnings():
        # Opacus's hooks on a first layer whose input needs no gradient; harmless.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        _private_epochs(private_model, opt, loader, settings.epochs, progress, n_steps)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        eps = float(engine.get_epsilon(delta))
    private_model.cleanup()  # remove the hooks: the plain model is used from here on
    return eps


def _private_epochs(private_model, opt, loader, epochs: int, progress, n_steps: int) -> None:
    done = 0
    for _ in range(epochs):
        for xb, yb in loader:
            logits = private_model(xb)
            if len(xb) == 0:
                loss = logits.sum() * 0.0
            else:
                loss = sum(F.cross_entropy(logits[t], yb[:, t]) for t in range(yb.shape[1]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if progress is not None:
                progress(done, n_steps)
