"""ONNX export with preprocessing: onnxruntime gives fairleak's probabilities (1e-5) on Adult
test rows, for the MLP (every activation) and for FairBoost; clear errors."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

pytest.importorskip(
    "onnxruntime", reason="needs the optional extra: pip install 'fairleak[export]'"
)
pytest.importorskip("skl2onnx", reason="needs the optional extra: pip install 'fairleak[export]'")

from fairleak.data import TabularPreprocessor, load_dataset
from fairleak.errors import DataValidationError, ParameterError
from fairleak.export import onnx_feed, onnx_predict_proba, save_onnx, to_onnx
from fairleak.train import FairleakClassifier, TrainConfig, train_ensemble
from fairleak.train.fairboost import FairBoostClassifier

ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # The MLPs here are tiny: on a shared 2-core machine, torch's second intra-op thread only
    # waits for the other (fits measured 5-15x slower with 2 threads under load).
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def adult():
    ds = load_dataset("adult", protected=["sex", "race"])
    order = np.random.default_rng(0).permutation(len(ds.y))
    train, test = order[:4000], order[4000:6000]
    pre = TabularPreprocessor().fit(ds.features.iloc[train])
    return {
        "pre": pre,
        "X": pre.transform(ds.features.iloc[train]),
        "y": ds.y[train],
        "s": ds.sensitive.iloc[train],
        "test": ds.features.iloc[test].reset_index(drop=True),
    }


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu", "square"])
def test_mlp_with_preprocessing_matches(adult, activation):
    clf = FairleakClassifier(
        hidden_layer_sizes=(16, 8), activation=activation, epochs=5, lr=1e-2, random_state=0
    ).fit(adult["X"], adult["y"])
    proto = to_onnx(clf, preprocessor=adult["pre"])
    got = onnx_predict_proba(proto, adult["test"])
    want = clf.predict_proba(adult["pre"].transform(adult["test"]))
    assert got.shape == (len(adult["test"]), 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    # The probabilities carry information (not a constant model that would match trivially).
    assert want[:, 1].std() > 0.1


def test_unseen_category_encodes_as_zeros_like_fairleak(adult):
    clf = FairleakClassifier(hidden_layer_sizes=(8,), epochs=2, random_state=0)
    clf.fit(adult["X"], adult["y"])
    rows = adult["test"].head(50).copy()
    rows["occupation"] = "Starship-captain"
    rows["native_country"] = "Atlantis"
    got = onnx_predict_proba(to_onnx(clf, preprocessor=adult["pre"]), rows)
    np.testing.assert_allclose(
        got, clf.predict_proba(adult["pre"].transform(rows)), atol=ATOL, rtol=0
    )


def test_ensemble_member(adult):
    ens = train_ensemble(
        adult["X"], adult["y"], np.ones((3, len(adult["y"])), dtype=bool),
        config=TrainConfig(hidden=(8,), epochs=1), seed=1,
    )  # fmt: skip
    with pytest.raises(ParameterError, match="pass member="):
        to_onnx(ens, preprocessor=adult["pre"])
    got = onnx_predict_proba(to_onnx(ens, preprocessor=adult["pre"], member=2), adult["test"])
    want = ens.predict_proba(adult["pre"].transform(adult["test"]))[2]
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("depth", [1, 3])
def test_fairboost_with_preprocessing_matches(adult, depth, tmp_path):
    fb = FairBoostClassifier(
        DecisionTreeClassifier(max_depth=depth), n_estimators=40, random_state=0
    ).fit(adult["X"], adult["y"], sensitive_features=adult["s"])
    path = save_onnx(fb, tmp_path / "fairboost.onnx", preprocessor=adult["pre"])
    got = onnx_predict_proba(path, adult["test"])
    Xt = adult["pre"].transform(adult["test"])
    np.testing.assert_allclose(got, fb.predict_proba(Xt), atol=ATOL, rtol=0)
    # Only the first theta rounds are exported: another theta gives other probabilities.
    fb.set_theta(fb.n_rounds_ if fb.theta_ < fb.n_rounds_ else 1)
    got2 = onnx_predict_proba(to_onnx(fb, preprocessor=adult["pre"]), adult["test"])
    np.testing.assert_allclose(got2, fb.predict_proba(Xt), atol=ATOL, rtol=0)
    assert np.abs(got2 - got).max() > 1e-3


def test_without_preprocessor_input_is_the_feature_matrix(adult):
    fb = FairBoostClassifier(n_estimators=10, random_state=0)
    fb.fit(adult["X"], adult["y"], sensitive_features=adult["s"])
    proto = to_onnx(fb)
    Xt = adult["pre"].transform(adult["test"])
    assert list(onnx_feed(proto, Xt)) == ["X"]
    np.testing.assert_allclose(onnx_predict_proba(proto, Xt), fb.predict_proba(Xt), atol=ATOL)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["fairleak_model"] == "FairBoostClassifier" and meta["theta"] == str(fb.theta_)


def test_bad_input(adult):
    fb = FairBoostClassifier(LogisticRegression(), n_estimators=3, random_state=0)
    fb.fit(adult["X"], adult["y"], sensitive_features=adult["s"])
    with pytest.raises(ParameterError, match="decision-tree weak learners"):
        to_onnx(fb)
    with pytest.raises(ParameterError, match="exports FairleakClassifier"):
        to_onnx(LogisticRegression())
    with pytest.raises(ParameterError, match="not fitted"):
        to_onnx(FairleakClassifier())
    clf = FairleakClassifier(hidden_layer_sizes=(4,), epochs=1).fit(adult["X"][:, :5], adult["y"])
    with pytest.raises(DataValidationError, match="preprocessor outputs"):
        to_onnx(clf, preprocessor=adult["pre"])
    good = to_onnx(FairleakClassifier(hidden_layer_sizes=(4,), epochs=1).fit(adult["X"], adult["y"]),
                   preprocessor=adult["pre"])  # fmt: skip
    with pytest.raises(DataValidationError, match="lacks column"):
        onnx_feed(good, adult["test"].drop(columns=["age"]))
