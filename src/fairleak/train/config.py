"""The hyperparameters of fairleak's models, declared once.

:class:`TrainConfig` (architecture and optimiser), :class:`FairnessConfig` (an in-processing
penalty) and :class:`DPConfig` (DP-SGD / DP-SGD-S) are what the trainer takes, what the audit
config's ``train`` / ``models[].fairness`` / ``models[].dp`` sections are, and what
``FairleakClassifier``'s parameters map to. They are immutable; a bad value raises
:class:`~fairleak.errors.ParameterError` naming the parameter, what is allowed and what was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from fairleak.errors import ParameterError
from fairleak.train.kernels import ACTIVATIONS
from fairleak.train.penalties import PENALTIES
from fairleak.validation import Params, finite

__all__ = [
    "ACTIVATIONS",
    "FAIRNESS_PENALTIES",
    "DPConfig",
    "FairnessConfig",
    "TrainConfig",
    "group_columns",
]

#: Names of the registered fairness penalties (see ``fairleak.train.penalties``).
FAIRNESS_PENALTIES = PENALTIES


def _registered(name: str, registry: dict) -> str:
    """Field validator body: ``name`` must be registered (activations, penalties)."""
    if name not in registry:
        raise ValueError(f"one of {tuple(registry)}")
    return name


class TrainConfig(Params):
    """How each model is built and optimised.

    ``hidden=()`` is logistic regression (one linear layer to 2 logits); ``hidden=(64,)`` an MLP
    with one hidden layer of 64 units. Optimiser semantics follow ``torch.optim.Adam`` / ``SGD``
    (weight decay is L2 added to the gradient, as there).
    """

    hidden: tuple[PositiveInt, ...] = Field((64,), description="hidden layer widths; () is logistic regression")
    activation: str = Field("relu", description="hidden-layer activation")
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0, description="learning rate")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(256, ge=1, description="batch size (expected batch size under DP)")
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.0, ge=0, description="SGD momentum")

    @field_validator("activation")
    @classmethod
    def _activation(cls, v: str) -> str:
        return _registered(v, ACTIVATIONS)

    _finite = field_validator("lr", "weight_decay", "momentum")(finite)


class FairnessConfig(Params):
    """An in-processing fairness penalty of weight ``weight`` (lambda) on predicted probabilities.

    ``penalty``: a registered penalty (``"demographic_parity"``, ``"equalized_odds"``,
    ``"equal_opportunity"``, ``"l2_softmax"``; see ``fairleak.train.penalties``). Several protected
    attributes combine by ``reduce`` (``"sum"`` or ``"max"``); ``attributes`` names the protected
    attributes to penalise (None: all that are given).
    """

    penalty: str = "demographic_parity"
    weight: float = Field(1.0, ge=0, description="lambda, the penalty's weight")
    reduce: Literal["sum", "max"] = "sum"
    attributes: tuple[str, ...] | None = Field(None, description="protected attributes; None: all")

    @field_validator("penalty")
    @classmethod
    def _penalty(cls, v: str) -> str:
        return _registered(v, PENALTIES)

    _finite = field_validator("weight")(finite)


class DPConfig(Params):
    """DP-SGD (Abadi et al. 2016) settings, optionally with DP-SGD-S group-adaptive clipping.

    Give either ``target_epsilon`` (the noise multiplier is calibrated with Opacus's accountant)
    or ``noise_multiplier``. ``group_clipping=True`` enables DP-SGD-S (Yang et al. 2025) in the
    sound form of ALGORITHMS.md section 5: per-group sums of per-sample gradient norms, each clipped
    at ``norm_clip`` (C_est, default ``2 * tau * max_grad_norm``), of the groups of
    ``group_attribute`` are released with multiplier ``norm_noise_multiplier`` each step, smoothed
    across steps (``norm_smoothing``, an exponential moving average: post-processing), groups
    expected to have fewer than ``min_group_batch`` records in a batch are pooled, and group k is
    clipped at ``max_grad_norm * clip(r / r_k, 1 / tau, tau)``: ``tau`` bounds how far a group's
    bound moves from ``max_grad_norm``, both ways, so ``tau = 1`` is DP-SGD exactly
    (``tau_mode="upper"`` is the authors' ``min(tau, r / r_k)``, which lets a small group with
    large gradients be clipped towards zero; kept for the ablation). With a fairness penalty, the
    sign of each linearised gap is re-estimated every step from per-group sums of predictions
    released with multiplier ``fairness_noise_multiplier``.

    Accounting: every release computed from one Poisson batch (the gradient sum, DP-SGD-S's norm
    sums, the fairness signs) is one subsampled Gaussian mechanism with the joint multiplier
    ``(sum_i sigma_i^-2)^(-1/2)``; the group counts DP-SGD-S and the penalty need are released
    once with multiplier ``count_noise_multiplier`` and composed with it (Opacus's accountant).

    ``noise="secure"`` (the default) draws Poisson sampling and every noise from fresh OS
    entropy at each fit, never stored, so a released model's noise cannot be replayed from its
    seed; ``noise="reproducible"`` draws them from the seeds, for simulations and audits, where
    fairleak measures a mechanism instead of releasing a model: such a model is not a DP release.
    """

    target_epsilon: float | None = Field(None, gt=0)
    noise_multiplier: float | None = Field(None, ge=0)
    delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0, description="clipping bound C")
    accountant: Literal["rdp", "prv"] = "rdp"
    group_clipping: bool = Field(False, description="DP-SGD-S group-adaptive clipping")
    tau: float = Field(2.0, ge=1, description="DP-SGD-S: bound on C_k / C, both ways")
    norm_noise_multiplier: float = Field(10.0, gt=0, description="DP-SGD-S norm release")
    fairness_noise_multiplier: float = Field(10.0, gt=0, description="private fairness sign release")
    group_attribute: str | None = Field(
        None, description="DP-SGD-S groups: a protected attribute; None: the first"
    )
    norm_clip: float | None = Field(
        None, gt=0, description="DP-SGD-S: C_est, the bound of each norm in the norm release; None: 2 tau C"
    )
    norm_smoothing: float = Field(0.9, ge=0, lt=1, description="DP-SGD-S: moving-average weight of past norm estimates")
    min_group_batch: float = Field(5.0, ge=0, description="DP-SGD-S: pool groups expected below this many records a batch")
    tau_mode: Literal["two_sided", "upper"] = Field("two_sided", description="DP-SGD-S: bound C_k both ways, or from above only")
    count_noise_multiplier: float = Field(20.0, gt=0, description="one-off release of group counts")
    noise: Literal["secure", "reproducible"] = Field(
        "secure", description="secure: OS entropy, never stored; reproducible: from the seeds (not a DP release)"
    )

    _finite = field_validator(
        "target_epsilon", "noise_multiplier", "max_grad_norm", "tau",
        "norm_noise_multiplier", "fairness_noise_multiplier", "norm_clip", "count_noise_multiplier",
    )(finite)  # fmt: skip

    @property
    def estimate_clip(self) -> float:
        """C_est of DP-SGD-S's norm release."""
        return float(self.norm_clip if self.norm_clip is not None else 2 * self.tau * self.max_grad_norm)

    @model_validator(mode="after")
    def _one_of(self) -> DPConfig:
        if self.target_epsilon is None and self.noise_multiplier is None:
            raise ValueError(
                "DPConfig needs either 'target_epsilon' (a float in (0, inf)) or "
                "'noise_multiplier' (a float in [0, inf)); got neither."
            )
        return self


def group_columns(
    fairness: FairnessConfig | None, dp: DPConfig | None, protected: Sequence[str], *, owner: str = ""
) -> tuple[list[str], str | None]:
    """The protected attributes a recipe trains with: those its fairness penalty compares
    (``fairness.attributes``, default all of ``protected``) and the one DP-SGD-S clips by
    (``dp.group_attribute``, default the first); an unknown name is a clear error."""
    protected = list(protected)
    where = f"{owner}: " if owner else ""

    def check(names: Sequence[str], key: str) -> None:
        bad = [a for a in names if a not in protected]
        if bad:
            raise ParameterError(
                f"{where}'{key}' names {bad}, which {'is' if len(bad) == 1 else 'are'} not among "
                f"the protected attributes {protected}."
            )

    penalised: list[str] = []
    if fairness is not None:
        penalised = list(fairness.attributes) if fairness.attributes else protected
        check(penalised, "fairness.attributes")
    clip = None
    if dp is not None and dp.group_clipping:
        clip = dp.group_attribute or (protected[0] if protected else None)
        if clip is None:
            raise ParameterError(f"{where}DP-SGD-S group clipping needs a protected attribute.")
        check([clip], "dp.group_attribute")
    return penalised, clip
