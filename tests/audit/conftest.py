import pytest

from fairleak.audit.config import AuditConfig, DPSpec, FairnessSpec, ModelSpec


def tiny_config(**data) -> AuditConfig:
    """A complete audit in a few seconds: every stage runs, on few rows and few models."""
    cfg = AuditConfig()
    cfg.split.max_audit = 600
    cfg.train.epochs = 5
    cfg.train.lr = 3e-3
    cfg.attacks.n_reference = 4
    cfg.attacks.n_shadow = 2
    cfg.attacks.n_bootstrap = 20
    cfg.group_risk.n_models = 8
    cfg.group_risk.max_records = None
    cfg.fairness.n_bootstrap = 20
    cfg.models = [
        ModelSpec(name="baseline"),
        ModelSpec(name="fair", fairness=FairnessSpec(weight=1.0)),
        ModelSpec(name="dpsgd_s", dp=DPSpec(target_epsilon=8.0, group_clipping=True)),
    ]
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


@pytest.fixture
def tiny():
    return tiny_config
