"""L2T-FMT (Roy & Ntoutsi, "Learning to Teach Fairness-aware Deep Multi-task Learning",
ECML PKDD 2022): a teacher chooses, per task and step, whether the student learns from the
accuracy or the fairness loss.

Each step: the teacher (``teacher.py``) picks an action per task from the state (task t's head
weights); the student's update is ``sum_t w_t grad l_t`` with ``l_t`` the chosen loss and ``w_t``
GradNorm-style task weights (``gradnorm.py``): T trade-off weights instead of 2T. Two look-ahead
copies per task take one step with each loss from the current parameters; each is scored on the
*validation* rows (the published code scored the training mini-batch):
``R(a) = min((acc_a - best_acc_t) / best_acc_t, (fair_a - best_fair_t) / best_fair_t)`` with
``fair = 1 - EO / 2`` (EO in the papers' sum form over the two labels, worst protected view; halved so
that it lies in [0, 1], where the paper's ``1 - EO`` can be negative) and ``best_*`` the best
validation values seen so far. At each epoch's end the teacher takes ``teacher_updates``
regression steps on its replay memory (the published code fitted once per epoch on that epoch's
experience; a few steps per epoch left the teacher close to its random start).

The look-ahead is computed functionally (``torch.func.functional_call``) from the step's own
gradients: a step of a fresh Adam optimiser is ``lr * sign(g)``, so a look-ahead is
``theta - lookahead_lr * sign(g)`` on the task's path, with no state dict written to disk and no
optimiser built per batch (both done in the published code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.func import functional_call

from fairleak.multitask.gradnorm import gradnorm_step
from fairleak.multitask.network import MultiTaskMLP
from fairleak.multitask.teacher import Teacher, Transitions
from fairleak.multitask.training import (
    Progress,
    TaskData,
    TrainSettings,
    derived_seed,
    epoch_batches,
    make_optimizer,
    task_losses,
)

__all__ = ["L2TLog", "fit_l2t", "validation_scores"]


@dataclass
class L2TLog:
    """What the teacher did: actions per epoch [epochs][T][2] (accuracy, fairness), the greedy
    share of them, task weights per epoch, and the teacher's regression loss."""

    actions: list[list[list[int]]] = field(default_factory=list)
    greedy_actions: list[list[list[int]]] = field(default_factory=list)
    task_weights: list[list[float]] = field(default_factory=list)
    teacher_loss: list[float] = field(default_factory=list)
    exploration: list[float] = field(default_factory=list)

    def fairness_share(self) -> list[float]:
        """Share of steps in which each task learned from the fairness loss."""
        a = np.asarray(self.actions, dtype=np.float64).sum(0)  # [T, 2]
        return (a[:, 1] / np.maximum(a.sum(1), 1)).tolist()


def _eo_sum(pred: torch.Tensor, y: torch.Tensor, views, n_groups) -> float:
    """Worst view's sum over labels of the range across groups of P(yhat = 1 | y, s)."""
    worst = 0.0
    for codes, g in zip(views, n_groups, strict=True):
        total = 0.0
        for label in (0, 1):
            sel = y == label
            counts = torch.bincount(codes[sel], minlength=g)
            hits = torch.bincount(codes[sel], weights=pred[sel].double(), minlength=g)
            ok = counts > 0
            if int(ok.sum()) >= 2:
                rates = hits[ok] / counts[ok]
                total += float(rates.max() - rates.min())
        worst = max(worst, total)
    return worst


def validation_scores(
    logits: torch.Tensor, validation: TaskData, tasks: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and fairness score ``1 - EO/2`` on the validation rows, for each of ``tasks``
    (default all); ``logits`` [T, N, 2]."""
    tasks = list(range(validation.n_tasks)) if tasks is None else tasks
    pred = logits[tasks].argmax(-1)
    y = validation.y[:, tasks].T
    acc = (pred == y).double().mean(1).numpy()
    fair = np.array([
        1.0 - _eo_sum(pred[k], y[k], validation.views, validation.n_groups) / 2.0
        for k in range(len(tasks))
    ])  # fmt: skip
    return acc, fair


def _head_state(params: dict[str, torch.Tensor], t: int) -> torch.Tensor:
    return torch.cat([params[f"heads.{t}.weight"].reshape(-1), params[f"heads.{t}.bias"]]).detach()


def fit_l2t(
    model: MultiTaskMLP,
    data: TaskData,
    validation: TaskData,
    settings: TrainSettings,
    *,
    gamma: float = 0.9,
    exploration: tuple[float, float] = (0.3, 0.05),
    lookahead_lr: float = 1e-2,
    teacher_hidden: int = 32,
    teacher_lr: float = 1e-3,
    teacher_updates: int = 100,
    replay_size: int = 20_000,
    seed: int,
    progress: Progress | None = None,
) -> L2TLog:
    """Train ``model`` with L2T-FMT (needs ``settings.fairness``); returns the teacher's log."""
    if settings.fairness is None:
        raise ValueError("L2T-FMT chooses between the accuracy and a fairness loss; set fairness.")
    T = model.n_tasks
    opt = make_optimizer(model, settings)
    batch_gen = torch.Generator().manual_seed(derived_seed(seed, 1))
    act_gen = torch.Generator().manual_seed(derived_seed(seed, 2))
    fit_gen = torch.Generator().manual_seed(derived_seed(seed, 3))
    names = {p: n for n, p in model.named_parameters()}
    params = dict(model.named_parameters())
    teacher = Teacher(_head_state(params, 0).numel(), T, hidden=teacher_hidden,
                      seed=derived_seed(seed, 4))  # fmt: skip
    weights = np.ones(T)
    shared = model.levels[-1][0].weight if model.depth else None
    with torch.no_grad():
        best_acc, best_fair = validation_scores(model(validation.x), validation)
    first_loss: np.ndarray | None = None
    log = L2TLog()
    n_steps = settings.epochs * -(-len(data) // settings.batch_size)
    done = 0
    trans = Transitions()
    for epoch in range(settings.epochs):
        frac = epoch / max(settings.epochs - 1, 1)
        eps = exploration[0] + (exploration[1] - exploration[0]) * frac
        counts = np.zeros((T, 2), dtype=np.int64)
        greedy = np.zeros((T, 2), dtype=np.int64)
        for idx in epoch_batches(len(data), settings.batch_size, batch_gen):
            _, acc, fair = task_losses(model, data.rows(idx), settings)
            fair = settings.fairness_weight * fair
            paths = [model.task_parameters(t) for t in range(T)]
            grads = [
                [torch.autograd.grad(loss[t], paths[t], retain_graph=True) for loss in (acc, fair)]
                for t in range(T)
            ]
            current = {n: p.detach() for n, p in params.items()}
            actions = []
            for t in range(T):
                state = _head_state(current, t)
                a = teacher.act(state, t, eps, act_gen)
                with torch.no_grad():
                    greedy[t, int(teacher(state[None], torch.tensor([t]))[0].argmax())] += 1
                actions.append(a)
                counts[t, a] += 1
                # Look-ahead: one step with each loss from the current parameters.
                scores, nexts = [], []
                for choice in (0, 1):
                    moved = dict(current)
                    for p, g in zip(paths[t], grads[t][choice], strict=True):
                        moved[names[p]] = current[names[p]] - lookahead_lr * torch.sign(g)
                    with torch.no_grad():
                        va, vf = validation_scores(
                            functional_call(model, moved, (validation.x,)), validation, [t]
                        )
                    scores.append((va[0], vf[0]))
                    nexts.append(_head_state(moved, t))
                rewards = [
                    min((a_ - best_acc[t]) / max(best_acc[t], 1e-6),
                        (f_ - best_fair[t]) / max(best_fair[t], 1e-6))
                    for a_, f_ in scores
                ]  # fmt: skip
                best_acc[t] = max(best_acc[t], *(s[0] for s in scores))
                best_fair[t] = max(best_fair[t], *(s[1] for s in scores))
                trans.add(t, state, nexts[0], nexts[1], rewards[0], rewards[1])
            chosen = [grads[t][actions[t]] for t in range(T)]
            if shared is not None:
                at = [next(i for i, p in enumerate(path) if p is shared) for path in paths]
                norms = np.array([float(g[at[t]].norm()) for t, g in enumerate(chosen)])
                loss_now = acc.detach().numpy().astype(np.float64)
                if first_loss is None:
                    first_loss = np.maximum(loss_now, 1e-12)
                weights = gradnorm_step(weights, norms, loss_now / first_loss)
            opt.zero_grad(set_to_none=True)
            for t in range(T):
                for p, g in zip(paths[t], chosen[t], strict=True):
                    step = float(weights[t]) * g
                    p.grad = step if p.grad is None else p.grad + step
            opt.step()
            done += 1
            if progress is not None:
                progress(done, n_steps)
        trans.keep_last(replay_size)
        log.teacher_loss.append(
            teacher.fit(trans, gamma=gamma, lr=teacher_lr, updates=teacher_updates,
                        batch_size=64, generator=fit_gen)
        )  # fmt: skip
        log.actions.append(counts.tolist())
        log.greedy_actions.append(greedy.tolist())
        log.task_weights.append([float(w) for w in weights])
        log.exploration.append(float(eps))
    return log
