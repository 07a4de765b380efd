"""FairBranch (Roy & Ntoutsi, "FairBranch: Mitigating Bias Transfer in Fair Multi-task Learning",
IJCNN 2024): branch the network by task similarity, correct fairness-gradient conflicts in branches.

Each step computes every task's accuracy and fairness gradients over its own path (2T backward
passes), sets the intra-task weight ``lambda_t`` (0 when the two conflict), applies FBGrad to the
fairness gradients of tasks sharing a *branch* (fully shared trunk levels get no correction) and
updates with ``sum_t (grad L_t + lambda_t grad F_t)``.

Every ``branch_every`` epochs, while more than one level is shared and there are at least two
task groups one level above the deepest shared level, the groups' parameters there are compared
by linear CKA; pairs at or above ``threshold`` are merged greedily (most similar first) and the
deepest shared level is replaced by one copy per resulting group. The optimiser keeps its state,
each copy starting from the shared parameter's moments.

Differences from the published code (ALGORITHMS-2.md section 6): no batch normalisation built in
``forward``; empty (label, group) cells skipped in the fairness loss; FBGrad tests and projects each
branch's weights and biases together, for every pair of its tasks; ``lambda_t`` from this step's
gradients over the task's whole path; no checkpoint selection by fewest conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from fairleak.multitask.affinity import affinity_matrix, greedy_pairs
from fairleak.multitask.conflict import intra_task_weight, project_conflicts
from fairleak.multitask.network import MultiTaskMLP
from fairleak.multitask.training import (
    Progress,
    TaskData,
    TrainSettings,
    derived_seed,
    epoch_batches,
    make_optimizer,
    task_losses,
)

__all__ = ["BranchEvent", "FairBranchLog", "branch_once", "fairbranch_gradients", "fit_fairbranch"]


@dataclass
class BranchEvent:
    """One branching: after ``epoch`` (1-based), level ``level`` was split into ``groups``."""

    epoch: int
    level: int
    units: list[list[int]]
    affinity: list[list[float]]
    groups: list[list[int]]


@dataclass
class FairBranchLog:
    """What FairBranch did: branchings, conflicts found and intra-task weights per epoch."""

    branchings: list[BranchEvent] = field(default_factory=list)
    conflicts_per_epoch: list[int] = field(default_factory=list)
    fairness_dropped_per_epoch: list[list[int]] = field(default_factory=list)


def _rebuild_optimizer(
    old: torch.optim.Optimizer,
    model: MultiTaskMLP,
    settings: TrainSettings,
    copies: dict[torch.nn.Parameter, list[torch.nn.Parameter]],
) -> torch.optim.Optimizer:
    new = make_optimizer(model, settings)
    for p in model.parameters():
        if p in old.state:
            new.state[p] = old.state[p]
    for p_old, news in copies.items():
        if p_old in old.state:
            for p in news:
                new.state[p] = {
                    k: v.clone() if torch.is_tensor(v) else v for k, v in old.state[p_old].items()
                }
    return new


def branch_once(model: MultiTaskMLP, shared_depth: int, threshold: float) -> BranchEvent | None:
    """Split level ``shared_depth - 1`` by the CKA affinity of the groups at ``shared_depth``.

    Returns the event, or ``None`` when no split is allowed (one shared level left, or fewer
    than two groups above it). The caller carries the optimiser state over.
    """
    if shared_depth <= 1:
        return None
    units = model.level_groups(shared_depth)
    if len(units) < 2:
        return None
    aff = affinity_matrix(model.level_weights(shared_depth))
    merged = greedy_pairs(aff, threshold)
    groups = [sorted(t for u in g for t in units[u]) for g in merged]
    return BranchEvent(
        epoch=0, level=shared_depth - 1, units=[list(u) for u in units],
        affinity=np.round(aff, 6).tolist(), groups=groups,
    )  # fmt: skip


def fairbranch_gradients(
    model: MultiTaskMLP,
    accuracy_losses: torch.Tensor,
    fairness_losses: torch.Tensor | None,
    shared_depth: int,
) -> tuple[dict[torch.nn.Parameter, torch.Tensor], int, list[int]]:
    """The FairBranch update direction for one batch.

    Returns the gradient per parameter, the number of fairness-gradient conflicts corrected in
    branches, and the tasks whose fairness gradient was dropped (``lambda_t = 0``).
    """
    T = model.n_tasks
    total: dict[torch.nn.Parameter, torch.Tensor] = {}
    paths = [model.task_parameters(t) for t in range(T)]
    acc_g = [torch.autograd.grad(accuracy_losses[t], paths[t], retain_graph=True) for t in range(T)]
    if fairness_losses is None:
        for t in range(T):
            for p, g in zip(paths[t], acc_g[t], strict=True):
                total[p] = total[p] + g if p in total else g.clone()
        return total, 0, []
    fair_g = [
        dict(zip(paths[t], torch.autograd.grad(fairness_losses[t], paths[t], retain_graph=True),
                 strict=True))
        for t in range(T)
    ]  # fmt: skip
    lam = [
        intra_task_weight(
            torch.cat([g.reshape(-1) for g in acc_g[t]]),
            torch.cat([fair_g[t][p].reshape(-1) for p in paths[t]]),
        )
        for t in range(T)
    ]
    original = [dict(d) for d in fair_g]
    conflicts = 0
    for level in range(shared_depth, model.depth):  # branched levels only
        for c, layer in enumerate(model.levels[level]):
            users = model.users(level, c)
            if len(users) < 2:
                continue
            params = list(layer.parameters())
            vecs = [torch.cat([original[t][p].reshape(-1) for p in params]) for t in users]
            conflicts += sum(
                int(float(torch.dot(vecs[i], vecs[j])) < 0)
                for i in range(len(vecs)) for j in range(i + 1, len(vecs))
            )  # fmt: skip
            for t, v in zip(users, project_conflicts(vecs), strict=True):
                offset = 0
                for p in params:
                    fair_g[t][p] = v[offset : offset + p.numel()].reshape(p.shape)
                    offset += p.numel()
    for t in range(T):
        for p, g in zip(paths[t], acc_g[t], strict=True):
            step = g + lam[t] * fair_g[t][p] if lam[t] else g
            total[p] = total[p] + step if p in total else step.clone()
    return total, conflicts, [t for t in range(T) if lam[t] == 0.0]


def fit_fairbranch(
    model: MultiTaskMLP,
    data: TaskData,
    settings: TrainSettings,
    *,
    branch_every: int = 2,
    threshold: float = 0.7,
    seed: int,
    progress: Progress | None = None,
) -> FairBranchLog:
    """Train ``model`` with FairBranch; returns the log (branchings, conflicts, dropped tasks)."""
    opt = make_optimizer(model, settings)
    gen = torch.Generator().manual_seed(derived_seed(seed, 1))
    shared_depth = model.depth
    log = FairBranchLog()
    n_steps = settings.epochs * -(-len(data) // settings.batch_size)
    done = 0
    for epoch in range(settings.epochs):
        conflicts, dropped = 0, [0] * model.n_tasks
        for idx in epoch_batches(len(data), settings.batch_size, gen):
            _, acc, fair = task_losses(model, data.rows(idx), settings)
            if fair is not None:
                fair = settings.fairness_weight * fair
            grads, n_conf, drop = fairbranch_gradients(model, acc, fair, shared_depth)
            conflicts += n_conf
            for t in drop:
                dropped[t] += 1
            opt.zero_grad(set_to_none=True)
            for p, g in grads.items():
                p.grad = g
            opt.step()
            done += 1
            if progress is not None:
                progress(done, n_steps)
        log.conflicts_per_epoch.append(conflicts)
        log.fairness_dropped_per_epoch.append(dropped)
        if (epoch + 1) % branch_every == 0 and epoch + 1 < settings.epochs:
            event = branch_once(model, shared_depth, threshold)
            if event is not None:
                event.epoch = epoch + 1
                copies = model.split_level(event.level, event.groups)
                opt = _rebuild_optimizer(opt, model, settings, copies)
                shared_depth -= 1
                log.branchings.append(event)
    return log
