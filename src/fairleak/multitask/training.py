"""What every multi-task training method shares: settings, tensors, batches, losses, optimiser.

Plain multi-task learning (MTL) lives here too, since it is the shared loop with the simplest
step: the summed loss ``sum_t (L_t + w F_t)`` of all tasks, one backward pass. Single-task
learning (STL) is the same loop on a one-task network per task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from fairleak.multitask.losses import fairness_loss
from fairleak.multitask.network import MultiTaskMLP

__all__ = [
    "Progress",
    "TaskData",
    "TrainSettings",
    "derived_seed",
    "epoch_batches",
    "fit_mtl",
    "make_optimizer",
    "one_thread",
    "task_losses",
]

#: progress(done_steps, total_steps)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainSettings:
    """Settings every method uses (validated by ``MultiTaskFairClassifier.fit``)."""

    hidden: tuple[int, ...] = (64, 32)
    activation: str = "relu"
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    fairness: str | None = "robust_log"
    fairness_weight: float = 1.0
    fairness_reduce: str = "sum"


@dataclass(frozen=True)
class TaskData:
    """Training tensors: ``x`` [N, D] float32, ``y`` [N, T] int64 (0/1), protected ``views``
    (one int64 code vector [N] per attribute or intersection) with ``n_groups`` each."""

    x: torch.Tensor
    y: torch.Tensor
    views: tuple[torch.Tensor, ...]
    n_groups: tuple[int, ...]

    @classmethod
    def from_arrays(
        cls, x: np.ndarray, y: np.ndarray, views: Sequence[np.ndarray], n_groups: Sequence[int]
    ) -> TaskData:
        return cls(
            x=torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)),
            y=torch.as_tensor(np.asarray(y, dtype=np.int64)).reshape(len(x), -1),
            views=tuple(torch.as_tensor(np.asarray(v, dtype=np.int64)) for v in views),
            n_groups=tuple(int(g) for g in n_groups),
        )

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_tasks(self) -> int:
        return int(self.y.shape[1])

    def rows(self, idx: torch.Tensor) -> TaskData:
        return TaskData(self.x[idx], self.y[idx], tuple(v[idx] for v in self.views), self.n_groups)

    def task(self, t: int) -> TaskData:
        return TaskData(self.x, self.y[:, t : t + 1], self.views, self.n_groups)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the previous setting.

    The networks here are small (tens of thousands of weights, batches of a few hundred rows), so
    every op is too short to split: on the 2-core CI machine, shared with other jobs, a COMPAS fit
    took 0.4-1.2 s on one thread and 2-20 s on two (OpenMP threads waiting on each other).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def derived_seed(seed: int, *keys: int) -> int:
    """A seed for a sub-stream (model ``t``, the batch order, ...) derived from ``seed``."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's batches: a seeded permutation cut into ``batch_size`` pieces (last may be short)."""
    perm = torch.randperm(n, generator=generator)
    return list(perm.split(batch_size))


def make_optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW, the papers' optimiser."""
    return torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)


def task_losses(
    model: MultiTaskMLP, batch: TaskData, settings: TrainSettings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Logits [T, B, 2], accuracy losses ``L_t`` [T] (cross-entropy) and fairness losses
    ``F_t`` [T] (``None`` without a fairness loss) on a batch."""
    logits = model(batch.x)
    acc = torch.stack([F.cross_entropy(logits[t], batch.y[:, t]) for t in range(batch.n_tasks)])
    if settings.fairness is None:
        return logits, acc, None
    fair = torch.stack([
        fairness_loss(settings.fairness, logits[t], batch.y[:, t], batch.views, batch.n_groups,
                      settings.fairness_reduce)
        for t in range(batch.n_tasks)
    ])  # fmt: skip
    return logits, acc, fair


def fit_mtl(
    model: MultiTaskMLP,
    data: TaskData,
    settings: TrainSettings,
    *,
    seed: int,
    progress: Progress | None = None,
) -> dict[str, list[float]]:
    """Plain (fair) multi-task learning: minimise ``sum_t (L_t + w F_t)`` with AdamW.

    Returns the mean training losses per epoch (``{"accuracy_loss": [...], "fairness_loss": [...]}``).
    """
    opt = make_optimizer(model, settings)
    gen = torch.Generator().manual_seed(derived_seed(seed, 1))
    history: dict[str, list[float]] = {"accuracy_loss": [], "fairness_loss": []}
    n_steps = settings.epochs * -(-len(data) // settings.batch_size)
    done = 0
    for _ in range(settings.epochs):
        sums = np.zeros(2)
        batches = epoch_batches(len(data), settings.batch_size, gen)
        for idx in batches:
            _, acc, fair = task_losses(model, data.rows(idx), settings)
            loss = acc.sum() if fair is None else acc.sum() + settings.fairness_weight * fair.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [float(acc.detach().sum()), 0.0 if fair is None else float(fair.detach().sum())]
            done += 1
            if progress is not None:
                progress(done, n_steps)
        history["accuracy_loss"].append(float(sums[0] / len(batches)))
        history["fairness_loss"].append(float(sums[1] / len(batches)))
    return history
