"""What an audit stage is, and the registry the pipeline, the config, results.json, the CLI's
summary and the report all read.

A stage declares, in one class: its config section (``Config``, a pydantic model, under the key
``name``), what it runs (per audited model, or once per audit), the summary columns it adds
(:class:`Column`, defined once: the CLI table and the report's summary both show them) and its
report section (plain :mod:`~fairleak.audit.blocks` built from its results). Registering it with
:func:`register_stage` is all it takes to run in ``fairleak audit``, in Python and in the study.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fairleak.attacks import ModelOutputs
from fairleak.audit.bank import ModelBank, ModelSet, Progress
from fairleak.audit.blocks import Block
from fairleak.audit.recipes import Recipe
from fairleak.audit.seeds import named_seed

if TYPE_CHECKING:
    from fairleak.audit.config import AuditConfig
    from fairleak.audit.data import AuditData
    from fairleak.audit.target import AuditTarget

__all__ = [
    "STAGES",
    "AuditContext",
    "Column",
    "Stage",
    "StageConfig",
    "StageOutput",
    "check_model_names",
    "register_stage",
]


class StageConfig(BaseModel):
    """A stage's config section; ``enabled: false`` skips the stage."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    enabled: bool = True


@dataclass(frozen=True)
class Column:
    """A summary column: ``key`` in each summary row, ``label`` for people, how to show it."""

    key: str
    label: str
    digits: int = 3
    help: str = ""


@dataclass
class StageOutput:
    """What a stage produced: ``results`` (JSON-able; per-model stages: ``{model: result}``),
    ``tables`` (rows for the Parquet files, by file name) and ``notes`` for the audit."""

    results: dict[str, Any]
    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class AuditContext:
    """What a stage can use: the config, the data and its split, the audited models with their
    outputs on every row, the model bank, named seeds, progress, and earlier stages' results."""

    config: AuditConfig
    data: AuditData
    bank: ModelBank
    targets: dict[str, AuditTarget]
    results: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    #: earlier stages' Parquet rows by table name (e.g. ``per_record`` attack scores)
    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)

    def seed(self, *names: str | int) -> int:
        """The seed of the named stream (see :func:`~fairleak.audit.seeds.named_seed`)."""
        return named_seed(self.config.seed, *names)

    def tick(self, task: str, done: int, total: int, unit: str = "steps") -> None:
        if self.progress is not None:
            self.progress(task, done, total, unit)

    def ticker(self, task: str, unit: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        return lambda d, t: self.tick(task, d, t, unit)

    def target_outputs(self, name: str, rows: np.ndarray) -> ModelOutputs:
        """Target ``name``'s outputs [N, C] on the given data rows."""
        out = self.targets[name].outputs
        assert out is not None
        return out.model(0).rows(rows)

    def train(
        self, recipe: Recipe, *, rows: np.ndarray, masks: np.ndarray, seed: int,
        eval_rows: np.ndarray, task: str, seeds: list[int] | None = None,
    ) -> ModelSet:  # fmt: skip
        return self.bank.train(
            recipe, rows=rows, masks=masks, seed=seed, eval_rows=eval_rows, task=task, seeds=seeds
        )


class Stage:
    """Base class of audit stages. Subclasses set ``name``, ``title``, ``scope``, ``Config``,
    ``columns`` and implement :meth:`run_model` (``scope="model"``) or :meth:`run` (``"audit"``)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    scope: ClassVar[Literal["model", "audit"]] = "model"
    order: ClassVar[int] = 100  # stages run in this order
    Config: ClassVar[type[StageConfig]] = StageConfig
    columns: ClassVar[tuple[Column, ...]] = ()
    glossary: ClassVar[dict[str, str]] = {}
    #: JSON Schema of the stage's results (per model, or of its top-level section), using the
    #: shared ``#/$defs`` of results.schema.json (``attack``, ``gap``, ``num``, ``interval``).
    schema: ClassVar[dict[str, Any] | None] = None

    # ---- running
    def run(self, ctx: AuditContext, cfg: Any) -> StageOutput:
        """Per-model stages: :meth:`run_model` for every audited model (None: not applicable)."""
        results, tables, notes = {}, {}, []
        task = f"{self.title} (models done)"
        ctx.tick(task, 0, len(ctx.targets), "models")
        for i, (name, target) in enumerate(ctx.targets.items()):
            out = self.run_model(ctx, cfg, target)
            ctx.tick(task, i + 1, len(ctx.targets), "models")
            if out is None:
                continue
            results[name] = out.results
            for k, v in out.tables.items():
                tables.setdefault(k, []).extend(v)
            notes += out.notes
        return StageOutput(results, tables, notes)

    def run_model(self, ctx: AuditContext, cfg: Any, target: AuditTarget) -> StageOutput | None:
        raise NotImplementedError

    @classmethod
    def json_schema(cls) -> dict[str, Any] | None:
        """The schema of the stage's results (default: :attr:`schema`)."""
        return cls.schema

    @classmethod
    def check_config(cls, cfg: Any, audit: AuditConfig) -> None:
        """Cross-checks of the stage's section against the whole config (raise ValueError)."""

    @classmethod
    def check_data(cls, cfg: Any, data: AuditData) -> None:
        """Cross-checks against the loaded data, before any model trains (raise a
        :class:`~fairleak.errors.FairleakError` naming the problem)."""

    # ---- presenting
    def summary(self, results: Mapping[str, Any], model: str) -> dict[str, Any]:
        """Values of :attr:`columns` for ``model`` (``results``: this stage's results)."""
        return {}

    def report(self, results: Mapping[str, Any], model: str | None) -> list[Block]:
        """The report section: for ``model`` (per-model stages) or for the audit (``None``)."""
        return []


def check_model_names(names: list[str], audit: AuditConfig, key: str) -> None:
    """Config check: every name in ``names`` is an audited model (raise ValueError naming ``key``)."""
    known = [m.name for m in audit.models]
    for n in names:
        if n not in known:
            raise ValueError(f"{key}: no model named '{n}' (models: {known})")


#: Registered stages by name, in running order.
STAGES: dict[str, Stage] = {}


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Add a stage to every audit (its section appears in the config under ``cls.name``)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name to be registered.")
    STAGES[cls.name] = cls()
    ordered = sorted(STAGES.items(), key=lambda kv: kv[1].order)
    STAGES.clear()
    STAGES.update(ordered)
    return cls
