"""Audit configuration: a YAML file validated with pydantic (unknown keys and wrong types are errors
that name the key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fairleak.errors import ConfigError

__all__ = ["AuditConfig", "default_config", "load_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Strict):
    dataset: str = Field("adult", description="bundled dataset name or a CSV/Parquet path")
    label: str | None = None
    positive: str | None = None
    protected: list[str] = Field(default_factory=list, description="empty: the dataset's defaults")
    bins: dict[str, list[float]] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)
    include_protected: bool = False
    min_group_size: int = Field(10, ge=1)


class SplitSection(_Strict):
    audit_fraction: float = Field(0.5, gt=0, lt=1)
    max_audit: int | None = Field(None, ge=4, description="cap on members + non-members")


class TrainSection(_Strict):
    hidden: list[int] = Field(default_factory=lambda: [64])
    activation: Literal["relu", "tanh", "sigmoid", "elu", "square"] = "relu"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(256, ge=1)
    weight_decay: float = Field(0.0, ge=0)


class FairnessSpec(_Strict):
    penalty: Literal["l2_softmax", "demographic_parity", "equalized_odds"] = "demographic_parity"
    weight: float = Field(1.0, ge=0)
    reduce: Literal["sum", "max"] = "sum"
    attributes: list[str] = Field(
        default_factory=list, description="empty: all protected attributes"
    )


class DPSpec(_Strict):
    target_epsilon: float = Field(gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    accountant: Literal["rdp", "prv"] = "rdp"
    group_clipping: bool = False
    tau: float = Field(2.0, ge=1)
    norm_noise_multiplier: float = Field(10.0, gt=0)
    group_attribute: str | None = Field(
        None, description="DP-SGD-S groups; default: first protected attribute"
    )


class ModelSpec(_Strict):
    name: str = Field(min_length=1, max_length=64)
    fairness: FairnessSpec | None = None
    dp: DPSpec | None = None
    train: TrainSection | None = Field(None, description="overrides the top-level train section")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not all(c.isalnum() or c in "_-." for c in v):
            raise ValueError("use letters, digits, '_', '-' or '.'")
        return v


class AttackSection(_Strict):
    names: list[str] = Field(
        default_factory=lambda: [
            "threshold_loss", "threshold_confidence", "threshold_modified_entropy", "threshold_correctness",
            "shadow", "lira_online", "lira_online_fixed_variance", "lira_offline", "rmia_online", "rmia_offline",
        ]
    )  # fmt: skip
    n_reference: int = Field(16, ge=2, description="even: reference models in complementary pairs")
    n_shadow: int = Field(4, ge=2)
    n_bootstrap: int = Field(200, ge=0)
    output: Literal["full", "label_only", "top1"] = "full"
    rmia_gamma: float = Field(1.0, gt=0)
    rmia_offline_a: float = Field(0.3, ge=0, le=1)

    @field_validator("n_reference", "n_shadow")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (models come in complementary pairs)")
        return v

    @field_validator("names")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from fairleak.attacks import ALL_ATTACKS

        bad = [a for a in v if a not in ALL_ATTACKS]
        if bad:
            raise ValueError(f"unknown attack(s) {bad}; choose from {list(ALL_ATTACKS)}")
        return v


class FDMIASection(_Strict):
    enabled: bool = True
    pairs: list[tuple[str, str]] = Field(
        default_factory=lambda: [("baseline", "fair")],
        description="(biased model, fair model) names",
    )


class GroupRiskSection(_Strict):
    enabled: bool = True
    n_models: int = Field(32, ge=4, description="R of the PA-ALOOA game (400 in the paper)")
    models: list[str] | None = Field(
        None,
        description="models whose recipe plays the game; null: the plain model and every DP model at the largest epsilon",
    )
    max_records: int | None = Field(
        8000,
        ge=10,
        description="audit a random subset of this size (m-audited-records variant); null: all",
    )
    min_group_size: int = Field(
        30, ge=1, description="groups with fewer audited records are marked too small, not in GPRP"
    )

    @field_validator("n_models")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (models come in complementary pairs)")
        return v


class FairnessSection(_Strict):
    min_group_size: int = Field(30, ge=1)
    n_bootstrap: int = Field(500, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)


def _default_models() -> list[ModelSpec]:
    return [
        ModelSpec(name="baseline"),
        ModelSpec(name="fair", fairness=FairnessSpec(penalty="demographic_parity", weight=1.0)),
        ModelSpec(name="dp_eps1", dp=DPSpec(target_epsilon=1.0)),
        ModelSpec(name="dp_eps8", dp=DPSpec(target_epsilon=8.0)),
        ModelSpec(name="dpsgd_s_eps8", dp=DPSpec(target_epsilon=8.0, group_clipping=True)),
        ModelSpec(
            name="fair_dp_eps8", fairness=FairnessSpec(weight=1.0), dp=DPSpec(target_epsilon=8.0)
        ),
    ]


class AuditConfig(_Strict):
    """Everything an audit does; every field has a default (``fairleak audit`` needs none)."""

    seed: int = 0
    data: DataSection = Field(default_factory=DataSection)
    split: SplitSection = Field(default_factory=SplitSection)
    train: TrainSection = Field(default_factory=TrainSection)
    models: list[ModelSpec] = Field(default_factory=_default_models, min_length=1)
    attacks: AttackSection = Field(default_factory=AttackSection)
    fd_mia: FDMIASection = Field(default_factory=FDMIASection)
    group_risk: GroupRiskSection = Field(default_factory=GroupRiskSection)
    fairness: FairnessSection = Field(default_factory=FairnessSection)

    @model_validator(mode="after")
    def _references(self) -> AuditConfig:
        names = [m.name for m in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"models: duplicate name(s) {dup}")
        known = set(names)
        if self.fd_mia.enabled:
            for b, f in self.fd_mia.pairs or []:
                for n in (b, f):
                    if n not in known:
                        raise ValueError(f"fd_mia.pairs: no model named '{n}' (models: {names})")
        if self.group_risk.enabled:
            for n in self.group_risk.models or []:
                if n not in known:
                    raise ValueError(f"group_risk.models: no model named '{n}' (models: {names})")
        return self

    def fd_mia_pairs(self) -> list[tuple[str, str]]:
        """The (biased, fair) pairs FD-MIA attacks, explicit or derived from the models."""
        if not self.fd_mia.enabled:
            return []
        if self.fd_mia.pairs is not None:
            return [tuple(p) for p in self.fd_mia.pairs]
        plain = [m.name for m in self.models if m.fairness is None and m.dp is None]
        fair = [m.name for m in self.models if m.fairness is not None and m.dp is None]
        return [(plain[0], f) for f in fair] if plain else []

    def group_risk_models(self) -> list[str]:
        """Models whose recipe plays the PA-ALOOA game, explicit or derived from the models."""
        if not self.group_risk.enabled:
            return []
        if self.group_risk.models is not None:
            return list(self.group_risk.models)
        plain = [m.name for m in self.models if m.fairness is None and m.dp is None][:1]
        dp = [m for m in self.models if m.dp is not None and m.fairness is None]
        if dp:
            top = max(m.dp.target_epsilon for m in dp)
            plain += [m.name for m in dp if m.dp.target_epsilon == top]
        return plain


def default_config(*, fast: bool = False) -> AuditConfig:
    """The configuration ``fairleak audit`` uses; ``fast`` shrinks it to a complete smoke test."""
    cfg = AuditConfig()
    if fast:
        cfg.split.max_audit = 2000
        cfg.train.epochs = 20
        cfg.train.lr = 3e-3
        cfg.attacks.n_reference = 8
        cfg.attacks.n_shadow = 2
        cfg.attacks.n_bootstrap = 50
        cfg.group_risk.n_models = 16
        cfg.group_risk.max_records = None
        cfg.fairness.n_bootstrap = 100
        cfg.models = [
            m for m in cfg.models if m.name in ("baseline", "fair", "dp_eps8", "dpsgd_s_eps8")
        ]
    return cfg


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}'")
        else:
            got = e.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            lines.append(f"'{loc}': {e['msg']}{shown}")
    return f"Invalid config {source}: " + "; ".join(lines) + ". See docs/CONFIG.md for every key."


def config_from_dict(raw: Any, *, source: str = "") -> AuditConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"Invalid config {source}: the top level must be a mapping of keys to values."
        )
    try:
        return AuditConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | Path) -> AuditConfig:
    """Read and validate a YAML config (``yaml.safe_load``: no code in configs)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"The config file '{p}' does not exist.")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"The config file '{p}' is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None
    return config_from_dict(raw, source=f"'{p.name}'")
