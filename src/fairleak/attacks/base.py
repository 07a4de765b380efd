"""What every membership-inference attack is: a function of model outputs, registered by name.

An attack sees an :class:`AttackData` (the target's outputs on the audit points and, if it
declares it ``needs`` them, on population points, and the outputs of reference or shadow models
with their membership) and returns a membership score per audit point (higher = member). It never
trains a model: whoever runs it (``fairleak.audit``) trains what :attr:`Attack.needs` asks for, for
any target, with the target's own recipe. This is ML Privacy Meter's frame (every model a column
of one signals matrix with one membership matrix) with Opacus's registry of mechanisms.

Adding an attack: subclass :class:`Attack` (a frozen dataclass whose fields are its parameters),
give it a ``name`` and ``needs``, and decorate it with :func:`register_attack`. The audit config,
the CLI, results.json and the report find it by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import numpy as np
from scipy.special import softmax

from fairleak.attacks.defences import restrict_output
from fairleak.attacks.metrics import AttackMetrics, attack_metrics
from fairleak.errors import DataValidationError

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackData",
    "AttackResult",
    "AttackScores",
    "ModelOutputs",
    "Need",
    "default_attacks",
    "evaluate_attacks",
    "make_attack",
    "register_attack",
]

#: What an attack may need beyond the target's outputs on the audit points.
Need = Literal["population", "references", "shadows"]

#: Probabilities are floored here when a model gives exact 0 / 1 (trees, k-NN), so that every
#: score (log-loss, LiRA's logit, RMIA's ratio) stays finite.
PROBA_FLOOR = 1e-12


@dataclass(frozen=True)
class ModelOutputs:
    """Outputs of K models on N records: probabilities [K, N, C] and, when exact, logits."""

    proba: np.ndarray
    logits: np.ndarray | None = None

    @classmethod
    def from_logits(cls, logits: np.ndarray) -> ModelOutputs:
        z = np.asarray(logits, dtype=np.float64)
        return cls(softmax(z, axis=-1), z)

    @classmethod
    def from_proba(cls, proba: np.ndarray) -> ModelOutputs:
        """From probabilities (no logits known); rows are floored at :data:`PROBA_FLOOR` and
        renormalised, so a model with exact 0 / 1 probabilities scores finitely."""
        p = np.asarray(proba, dtype=np.float64)
        if p.ndim < 2 or not np.isfinite(p).all() or (p < 0).any():
            raise DataValidationError(
                f"Model probabilities must be finite and non-negative, shape [..., N, C]; got shape {p.shape}."
            )
        p = np.maximum(p, PROBA_FLOOR)
        return cls(p / p.sum(-1, keepdims=True))

    @property
    def n_models(self) -> int:
        return 1 if self.proba.ndim == 2 else int(self.proba.shape[0])

    def restricted(self, output: str) -> ModelOutputs:
        """What an API releasing only ``output`` (``full``, ``label_only``, ``top1``) shows."""
        if output == "full":
            return self
        return ModelOutputs.from_proba(restrict_output(self.proba, output))

    def rows(self, idx: np.ndarray | slice) -> ModelOutputs:
        """The outputs on a subset of the records (last-but-one axis)."""
        return ModelOutputs(
            self.proba[..., idx, :], None if self.logits is None else self.logits[..., idx, :]
        )

    def model(self, k: int) -> ModelOutputs:
        """Model k's outputs [N, C]."""
        return ModelOutputs(self.proba[k], None if self.logits is None else self.logits[k])


@dataclass(frozen=True)
class AttackData:
    """Everything an attack may use. ``target``: [N, C] outputs on the audit points with labels
    ``y``; ``target_population``: [M, C] on population points with ``y_population`` (points the
    target did not train on); ``references``: [K, N + M] outputs of reference models on the audit
    points then the population points, ``reference_in`` [K, N + M] which ones each trained on;
    ``shadows``: [S, M] shadow models' outputs on the population points, ``shadow_in`` [S, M]
    (rows outside every shadow model's pool are False for all of them)."""

    y: np.ndarray
    target: ModelOutputs
    y_population: np.ndarray | None = None
    target_population: ModelOutputs | None = None
    references: ModelOutputs | None = None
    reference_in: np.ndarray | None = None
    shadows: ModelOutputs | None = None
    shadow_in: np.ndarray | None = None
    seed: int = 0

    @property
    def n_audit(self) -> int:
        return len(self.y)

    def require(self, attack: str, needs: frozenset[str]) -> None:
        missing = [
            n
            for n, v in (
                ("population", self.target_population),
                ("references", self.references),
                ("shadows", self.shadows),
            )
            if n in needs and v is None
        ]
        if missing:
            raise DataValidationError(
                f"The attack '{attack}' needs {', '.join(missing)}, which were not provided."
            )


@dataclass(frozen=True)
class AttackScores:
    """Membership scores of the audit points (higher = member) and, for attacks that make a
    decision, how the decision threshold was chosen (never on the audit labels)."""

    scores: np.ndarray
    decision: dict[str, Any] | None = None
    predicted: np.ndarray | None = None  # bool member decisions, when the attack decides


@dataclass(frozen=True)
class Attack:
    """A membership-inference attack; its dataclass fields are its parameters."""

    name: ClassVar[str] = ""
    needs: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""

    def score(self, data: AttackData) -> AttackScores:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Registered attacks: name -> factory taking the attack's parameters as keywords.
ATTACKS: dict[str, Callable[..., Attack]] = {}
_DEFAULT: dict[str, tuple[int, int]] = {}  # name -> (rank, registration index)


def default_attacks() -> list[str]:
    """The attacks an audit runs by default, by rank (threshold, shadow, LiRA, RMIA, others)."""
    return sorted(_DEFAULT, key=_DEFAULT.__getitem__)


def register_attack(
    cls: type[Attack] | None = None,
    *,
    name: str | None = None,
    default: bool = True,
    rank: int = 100,
    **preset: Any,
):
    """Register an :class:`Attack` subclass (as a decorator, or called with ``name=`` and preset
    parameters to register a variant: ``register_attack(LiRA, name="lira_offline", mode="offline")``).
    ``default``: part of the audit's default attack list, ordered by ``rank``."""

    def add(c: type[Attack]) -> type[Attack]:
        key = name or c.name
        if not key:
            raise ValueError(f"{c.__name__} needs a name to be registered.")

        def factory(**params: Any) -> Attack:
            atk = c(**{**preset, **params})
            object.__setattr__(atk, "_registered_name", key)
            return atk

        factory.attack_class = c  # type: ignore[attr-defined]
        factory.needs = c.needs  # type: ignore[attr-defined]
        ATTACKS[key] = factory
        if default:
            _DEFAULT[key] = (rank, len(ATTACKS))
        return c

    return add if cls is None else add(cls)


def make_attack(name: str, **params: Any) -> Attack:
    """The registered attack ``name`` with ``params``; unknown names and parameters are clear errors."""
    if name not in ATTACKS:
        raise DataValidationError(f"Unknown attack '{name}'; registered: {sorted(ATTACKS)}.")
    try:
        return ATTACKS[name](**params)
    except TypeError as exc:
        known = [f.name for f in fields(ATTACKS[name].attack_class)]  # type: ignore[attr-defined]
        raise DataValidationError(
            f"Attack '{name}' takes the parameters {known}; got {sorted(params)} ({exc})."
        ) from None


def attack_name(attack: Attack) -> str:
    return getattr(attack, "_registered_name", attack.name)


@dataclass
class AttackResult:
    """Scores of one attack on the audit points and their metrics."""

    name: str
    scores: np.ndarray
    metrics: AttackMetrics
    decision: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, **self.metrics.to_dict()}
        if self.decision is not None:
            out["decision"] = self.decision
        if self.params:
            out["params"] = self.params
        return out


def evaluate_attacks(
    attacks: Mapping[str, Attack] | list[Attack],
    data: AttackData,
    is_member: np.ndarray,
    *,
    groups: Any = None,
    n_bootstrap: int = 200,
    random_state: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, AttackResult]:
    """Score the audit points with each attack and measure it (:func:`attack_metrics`, per group
    with ``groups``)."""
    items = list(attacks.items()) if isinstance(attacks, Mapping) else [(attack_name(a), a) for a in attacks]
    is_member = np.asarray(is_member, dtype=bool)
    if len(is_member) != data.n_audit:
        raise DataValidationError(
            f"is_member has {len(is_member)} entries for {data.n_audit} audit points."
        )
    out: dict[str, AttackResult] = {}
    for i, (name, atk) in enumerate(items):
        data.require(name, atk.needs)
        res = atk.score(data)
        metrics = attack_metrics(
            res.scores, is_member, groups=groups, n_bootstrap=n_bootstrap, random_state=random_state
        )
        decision = res.decision
        if res.predicted is not None:  # how the decision fares on the audit points
            pred = np.asarray(res.predicted, dtype=bool)
            decision = {**(decision or {}), "tpr_on_audit": float(pred[is_member].mean()),
                        "fpr_on_audit": float(pred[~is_member].mean())}  # fmt: skip
        out[name] = AttackResult(name, res.scores, metrics, decision, atk.params())
        if progress is not None:
            progress(i + 1, len(items))
    return out
