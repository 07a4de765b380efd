"""L2T-FMT's teacher: a small deep Q-network per task that picks the student's objective.

Roy & Ntoutsi, "Learning to Teach Fairness-aware Deep Multi-task Learning", ECML PKDD 2022. The
state of task t is the flattened weights of the student's head t; ``Q(s, t) in R^2`` scores the
two actions (0: learn from the accuracy loss, 1: from the fairness loss). A shared body feeds one
output head per task. At the end of each student epoch the teacher regresses
``Q(s, t)[a]`` onto ``R(a) + gamma max Q(s_a, t)`` for *both* actions, since the student's
look-ahead evaluates both (fitted Q-iteration, MSE, AdamW), on mini-batches drawn from a replay
memory of recent transitions (all epochs so far, bounded). Actions are epsilon-greedy with a
decaying epsilon (the published code acted greedily, without exploration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from fairleak.multitask.network import _init_linear

__all__ = ["Teacher", "Transitions"]


@dataclass
class Transitions:
    """One epoch's experience: task, state, the two look-ahead states and their rewards."""

    task: list[int] = field(default_factory=list)
    state: list[torch.Tensor] = field(default_factory=list)
    next_accuracy: list[torch.Tensor] = field(default_factory=list)
    next_fairness: list[torch.Tensor] = field(default_factory=list)
    reward: list[tuple[float, float]] = field(default_factory=list)

    def add(self, task: int, state, next_acc, next_fair, r_acc: float, r_fair: float) -> None:
        self.task.append(task)
        self.state.append(state)
        self.next_accuracy.append(next_acc)
        self.next_fairness.append(next_fair)
        self.reward.append((r_acc, r_fair))

    def __len__(self) -> int:
        return len(self.task)

    def keep_last(self, n: int) -> None:
        """Forget all but the ``n`` most recent transitions (a bounded replay memory)."""
        for name in ("task", "state", "next_accuracy", "next_fairness", "reward"):
            setattr(self, name, getattr(self, name)[-n:])


class Teacher(nn.Module):
    """``Q(state, task) -> [Q(accuracy), Q(fairness)]``: shared body, one head per task."""

    def __init__(self, state_dim: int, n_tasks: int, *, hidden: int = 32, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        self.body = nn.Linear(state_dim, hidden)
        _init_linear(self.body, gen)
        self.heads = nn.ModuleList()
        for _ in range(n_tasks):
            head = nn.Linear(hidden, 2)
            _init_linear(head, gen)
            self.heads.append(head)

    def forward(self, state: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Q-values [B, 2] for states [B, S] of tasks [B]."""
        h = torch.relu(self.body(state))
        out = torch.stack([head(h) for head in self.heads], 1)  # [B, T, 2]
        return out[torch.arange(len(task)), task]

    def act(
        self, state: torch.Tensor, task: int, epsilon: float, generator: torch.Generator
    ) -> int:
        """Epsilon-greedy action (0 accuracy, 1 fairness) for one state."""
        if float(torch.rand((), generator=generator)) < epsilon:
            return int(torch.randint(0, 2, (), generator=generator))
        with torch.no_grad():
            q = self(state[None], torch.tensor([task]))[0]
        return int(q.argmax())

    def fit(
        self,
        transitions: Transitions,
        *,
        gamma: float,
        lr: float,
        updates: int,
        batch_size: int,
        generator: torch.Generator,
    ) -> float:
        """Fitted-Q regression: ``updates`` AdamW steps on mini-batches drawn from the replay
        memory ``transitions`` (targets from the teacher as it is before the fit); returns the
        mean loss of the last ``updates // 4`` steps."""
        n = len(transitions)
        if n == 0 or updates == 0:
            return 0.0
        task = torch.tensor(transitions.task)
        s = torch.stack(transitions.state)
        reward = torch.tensor(transitions.reward, dtype=s.dtype)
        with torch.no_grad():
            nxt = torch.stack([
                self(torch.stack(transitions.next_accuracy), task).max(1).values,
                self(torch.stack(transitions.next_fairness), task).max(1).values,
            ], 1)  # fmt: skip
        target = reward + gamma * nxt
        opt = torch.optim.AdamW(self.parameters(), lr=lr)
        tail = []
        for k in range(updates):
            idx = torch.randint(0, n, (min(batch_size, n),), generator=generator)
            loss = nn.functional.mse_loss(self(s[idx], task[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if k >= updates - max(updates // 4, 1):
                tail.append(float(loss.detach()))
        return float(sum(tail) / len(tail))
