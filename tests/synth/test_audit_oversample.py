"""The audit's oversample option: target, references and shadows train on oversampled rows."""

import json

import jsonschema
import pytest

from fairleak.audit.config import ModelSpec, OversampleSection, config_from_dict
from fairleak.audit.pipeline import run_audit
from fairleak.audit.results import results_schema, write_outputs
from fairleak.errors import ConfigError
from tests.audit.conftest import tiny_config


def test_audit_trains_on_oversampled_members(tmp_path):
    cfg = tiny_config()
    cfg.attacks.n_reference = 2
    cfg.models = [
        ModelSpec(name="baseline"),
        ModelSpec(name="over", train=cfg.train, oversample=OversampleSection(strategy="class", generator="cart")),
    ]
    res = run_audit(cfg, out_dir=tmp_path)
    data = json.loads(write_outputs(res, tmp_path)["results"].read_text())
    jsonschema.validate(data, results_schema())
    models = res.results["models"]
    assert set(models) == {"baseline", "over"}
    notes = models["over"]["notes"]
    assert any("synthetic rows" in n for n in notes)
    assert any("added to the members" in n for n in notes)
    assert models["over"]["recipe"]["oversample"]["generator"] == "cart"
    assert not any("synthetic" in n for n in models["baseline"]["notes"])
    # attacks ran on it (reference models trained with the same oversampling recipe)
    assert models["over"]["attacks"]["results"]["lira_online"]
    assert models["over"]["attacks"]["reference_models"]

def test_oversample_refuses_dp_and_fitted_models():
    with pytest.raises(ConfigError, match="DP accounting"):
        config_from_dict({"models": [{"name": "m", "dp": {"target_epsilon": 1}, "oversample": {}}]})
    with pytest.raises(ConfigError, match="strategy"):
        config_from_dict({"models": [{"name": "m", "oversample": {"strategy": "more"}}]})
