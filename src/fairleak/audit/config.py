"""Audit configuration: a YAML file validated with pydantic.

Unknown keys and wrong types are errors that name the key. The recipe sections are fairleak's one
hyperparameter model (``train`` is a :class:`~fairleak.train.TrainConfig`, ``models[].fairness`` a
:class:`~fairleak.train.FairnessConfig`, ``models[].dp`` a :class:`~fairleak.train.DPConfig`); every
audit stage adds its own section under its name (``attacks``, ``fd_mia``, ``group_risk``,
``fairness``, ...), declared by the stage (``fairleak.audit.stages``). Overrides are validated:
:func:`apply_overrides` goes through the same validation as a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fairleak.audit.verdict import VerdictSection
from fairleak.errors import ConfigError
from fairleak.train import DPConfig, FairnessConfig, TrainConfig
from fairleak.validation import allowed_values

__all__ = [
    "AuditConfig",
    "DataSection",
    "ModelSpec",
    "OversampleSection",
    "Section",
    "SplitSection",
    "apply_overrides",
    "config_from_dict",
    "default_config",
    "load_config",
]


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSection(Section):
    dataset: str = Field("adult", description="bundled dataset name or a CSV/Parquet path")
    label: str | None = None
    positive: str | None = None
    protected: list[str] = Field(default_factory=list, description="empty: the dataset's defaults")
    bins: dict[str, list[float]] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list, description="columns that are not features")
    include_protected: bool = False
    missing: Literal["drop", "impute"] = Field(
        "drop", description="rows with a missing feature value: drop them, or impute (fitted on the population rows)"
    )
    keep: list[str] = Field(default_factory=list, description="columns never dropped as ID-like or constant")
    auto_drop: bool = Field(True, description="drop ID-like and constant feature columns (with a note)")
    min_group_size: int = Field(10, ge=1)
    member_column: str | None = Field(
        None, description="a column marking the rows the audited model trained on (1/true/yes/train)"
    )
    train: str | None = Field(None, description="file of the rows the audited model trained on")
    holdout: str | None = Field(None, description="file of rows it never saw")
    population: str | None = Field(None, description="file of further rows it never saw (optional)")

    @model_validator(mode="after")
    def _files(self) -> DataSection:
        if (self.train is None) != (self.holdout is None):
            raise ValueError("'data.train' and 'data.holdout' go together: give both files")
        if self.population is not None and self.train is None:
            raise ValueError("'data.population' needs 'data.train' and 'data.holdout'")
        if self.member_column is not None and self.train is not None:
            raise ValueError("give either 'data.member_column' or 'data.train' / 'data.holdout'")
        return self

    @property
    def user_membership(self) -> bool:
        """The user says which rows a model trained on (a model they fitted themselves)."""
        return self.member_column is not None or self.train is not None


class SplitSection(Section):
    audit_fraction: float = Field(0.5, gt=0, lt=1)
    max_audit: int | None = Field(None, ge=4, description="cap on members + non-members")


class BackendSection(Section):
    """Where model sets train. The models (and so the results) are the same on every backend."""

    name: Literal["local", "ray"] = Field("local", description="local: this process; ray: shards of models as Ray tasks")
    address: str | None = Field(None, description="ray: an existing cluster ('auto', 'ray://head:10001'); none starts a local one")
    shards: int | None = Field(None, ge=1, description="ray: shards per model set (default: the cluster's CPUs)")


class OversampleSection(Section):
    """Train the model on its rows plus synthetic rows (``fairleak.synth.FairOversampler``):
    cells are (intersection of every protected attribute, class) of each model's own training
    rows, so reference and shadow models are oversampled the same way as the target."""

    strategy: Literal["class", "protected", "class_protected", "same_class"] = "class_protected"
    generator: Literal["smote", "cart", "vae"] = "smote"
    k_neighbors: int = Field(5, ge=1, description="SMOTE-NC neighbours")
    min_samples_leaf: int = Field(5, ge=1, description="CART leaf size")


class ModelSpec(Section):
    """One audited model: fairleak's recipe (``train`` / ``fairness`` / ``dp``), a scikit-learn
    estimator the audit fits on the members (``estimator`` + ``params``), a model the user fitted
    (``file``), or only its predictions (``predictions``: a file or a column of the data)."""

    name: str = Field(min_length=1, max_length=64)
    train: dict[str, Any] | None = Field(
        None, description="changes to the top-level train section for this model (e.g. {lr: 0.01})"
    )
    fairness: FairnessConfig | None = None
    dp: DPConfig | None = None
    estimator: str | None = Field(None, description="e.g. sklearn.ensemble.HistGradientBoostingClassifier")
    params: dict[str, Any] = Field(default_factory=dict)
    preprocess: Literal["auto", "none"] = Field(
        "auto", description="auto: fairleak's one-hot / standardising preprocessor in front"
    )
    file: str | None = Field(None, description="a fitted model (.skops; a pickle with trust_pickle)")
    trust_pickle: bool = False
    trusted_types: list[str] = Field(default_factory=list, description="extra types skops may load")
    predictions: str | None = Field(None, description="file or column of predicted P(positive)")
    reference_estimator: str | None = Field(
        None, description="train reference models with this estimator instead (warned)"
    )
    reference_params: dict[str, Any] = Field(default_factory=dict)
    oversample: OversampleSection | None = Field(
        None, description="train on the members plus synthetic rows (fairleak recipe or estimator only)"
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not all(c.isalnum() or c in "_-." for c in v):
            raise ValueError("use letters, digits, '_', '-' or '.'")
        return v

    @field_validator("train", mode="before")
    @classmethod
    def _train_keys(cls, v: Any) -> dict[str, Any] | None:
        if isinstance(v, TrainConfig):  # a whole recipe: every key set
            return v.to_dict()
        if v is None or not isinstance(v, dict):
            return v
        try:
            checked = TrainConfig.model_validate(v)
        except ValidationError as exc:
            raise ValueError("; ".join(_format_errors(exc, "", prefix="train.")) or str(exc)) from None
        return {k: checked.to_dict()[k] for k in v}

    def train_config(self, top: TrainConfig) -> TrainConfig:
        """This model's recipe: the top-level ``train`` section with this model's changes."""
        return top if not self.train else TrainConfig(**{**top.model_dump(), **self.train})

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        kinds = [
            k for k, on in (
                ("estimator", self.estimator is not None), ("file", self.file is not None),
                ("predictions", self.predictions is not None),
                ("fairleak recipe (train / fairness / dp)",
                 any(v is not None for v in (self.train, self.fairness, self.dp))),
            ) if on
        ]  # fmt: skip
        if len(kinds) > 1:
            raise ValueError(f"model '{self.name}' mixes {' and '.join(kinds)}: give one kind of model")
        if self.oversample is not None:
            if self.file is not None or self.predictions is not None:
                raise ValueError(
                    f"model '{self.name}': 'oversample' applies to models the audit trains (a fairleak "
                    "recipe or an estimator), not to a fitted model or predictions"
                )
            if self.dp is not None:
                raise ValueError(
                    f"model '{self.name}': 'oversample' with 'dp' is refused: synthetic rows are made "
                    "from the members, so the model's DP accounting would not cover them"
                )
        return self

    @property
    def kind(self) -> Literal["fairleak", "sklearn", "fitted", "predictions"]:
        if self.estimator is not None:
            return "sklearn"
        if self.file is not None:
            return "fitted"
        if self.predictions is not None:
            return "predictions"
        return "fairleak"


#: The default fair models' penalty weight: at 1.0 the demographic-parity penalty's easiest
#: optimum on Adult and COMPAS was to predict the majority class for (nearly) everyone.
FAIR_WEIGHT = 0.5
#: The default DP models' changes to the train section: DP-SGD's clipped, noisy gradients need a
#: larger step than the non-private models' (at 1e-3 they stayed at the majority class on German).
#: Models with public pretraining (``public_pretraining``) fine-tune at the train section's step.
DP_TRAIN: dict[str, Any] = {"lr": 1e-2}


def _default_models() -> list[ModelSpec]:
    return [
        ModelSpec(name="baseline"),
        ModelSpec(name="fair", fairness=FairnessConfig(penalty="demographic_parity", weight=FAIR_WEIGHT)),
        ModelSpec(name="dp_eps1", dp=DPConfig(target_epsilon=1.0), train=dict(DP_TRAIN)),
        ModelSpec(name="dp_eps8", dp=DPConfig(target_epsilon=8.0), train=dict(DP_TRAIN)),
        ModelSpec(name="dpsgd_s_eps8", dp=DPConfig(target_epsilon=8.0, group_clipping=True),
                  train=dict(DP_TRAIN)),
        ModelSpec(
            name="fair_dp_eps8",
            fairness=FairnessConfig(weight=FAIR_WEIGHT),
            dp=DPConfig(target_epsilon=8.0),
            train=dict(DP_TRAIN),
        ),
    ]


def _stage_sections() -> dict[str, BaseModel]:
    from fairleak.audit.stages import STAGES

    return {name: st.Config() for name, st in STAGES.items()}


class AuditConfig(Section):
    """Everything an audit does; every field has a default (``fairleak audit`` needs none).

    Stage sections are reachable as attributes (``cfg.attacks``) and live in ``stages``.
    """

    seed: int = 0
    data: DataSection = Field(default_factory=DataSection)
    split: SplitSection = Field(default_factory=SplitSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    models: list[ModelSpec] = Field(default_factory=_default_models)
    min_batches_per_epoch: int | None = Field(
        8, ge=1,
        description="fairleak's recipes use a smaller batch when the training rows would give fewer "
        "batches an epoch than this (small data: German Credit); null: always train.batch_size",
    )
    min_steps: int | None = Field(
        400, ge=1,
        description="fairleak's recipes train more epochs when train.epochs would give fewer optimiser "
        "steps than this (small data: German Credit, COMPAS); null: always train.epochs",
    )
    public_pretraining: float | None = Field(
        2500, gt=0,
        description="fairleak's DP recipes whose training rows x target epsilon is below this start "
        "from a model trained without privacy on the population rows (public, like the encoding) and "
        "fine-tune it with DP-SGD at the train section's step size (small data: German Credit); "
        "epsilon covers the training rows, not the population; null: never",
    )
    verdict: VerdictSection = Field(default_factory=VerdictSection)
    stages: dict[str, Any] = Field(default_factory=_stage_sections)
    backend: BackendSection = Field(default_factory=BackendSection)

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, v: dict[str, Any]) -> dict[str, Any]:
        from fairleak.audit.stages import STAGES

        out = _stage_sections()
        for name, section in v.items():
            if name not in STAGES:
                raise ValueError(f"unknown stage '{name}'; registered: {sorted(STAGES)}")
            out[name] = STAGES[name].Config.model_validate(section)
        return out

    @model_validator(mode="after")
    def _references(self) -> AuditConfig:
        names = [m.name for m in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"models: duplicate name(s) {dup}")
        fitted = [m.name for m in self.models if m.kind in ("fitted", "predictions")]
        if fitted and not self.data.user_membership:
            raise ValueError(
                f"model(s) {fitted} were fitted outside the audit: say which rows they trained on "
                "with data.member_column or data.train / data.holdout (--member-column, --train / --holdout)"
            )
        from fairleak.audit.stages import STAGES

        for name, section in self.stages.items():
            STAGES[name].check_config(section, self)
        return self

    def __getattr__(self, name: str) -> Any:
        stages = self.__dict__.get("stages")
        if stages is not None and name in stages:
            return stages[name]
        return super().__getattr__(name)  # type: ignore[misc]

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The config as a YAML file would hold it (stage sections at the top level)."""
        out = self.model_dump(mode="json", exclude={"stages"})
        for name, section in self.stages.items():
            out[name] = section.model_dump(mode="json")
        return out


def default_config(*, fast: bool = False) -> AuditConfig:
    """The configuration ``fairleak audit`` uses; ``fast`` shrinks it to a complete smoke test."""
    if not fast:
        return AuditConfig()
    return config_from_dict({
        "split": {"max_audit": 2000},
        "min_steps": None,  # a smoke test: its own epochs and learning rate (below) suffice
        "train": {"epochs": 20, "lr": 3e-3},
        "models": [m.model_dump(exclude_defaults=True) for m in _default_models()
                   if m.name in ("baseline", "fair", "dp_eps8", "dpsgd_s_eps8")],
        "attacks": {"n_reference": 8, "n_shadow": 2, "n_bootstrap": 50},
        "group_risk": {"n_models": 16, "max_records": None},
        "fairness": {"n_bootstrap": 100},
    }, source="(fast defaults)")  # fmt: skip


def _format_errors(exc: ValidationError, source: str, prefix: str = "") -> list[str]:
    lines = []
    for e in exc.errors():
        loc = prefix + ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc or '(top level)'}'")
            continue
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"'{loc}': {msg}{shown}" if loc else f"{msg}")
    return lines


def _section_hint(raw: dict[str, Any]) -> None:
    """Refuse unknown top-level keys before validation, naming them (stage sections included)."""
    from fairleak.audit.stages import STAGES

    known = set(AuditConfig.model_fields) - {"stages"} | set(STAGES) | {"target"}
    bad = [k for k in raw if k not in known]
    if bad:
        raise ConfigError("; ".join(f"unknown key '{k}'" for k in bad) + f" (known: {sorted(known)})")


def config_from_dict(raw: Any, *, source: str = "") -> AuditConfig:
    """Validate a config given as a mapping (a parsed YAML file)."""
    from fairleak.audit.stages import STAGES

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"Invalid config {source}: the top level must be a mapping of keys to values."
        )
    try:
        _section_hint(raw)
    except ConfigError as exc:
        raise ConfigError(f"Invalid config {source}: {exc}. See docs/CONFIG.md for every key.") from None
    if "target" in raw:  # shorthand for a single audited model
        if "models" in raw:
            raise ConfigError(f"Invalid config {source}: give either 'target' or 'models', not both.")
        target = raw["target"]
        if not isinstance(target, dict):
            raise ConfigError(f"Invalid config {source}: 'target' must be a mapping (estimator:, params:, ...).")
        raw = {**{k: v for k, v in raw.items() if k != "target"},
               "models": [{"name": "target", **target}]}  # fmt: skip
    core = {k: v for k, v in raw.items() if k not in STAGES}
    problems: list[str] = []
    stages = {}
    for name in STAGES:
        if name in raw:
            try:
                stages[name] = STAGES[name].Config.model_validate(raw[name] or {})
            except ValidationError as exc:
                problems += _format_errors(exc, source, prefix=f"{name}.")
    if problems:
        raise ConfigError(f"Invalid config {source}: " + "; ".join(problems) + ". See docs/CONFIG.md for every key.")
    try:
        return AuditConfig.model_validate({**core, "stages": stages})
    except ValidationError as exc:
        raise ConfigError(
            f"Invalid config {source}: " + "; ".join(_format_errors(exc, source)) + ". See docs/CONFIG.md for every key."
        ) from None


def apply_overrides(cfg: AuditConfig, overrides: dict[str, Any], *, source: str = "(command line)") -> AuditConfig:
    """A new config with dotted-key ``overrides`` (``{"data.dataset": "compas", "seed": 1}``)
    applied and the whole validated again."""
    raw = cfg.to_dict()
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = raw
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return config_from_dict(raw, source=source)


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


def describe_field(model: type[BaseModel], name: str) -> str:
    """What a config key accepts, in words (for docs and messages)."""
    return allowed_values(model.model_fields[name])
