"""Extending fairleak from outside the package: a toy attack and a toy stage, registered once,
appear in the config, results.json and report.html without editing fairleak."""

from dataclasses import dataclass
from typing import Any, ClassVar

import jsonschema
import numpy as np
import pytest

from fairleak.attacks import ATTACKS, Attack, AttackData, AttackScores, register_attack
from fairleak.audit import (
    STAGES,
    Column,
    Stage,
    StageConfig,
    StageOutput,
    config_from_dict,
    register_stage,
    run_audit,
)
from fairleak.audit.blocks import Table, Text
from fairleak.audit.results import results_schema
from fairleak.errors import ConfigError
from fairleak.report import render_report

from .conftest import tiny_config


@dataclass(frozen=True)
class LabelAttack(Attack):
    """A toy: members are the positives (a known answer: its AUC is computable by hand)."""

    name: ClassVar[str] = "toy_label"
    bonus: float = 1.0

    def score(self, data: AttackData) -> AttackScores:
        return AttackScores(self.bonus * data.y.astype(float))


class ToySection(StageConfig):
    factor: float = 2.0


class ToyStage(Stage):
    name = "toy"
    title = "Toy stage (registered outside fairleak)"
    Config = ToySection
    columns = (Column("toy_mean", "toy mean"),)
    schema: ClassVar[dict[str, Any] | None] = {"type": "object", "required": ["mean_p1"]}

    def run_model(self, ctx, cfg, target):
        p1 = ctx.target_outputs(target.name, ctx.data.nonmembers).proba[:, 1]
        return StageOutput({"mean_p1": float(cfg.factor * p1.mean())})

    def summary(self, results, model):
        return {"toy_mean": results[model]["mean_p1"]} if model in results else {}

    def report(self, results, model):
        r = results[model]
        return [Text("the toy stage ran"), Table(["what", "value"], [["2 x mean P(y=1)", r["mean_p1"]]])]


@pytest.fixture
def registered():
    register_attack(LabelAttack)
    register_stage(ToyStage)
    yield
    ATTACKS.pop("toy_label", None)
    from fairleak.attacks import base

    base._DEFAULT.pop("toy_label", None)
    STAGES.pop("toy", None)


def test_toy_attack_and_stage_reach_results_and_report(registered):
    cfg = tiny_config()
    raw = cfg.to_dict()
    raw["models"] = raw["models"][:1]
    raw["attacks"]["names"] = ["threshold_loss", "toy_label"]
    raw["toy"] = {"factor": 3.0}
    cfg = config_from_dict(raw)
    res = run_audit(cfg)
    data = res.results
    jsonschema.validate(data, results_schema())
    toy = data["models"]["baseline"]["toy"]
    assert toy["mean_p1"] > 0 and data["summary"][0]["toy_mean"] == toy["mean_p1"]
    assert {"key": "toy_mean", "label": "toy mean", "stage": "toy", "digits": 3, "help": ""} in data["summary_columns"]
    atk = data["models"]["baseline"]["attacks"]["results"]["toy_label"]
    is_member = res.per_record.query("attack == 'toy_label'")
    # known answer: AUC of "score = label" against membership, computed by hand
    from sklearn.metrics import roc_auc_score

    truth = is_member["is_member"].astype(bool)
    assert atk["auc"] == pytest.approx(roc_auc_score(truth, is_member["score"]), abs=1e-6)
    page = render_report(data)
    assert "Toy stage (registered outside fairleak)" in page and "the toy stage ran" in page
    assert "toy_label" in page
    bad = {**raw, "toy": {"factor": "big"}}
    with pytest.raises(ConfigError, match=r"'toy\.factor'"):
        config_from_dict(bad)


def test_an_unregistered_stage_in_old_results_still_renders(registered):
    cfg = tiny_config()
    raw = cfg.to_dict()
    raw["models"] = raw["models"][:1]
    res = run_audit(config_from_dict({**raw, "attacks": {"names": ["threshold_loss"], "n_bootstrap": 0},
                                      "group_risk": {"enabled": False}, "fd_mia": {"enabled": False}}))  # fmt: skip
    STAGES.pop("toy")
    page = render_report(res.results)  # the report no longer knows "toy": shown as a plain table
    assert "mean_p1" in page
    assert np.isfinite(res.results["models"]["baseline"]["toy"]["mean_p1"])
