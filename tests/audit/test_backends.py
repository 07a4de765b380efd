"""Backends: a model set trained in shards (on Ray, or any split) gives the models trained here.

Every model's sampling, noise and initialisation come from its own seed streams, so the split
cannot change a bit of any output. The Ray tests start a local Ray with 2 CPUs (skipped, with the
reason, when Ray is not installed: ``pip install 'fairleak[ray]'``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from fairleak.audit import run_audit
from fairleak.audit.backends import LocalBackend, make_backend, merge_privacy, shard_bounds
from fairleak.audit.bank import ModelBank
from fairleak.audit.cache import StageCache
from fairleak.audit.config import apply_overrides
from fairleak.audit.recipes import FairleakRecipe, Inputs, SklearnRecipe
from fairleak.data.synthetic import make_synthetic
from fairleak.errors import ParameterError
from fairleak.train import DPConfig, TrainConfig

from .conftest import tiny_config


def test_shard_bounds_cover_every_model_once_in_order():
    for K in (1, 2, 5, 64):
        for n in (1, 2, 3, 7, 100):
            b = shard_bounds(K, n)
            assert b[0][0] == 0 and b[-1][1] == K and len(b) == min(n, K)
            assert all(x[1] == y[0] for x, y in itertools.pairwise(b))


def test_merge_privacy_concatenates_per_model_lists_only():
    a = {"epsilon": [1.0, 2.0], "delta": 1e-5, "mechanism": {"noise": "x"}, "noise_multiplier": [0.5, 0.6]}
    b = {"epsilon": [3.0], "delta": 1e-5, "mechanism": {"noise": "x"}, "noise_multiplier": [0.7]}
    m = merge_privacy([a, b], [2, 1])
    assert m == {"epsilon": [1.0, 2.0, 3.0], "delta": 1e-5, "mechanism": {"noise": "x"},
                 "noise_multiplier": [0.5, 0.6, 0.7]}  # fmt: skip


def test_unknown_backend_and_stray_address_are_refused():
    with pytest.raises(ParameterError, match="choose 'local' or 'ray'"):
        make_backend("spark")
    with pytest.raises(ParameterError, match="--backend ray"):
        make_backend("local", address="auto")
    with pytest.raises(Exception, match="backend"):
        apply_overrides(tiny_config(), {"backend.name": "dask"})


def _inputs(n: int = 300) -> Inputs:
    ds = make_synthetic(n, n_features=5, seed=3)
    X = ds.features.to_numpy(np.float32)
    return Inputs(ds.features, ds.y, ds.sensitive, make_matrix=lambda: X)


def _bank(inputs: Inputs, backend=None) -> ModelBank:
    return ModelBank(inputs, "synthetic", StageCache(".", read=False, write=False), backend=backend)


RECIPES = {
    "dp_sgd": FairleakRecipe(train=TrainConfig(hidden=(8,), epochs=3, batch_size=64),
                             dp=DPConfig(target_epsilon=4.0, noise="reproducible")),
    "tree": SklearnRecipe(DecisionTreeClassifier(max_depth=4), "frame"),
    "logistic": SklearnRecipe(LogisticRegression(max_iter=200), "frame"),
}


@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'fairleak[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield make_backend("ray", shards=3)
    finally:
        ray.shutdown()


@pytest.mark.parametrize("name", list(RECIPES))
def test_ray_shards_give_the_local_models_bit_for_bit(ray_backend, name):
    inputs = _inputs()
    rng = np.random.default_rng(0)
    rows = np.arange(200)
    masks = rng.random((5, len(rows))) < 0.5
    kw = dict(rows=rows, masks=masks, seed=11, eval_rows=np.arange(300), task="t")
    local = _bank(inputs, LocalBackend()).train(RECIPES[name], **kw)
    sharded = _bank(inputs, ray_backend).train(RECIPES[name], **kw)
    np.testing.assert_array_equal(sharded.outputs.proba, local.outputs.proba)
    if local.outputs.logits is not None:
        np.testing.assert_array_equal(sharded.outputs.logits, local.outputs.logits)
    np.testing.assert_array_equal(sharded.trained_on, local.trained_on)
    assert sharded.privacy == local.privacy
    if name == "dp_sgd":
        assert len(sharded.privacy["epsilon"]) == 5


def test_a_whole_audit_on_ray_equals_the_local_one(ray_backend, tmp_path):
    cfg = tiny_config()
    cfg.models = cfg.models[:1] + cfg.models[2:]  # baseline and DP-SGD-S
    local = run_audit(cfg, out_dir=tmp_path / "local", use_cache=False)
    on_ray = run_audit(apply_overrides(cfg, {"backend.name": "ray", "backend.shards": 2}),
                       out_dir=tmp_path / "ray", use_cache=False)  # fmt: skip
    assert on_ray.results["models"] == local.results["models"]
    assert on_ray.results["fd_mia"] == local.results["fd_mia"]
