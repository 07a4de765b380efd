"""`MultiTaskMLP`: a shared trunk of linear layers, one 2-logit head per task, and branches.

Hidden level ``l`` (0-based) holds one or more copies of its linear layer; ``routes[l][t]`` is the
copy task ``t`` goes through. At first every level has one copy shared by all tasks (plain
multi-task learning). FairBranch (Roy & Ntoutsi, IJCNN 2024) splits the deepest shared level
into one copy per task group (:meth:`MultiTaskMLP.split_level`), so the routes form a tree:
tasks that share a copy at level ``l`` share every level below it too.

Unlike the published code, no layer is created inside ``forward`` (its ``Branched_model`` built a
new, untrained ``BatchNorm1d`` on every call, so predictions depended on the batch): there is no
batch normalisation at all, and a row's prediction does not depend on the rows beside it.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MultiTaskMLP"]

ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": nn.functional.elu,
}


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    # PyTorch's default nn.Linear initialisation, drawn from a seeded generator (no global RNG).
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(layer.in_features)
    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


class MultiTaskMLP(nn.Module):
    """Shared MLP trunk with one 2-logit head per task; levels may be split into branches.

    Args:
        n_features: input width; ``hidden``: widths of the hidden levels (``()`` gives one
            logistic regression per task); ``n_tasks``: number of heads.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"elu"``.
        seed: seeds the initialisation (same seed, same weights).

    ``forward(x)`` returns logits of shape [T, N, 2].

    Heads start at zero (the trunk's random features break the symmetry after one step). The
    softmax is shift invariant, so the gradients of a head's two rows are exact opposites, and so
    are Adam's updates: a head's weights are then all learned logit difference. With PyTorch's
    default initialisation, the rows' random common part never changes and the random start
    stays in the difference; FairBranch's CKA between heads then measured mostly that noise
    (related tasks on planted data: CKA 0.2-0.5 where the learned parts agree).
    """

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int],
        n_tasks: int,
        *,
        activation: str = "relu",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.n_tasks = int(n_tasks)
        gen = torch.Generator().manual_seed(int(seed))
        widths = [int(n_features), *(int(h) for h in hidden)]
        self.levels = nn.ModuleList()
        for a, b in itertools.pairwise(widths):
            layer = nn.Linear(a, b)
            _init_linear(layer, gen)
            self.levels.append(nn.ModuleList([layer]))
        self.heads = nn.ModuleList()
        for _ in range(self.n_tasks):
            head = nn.Linear(widths[-1], 2)
            nn.init.zeros_(head.weight)  # see the class docstring
            nn.init.zeros_(head.bias)
            self.heads.append(head)
        self.routes: list[list[int]] = [[0] * self.n_tasks for _ in self.levels]

    @property
    def depth(self) -> int:
        """Number of hidden levels."""
        return len(self.levels)

    def parents(self, level: int) -> list[int]:
        """For each copy at ``level``, the copy at ``level - 1`` that feeds it (0 at level 0)."""
        out = [0] * len(self.levels[level])
        if level > 0:
            for t, c in enumerate(self.routes[level]):
                out[c] = self.routes[level - 1][t]
        return out

    def users(self, level: int, copy_index: int) -> list[int]:
        """Tasks routed through copy ``copy_index`` of ``level``."""
        return [t for t, c in enumerate(self.routes[level]) if c == copy_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        outs = [x]
        for level, copies in enumerate(self.levels):
            par = self.parents(level)
            outs = [act(layer(outs[par[c]])) for c, layer in enumerate(copies)]
        last = self.routes[-1] if self.levels else [0] * self.n_tasks
        return torch.stack([self.heads[t](outs[last[t]]) for t in range(self.n_tasks)])

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        """Every parameter task ``task``'s prediction depends on (its path and head)."""
        params: list[nn.Parameter] = []
        for level, copies in enumerate(self.levels):
            params.extend(copies[self.routes[level][task]].parameters())
        params.extend(self.heads[task].parameters())
        return params

    def level_weights(self, level: int) -> list[torch.Tensor]:
        """Weight matrices [out, in] of the copies at ``level`` (``level == depth``: the heads)."""
        if level == self.depth:
            return [h.weight for h in self.heads]
        return [layer.weight for layer in self.levels[level]]

    def level_groups(self, level: int) -> list[list[int]]:
        """Task groups at ``level``: the users of each copy (each task alone at the heads)."""
        if level == self.depth:
            return [[t] for t in range(self.n_tasks)]
        return [self.users(level, c) for c in range(len(self.levels[level]))]

    def split_level(
        self, level: int, groups: Sequence[Sequence[int]]
    ) -> dict[nn.Parameter, list[nn.Parameter]]:
        """Replace the shared copy at ``level`` by one copy per group of tasks.

        Each copy starts from the shared weights. ``groups`` must partition the tasks and keep
        together tasks that already share a copy one level up (the routes stay a tree). Returns
        ``{old parameter: [its copies]}`` so optimiser state can be carried over.
        """
        if len(self.levels[level]) != 1:
            raise ValueError(f"Level {level} is already branched; only a shared level can split.")
        flat = sorted(t for g in groups for t in g)
        if flat != list(range(self.n_tasks)):
            raise ValueError(
                f"groups must partition the tasks 0..{self.n_tasks - 1}; got {groups}."
            )
        if level + 1 < self.depth:
            for above in self.level_groups(level + 1):
                if not any(set(above) <= set(g) for g in groups):
                    raise ValueError(
                        f"Tasks {above} share a copy at level {level + 1} but are split at "
                        f"level {level}; groups must be unions of the groups above."
                    )
        shared = self.levels[level][0]
        copies = [copy.deepcopy(shared) for _ in groups]
        self.levels[level] = nn.ModuleList(copies)
        for c, g in enumerate(groups):
            for t in g:
                self.routes[level][t] = c
        return {
            p_old: [dict(c.named_parameters())[name] for c in copies]
            for name, p_old in shared.named_parameters()
        }
