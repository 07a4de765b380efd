"""Training and privacy configurations, validated with messages that name the parameter."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fairleak.errors import ParameterError

__all__ = ["ACTIVATIONS", "FAIRNESS_PENALTIES", "DPConfig", "FairnessConfig", "TrainConfig"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "square")
OPTIMIZERS = ("adam", "sgd")
FAIRNESS_PENALTIES = ("l2_softmax", "demographic_parity", "equalized_odds")
ACCOUNTANTS = ("rdp", "prv")


def _bad(cls: str, name: str, value: Any, allowed: str) -> ParameterError:
    return ParameterError(
        f"The '{name}' parameter of {cls} must be {allowed}. Got {value!r} instead."
    )


def _positive(
    cls: str, name: str, value: Any, *, integer: bool = False, allow_zero: bool = False
) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or (value < 0 if allow_zero else value <= 0):
        kind = "an int" if integer else "a float"
        rng = "[0, inf)" if allow_zero else ("[1, inf)" if integer else "(0, inf)")
        raise _bad(cls, name, value, f"{kind} in the range {rng}")
    if not integer and not math.isfinite(value):
        raise _bad(cls, name, value, "a finite float")


@dataclass(frozen=True)
class TrainConfig:
    """How each model of an ensemble is built and optimised.

    ``hidden=()`` is logistic regression (one linear layer to 2 logits); ``hidden=(64,)`` an MLP
    with one hidden layer of 64 units. Optimiser semantics follow ``torch.optim.Adam`` / ``SGD``
    (weight decay is L2 added to the gradient, as there).
    """

    hidden: tuple[int, ...] = (64,)
    activation: Literal["relu", "tanh", "sigmoid", "elu", "square"] = "relu"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 256
    weight_decay: float = 0.0
    momentum: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        c = "TrainConfig"
        if any(h < 1 for h in self.hidden):
            raise _bad(c, "hidden", self.hidden, "a tuple of positive ints")
        if self.activation not in ACTIVATIONS:
            raise _bad(c, "activation", self.activation, f"one of {ACTIVATIONS}")
        if self.optimizer not in OPTIMIZERS:
            raise _bad(c, "optimizer", self.optimizer, f"one of {OPTIMIZERS}")
        _positive(c, "lr", self.lr)
        _positive(c, "epochs", self.epochs, integer=True)
        _positive(c, "batch_size", self.batch_size, integer=True)
        _positive(c, "weight_decay", self.weight_decay, allow_zero=True)
        _positive(c, "momentum", self.momentum, allow_zero=True)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


@dataclass(frozen=True)
class FairnessConfig:
    """An in-processing fairness penalty, weight ``weight`` (lambda), over protected attributes.

    ``penalty``: ``"l2_softmax"`` (the seed blog's L2 distance between groups' mean softmax
    vectors, averaged over pairs of groups), ``"demographic_parity"`` (max - min of groups' mean
    P(y=1)) or ``"equalized_odds"`` (the larger of that gap among y=1 and among y=0 rows).
    Several attributes (columns of the group codes) combine by ``reduce`` = ``"sum"`` or
    ``"max"``; pass intersection codes as a column to penalise intersections.
    """

    penalty: str = "demographic_parity"
    weight: float = 1.0
    reduce: Literal["sum", "max"] = "sum"

    def __post_init__(self) -> None:
        if self.penalty not in FAIRNESS_PENALTIES:
            raise _bad("FairnessConfig", "penalty", self.penalty, f"one of {FAIRNESS_PENALTIES}")
        _positive("FairnessConfig", "weight", self.weight, allow_zero=True)
        if self.reduce not in ("sum", "max"):
            raise _bad("FairnessConfig", "reduce", self.reduce, "'sum' or 'max'")


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD (Abadi et al. 2016) settings, optionally with DP-SGD-S group-adaptive clipping.

    Give either ``target_epsilon`` (the noise multiplier is calibrated with Opacus's
    ``get_noise_multiplier``) or ``noise_multiplier``. ``group_clipping=True`` enables
    DP-SGD-S (Yang et al. 2025) in the sound form of ALGORITHMS.md section 5: per-group clipped
    norm sums are released with multiplier ``norm_noise_multiplier`` and accounted as a second
    subsampled Gaussian mechanism each step; group k is clipped at
    ``max_grad_norm * clip(r / r_k, 1 / tau, tau)``: ``tau`` bounds how far a group's bound
    moves from ``max_grad_norm``, both ways, so ``tau = 1`` is DP-SGD exactly (the authors' code
    bounds it from above only, ``min(tau, r / r_k)``, which lets a small group with large
    gradients be clipped towards zero). With a fairness penalty, the sign of each linearised
    gap is re-estimated every step from per-group sums of predictions released with multiplier
    ``fairness_noise_multiplier`` (sensitivity 1 per gap term), accounted as a further mechanism.
    """

    target_epsilon: float | None = None
    noise_multiplier: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: Literal["rdp", "prv"] = "rdp"
    group_clipping: bool = False
    tau: float = 2.0
    norm_noise_multiplier: float = 10.0
    fairness_noise_multiplier: float = 10.0

    def __post_init__(self) -> None:
        c = "DPConfig"
        if self.target_epsilon is None and self.noise_multiplier is None:
            raise ParameterError(
                "DPConfig needs either 'target_epsilon' (a float in (0, inf)) or "
                "'noise_multiplier' (a float in [0, inf)); got neither."
            )
        if self.target_epsilon is not None:
            _positive(c, "target_epsilon", self.target_epsilon)
        if self.noise_multiplier is not None:
            _positive(c, "noise_multiplier", self.noise_multiplier, allow_zero=True)
        if (
            isinstance(self.delta, bool)
            or not isinstance(self.delta, int | float)
            or not 0 < self.delta < 1
        ):
            raise _bad(c, "delta", self.delta, "a float in the range (0, 1)")
        _positive(c, "max_grad_norm", self.max_grad_norm)
        if self.accountant not in ACCOUNTANTS:
            raise _bad(c, "accountant", self.accountant, f"one of {ACCOUNTANTS}")
        if not isinstance(self.tau, int | float) or self.tau < 1:
            raise _bad(c, "tau", self.tau, "a float in the range [1, inf)")
        _positive(c, "norm_noise_multiplier", self.norm_noise_multiplier)
        _positive(c, "fairness_noise_multiplier", self.fairness_noise_multiplier)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Resolved:
    """Internal: a DPConfig with its noise multiplier fixed for a given schedule."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)
