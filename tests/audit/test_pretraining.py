"""Public pretraining of small-data DP recipes: when it applies, what it trains on, what the
model's notes and privacy description say."""

import numpy as np
import pytest

from fairleak.audit import apply_overrides, default_config
from fairleak.audit.data import prepare_data
from fairleak.audit.pipeline import build_targets
from fairleak.audit.recipes import FairleakRecipe, Inputs
from fairleak.audit.stages.dp_audit import flipped_view
from fairleak.data import make_synthetic
from fairleak.errors import DataValidationError
from fairleak.train import DPConfig, FairnessConfig, TrainConfig


def _targets(dataset, **over):
    cfg = apply_overrides(default_config(), {"data.dataset": dataset, **over})
    data = prepare_data(cfg)
    return cfg, data, build_targets(cfg, data)


def test_dp_recipes_on_few_rows_x_epsilon_pretrain_on_the_population():
    cfg, data, targets = _targets("german")  # 250 members: 250 x epsilon 1 or 8 is below 2500
    for name, t in targets.items():
        spec = cfg.model(name)
        if spec.dp is None:
            assert t.recipe.pretrain is None
            continue
        assert t.recipe.pretrain is not None, name
        assert t.recipe.train.lr == t.recipe.pretrain.lr == cfg.train.lr  # not DP_TRAIN's 1e-2
        assert t.recipe.pretrain.hidden == t.recipe.train.hidden
        note = next(n for n in t.notes if "public pretraining" in n)
        assert f"{len(data.population):,} population rows" in note
        assert "Epsilon covers the training rows" in note
    _, _, off = _targets("german", public_pretraining=None)
    assert all(t.recipe.pretrain is None for t in off.values())
    assert off["dp_eps1"].recipe.train.lr == 1e-2
    _, _, compas = _targets("compas")  # 1,543 members: only epsilon 1 is below 2500
    assert compas["dp_eps1"].recipe.pretrain is not None
    assert compas["dp_eps8"].recipe.pretrain is None


@pytest.fixture(scope="module")
def synthetic():
    ds = make_synthetic(500, n_features=4, seed=3)
    X = ds.features.to_numpy(np.float32)
    return ds, X


def _inputs(ds, X, y=None, public=None):
    return Inputs(frame=ds.features, y=ds.y if y is None else y, sensitive=ds.sensitive,
                  make_matrix=lambda: X, public=public)  # fmt: skip


def test_pretraining_reads_the_public_rows_only(synthetic):
    ds, X = synthetic
    tc = TrainConfig(hidden=(8,), epochs=3, batch_size=32, lr=3e-3)
    dp = DPConfig(noise_multiplier=2.0)
    pre = FairleakRecipe(tc, None, dp, pretrain=tc)
    plain = FairleakRecipe(tc, None, dp)
    public, rows = np.arange(300, 500), np.arange(100, 300)
    masks = np.ones((2, len(rows)), bool)
    fitted = pre.fit(_inputs(ds, X, public=public), rows, masks, [1, 2])
    mech = fitted.privacy["mechanism"]
    assert mech["public_pretraining"] == {"rows": 200}
    assert mech["does_not_cover"].startswith(
        "the initial weights, trained without privacy on 200 public rows"
    )
    scratch = plain.fit(_inputs(ds, X), rows, masks, [1, 2])
    assert fitted.privacy["epsilon"] == scratch.privacy["epsilon"]  # the same mechanism
    every = np.arange(500)
    out = fitted.outputs(_inputs(ds, X), every).proba
    assert not np.allclose(out, scratch.outputs(_inputs(ds, X), every).proba)
    y = ds.y.copy()
    y[:100] = 1 - y[:100]  # rows neither public nor the set's: nothing changes
    again = pre.fit(_inputs(ds, X, y=y, public=public), rows, masks, [1, 2])
    np.testing.assert_array_equal(again.outputs(_inputs(ds, X), every).proba, out)
    y[300:] = 1 - y[300:]  # the public rows: the models change
    moved = pre.fit(_inputs(ds, X, y=y, public=public), rows, masks, [1, 2])
    assert not np.allclose(moved.outputs(_inputs(ds, X), every).proba, out)
    with pytest.raises(
        DataValidationError, match="pretrains on public rows, and these inputs have none"
    ):
        pre.fit(_inputs(ds, X), rows, masks, [1, 2])


def test_dp_audit_canaries_are_never_pretrained_on(synthetic):
    """A canary is a population row with its label flipped, in or out of a run at random: public
    pretraining must not see it either way, or in and out would differ outside the mechanism."""
    ds, X = synthetic
    view = flipped_view(_inputs(ds, X, public=np.arange(300, 500)), np.arange(450, 500))
    np.testing.assert_array_equal(view.public, np.arange(300, 450))
    tc = TrainConfig(hidden=(8,), epochs=2, batch_size=32)
    rows = np.r_[np.arange(200), np.arange(450, 500)]
    fitted = FairleakRecipe(tc, None, DPConfig(noise_multiplier=2.0), pretrain=tc).fit(
        view, rows, np.ones((1, len(rows)), bool), [3]
    )
    assert fitted.privacy["mechanism"]["public_pretraining"] == {"rows": 150}


def test_pretrained_penalised_models_trained_together_equal_trained_alone(synthetic):
    ds, X = synthetic
    tc = TrainConfig(hidden=(8,), epochs=2, batch_size=32)
    dp = DPConfig(noise_multiplier=1.0)
    recipes = [FairleakRecipe(tc, FairnessConfig(weight=w), dp, pretrain=tc) for w in (1.0, 3.0)]
    assert recipes[0].batch_key() == recipes[1].batch_key()
    assert recipes[0].batch_key() != FairleakRecipe(tc, FairnessConfig(weight=1.0), dp).batch_key()
    inputs, rows, masks = (
        _inputs(ds, X, public=np.arange(300, 500)),
        np.arange(300),
        np.ones((1, 300), bool),
    )
    together = FairleakRecipe.fit_batch(recipes, inputs, rows, masks, [11])
    for r, f in zip(recipes, together, strict=True):
        alone = r.fit(inputs, rows, masks, [11])
        # equal up to float32 rounding (an ensemble position can round differently by an ulp)
        np.testing.assert_allclose(
            f.outputs(inputs, np.arange(500)).proba, alone.outputs(inputs, np.arange(500)).proba,
            rtol=0, atol=1e-6,
        )  # fmt: skip
        assert r.with_penalty_weight(2.0).pretrain == tc
