"""FairleakClassifier: the scikit-learn contract, fairness, privacy, and clear errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fairleak.data import make_synthetic
from fairleak.errors import DataValidationError, ParameterError
from fairleak.train import FairleakClassifier, load_model, save_model

# Deliberate deviations from the scikit-learn checks, each with its reason.
EXPECTED_FAILED: dict[str, str] = {}


def _fast():
    return FairleakClassifier(
        hidden_layer_sizes=(8,), epochs=3, batch_size=32, lr=1e-2, random_state=0
    )


@parametrize_with_checks([_fast()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_contract(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic(3000, n_features=4, shift=2.0, seed=2)
    return (
        ds.features.to_numpy(np.float32).copy(),
        np.where(ds.y == 1, "yes", "no"),
        ds.sensitive["group"],
    )


def test_fit_predict_any_two_labels(data):
    X, y, _ = data
    clf = FairleakClassifier(epochs=20, lr=1e-2, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    assert set(clf.predict(X)) <= {"no", "yes"}
    assert clf.score(X, y) > 0.7
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0)
    assert clf.epsilon_ is None and clf.delta_ is None


def test_fairness_lowers_gap(data):
    X, y, group = data
    gaps = []
    for w in (0.0, 3.0):
        clf = FairleakClassifier(
            fairness="demographic_parity", fairness_weight=w, epochs=20, lr=1e-2, random_state=0
        )
        p = clf.fit(X, y, sensitive_features=group).predict_proba(X)[:, 1]
        m = group.to_numpy() == "minority"
        gaps.append(abs(p[m].mean() - p[~m].mean()))
    assert gaps[1] < 0.7 * gaps[0], gaps


def test_private_estimator_reports_epsilon(data):
    X, y, group = data
    clf = FairleakClassifier(target_epsilon=2.0, epochs=3, random_state=0).fit(X, y)
    assert 1.9 <= clf.epsilon_ <= 2.0 + 1e-6 and clf.delta_ == 1e-5
    s = FairleakClassifier(target_epsilon=3.0, group_clipping=True, epochs=2, random_state=0)
    s.fit(X, y, sensitive_features=pd.DataFrame({"g": group}))
    assert s.epsilon_ <= 3.0 + 1e-6


@pytest.mark.parametrize(
    ("params", "fit_kwargs", "pattern"),
    [
        ({"target_epsilon": -1.0}, {}, r"'target_epsilon' parameter of FairleakClassifier must be a float in the range \(0, inf\)( or None)?\. Got -1.0"),
        ({"target_epsilon": 1.0, "delta": 1.5}, {}, r"'delta' parameter of FairleakClassifier must be a float in the range \(0, 1\). Got 1.5"),
        ({"fairness": "fairest"}, {"sf": True}, r"'fairness' parameter of FairleakClassifier must be one of"),
        ({"fairness": "demographic_parity"}, {}, r"needs the protected attributes"),
        ({"group_clipping": True}, {"sf": True}, r"'group_clipping' parameter of FairleakClassifier needs DP-SGD"),
        ({"hidden_layer_sizes": (0,)}, {}, r"'hidden_layer_sizes' parameter of FairleakClassifier"),
    ],
)  # fmt: skip
def test_bad_hyperparameters(data, params, fit_kwargs, pattern):
    X, y, group = data
    kw = {"sensitive_features": group} if fit_kwargs.get("sf") else {}
    with pytest.raises(ParameterError, match=pattern):
        FairleakClassifier(**params).fit(X, y, **kw)


def test_sensitive_features_of_wrong_length(data):
    X, y, group = data
    with pytest.raises(
        DataValidationError, match=r"sensitive_features has 10 rows but the data has 3000"
    ):
        FairleakClassifier(fairness="demographic_parity").fit(X, y, sensitive_features=group[:10])


def test_save_load_round_trip_without_pickle(tmp_path, data):
    X, y, _ = data
    clf = FairleakClassifier(
        hidden_layer_sizes=(16, 8), target_epsilon=5.0, epochs=2, random_state=1
    ).fit(X, y)
    path = save_model(clf, tmp_path / "model.safetensors")
    again = load_model(path)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert again.epsilon_ == clf.epsilon_ and again.get_params() == clf.get_params()
    ens_path = save_model(clf.ensemble_, tmp_path / "ens.safetensors")
    np.testing.assert_array_equal(
        load_model(ens_path).predict_logits(X), clf.ensemble_.predict_logits(X)
    )


def test_tampered_or_foreign_files_are_refused(tmp_path, data):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04\x95 pickle bytes, not a model")
    with pytest.raises(DataValidationError, match="not a readable safetensors model file"):
        load_model(junk)
    import torch
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"fairleak": '{"format": "other"}'})
    with pytest.raises(DataValidationError, match="not a valid fairleak model"):
        load_model(foreign)


def test_every_hyperparameter_is_an_estimator_parameter_and_nothing_else():
    """One hyperparameter model: every field of TrainConfig, FairnessConfig and DPConfig is
    reachable from FairleakClassifier, and the estimator declares nothing of its own (so the two
    cannot drift apart)."""
    from fairleak.train import PARAMETER_MAP, DPConfig, FairnessConfig, TrainConfig

    fields = {("train", f) for f in TrainConfig.model_fields} | {
        ("fairness", f) for f in FairnessConfig.model_fields
    } | {("dp", f) for f in DPConfig.model_fields}
    assert set(PARAMETER_MAP.values()) == fields
    params = set(FairleakClassifier().get_params())
    assert params == set(PARAMETER_MAP) | {"random_state"}
    # defaults agree too
    defaults = FairleakClassifier().get_params()
    for p, (section, f) in PARAMETER_MAP.items():
        model = {"train": TrainConfig, "fairness": FairnessConfig, "dp": DPConfig}[section]
        default = model.model_fields[f].default
        if p == "fairness":
            continue  # None means "no penalty"; the config's default penalty applies once one is set
        assert defaults[p] == default or (isinstance(default, tuple) and tuple(defaults[p]) == default), p
