import pytest

from fairleak.audit.config import AuditConfig, ModelSpec
from fairleak.train import DPConfig, FairnessConfig


def tiny_config(**data) -> AuditConfig:
    """A complete audit in a few seconds: every stage runs, on few rows and few models."""
    cfg = AuditConfig()
    cfg.split.max_audit = 600
    cfg.train = cfg.train.model_copy(update={"epochs": 5, "lr": 3e-3})
    cfg.min_steps = None  # a smoke test's few epochs, as with --fast
    cfg.attacks.n_reference = 4
    cfg.attacks.n_shadow = 2
    cfg.attacks.n_bootstrap = 20
    cfg.group_risk.n_models = 8
    cfg.group_risk.max_records = None
    cfg.fairness.n_bootstrap = 20
    cfg.models = [
        ModelSpec(name="baseline"),
        ModelSpec(name="fair", fairness=FairnessConfig(weight=1.0)),
        ModelSpec(name="dpsgd_s", dp=DPConfig(target_epsilon=8.0, group_clipping=True)),
    ]
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


@pytest.fixture
def tiny():
    return tiny_config
