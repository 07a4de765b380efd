"""Encrypted scoring of Adult test rows equals plaintext scoring; the server holds no secret key.

Tolerances (stated): decrypted margins within 2e-5 of the float64 plaintext margin for logistic
regression (one plaintext multiplication at scale 2^40) and 1e-3 for the square MLP; decisions
agree on >= 99.9 % of rows.
"""

import json

import numpy as np
import pytest

pytest.importorskip(
    "tenseal",
    reason="TenSEAL is not installed: pip install 'fairleak[fhe]' to run the encrypted-inference tests",
)

from fairleak.data import TabularPreprocessor, load_dataset
from fairleak.errors import DataValidationError, ParameterError
from fairleak.fhe import (
    FHEClient,
    FHEServer,
    PolynomialModel,
    PublicReduction,
    ckks_parameters,
    train_fhe_model,
)


@pytest.fixture(scope="module")
def adult():
    ds = load_dataset("adult")
    perm = np.random.default_rng(0).permutation(len(ds.y))
    pub, test, train = perm[:12000], perm[12000:17000], perm[17000:27000]
    pre = TabularPreprocessor().fit(ds.features.iloc[pub])
    X = pre.transform(ds.features)
    return {"X": X, "y": ds.y, "pub": pub, "test": test, "train": train}


@pytest.fixture(scope="module")
def lr_model(adult):
    a = adult
    return train_fhe_model(a["X"][a["train"]], a["y"][a["train"]], model="lr", epochs=3)


@pytest.fixture(scope="module")
def mlp_model(adult):
    a = adult
    return train_fhe_model(a["X"][a["train"]], a["y"][a["train"]], model="mlp", hidden=16, epochs=3)


def _score(ens, X, params=None):
    poly = PolynomialModel.from_ensemble(ens)
    client = FHEClient(params or ckks_parameters(poly.depth))
    server = FHEServer(poly, client.public_context())
    return poly, client.decrypt(server.score(client.encrypt(X)))


def _plain_margin(ens, X):
    logits = ens.predict_logits(X)[0].astype(np.float64)
    return logits[:, 1] - logits[:, 0]


def test_logistic_regression_on_5000_adult_rows_two_ciphertext_chunks(adult, lr_model):
    X = adult["X"][adult["test"]]  # 5,000 rows > 4,096 slots: two chunks per column
    poly, enc = _score(lr_model, X)
    assert poly.depth == 1
    np.testing.assert_allclose(enc, poly.margin(X), rtol=0, atol=2e-5)
    plain = _plain_margin(lr_model, X)
    np.testing.assert_allclose(enc, plain, rtol=0, atol=1e-4)  # the float32 model's own logits
    assert np.mean((enc > 0) == (plain > 0)) >= 0.999
    acc_plain = np.mean((plain > 0) == adult["y"][adult["test"]])
    assert acc_plain > 0.8  # a real model, not a constant


def test_square_mlp_on_2000_adult_rows(adult, mlp_model):
    X = adult["X"][adult["test"][:2000]]
    poly, enc = _score(mlp_model, X)
    assert poly.depth == 2
    plain = _plain_margin(mlp_model, X)
    np.testing.assert_allclose(enc, plain, rtol=0, atol=1e-3)
    assert np.mean((enc > 0) == (plain > 0)) >= 0.999


def test_two_square_layers_need_depth_4_and_n16384(adult):
    a = adult
    red = PublicReduction(8).fit(a["X"][a["pub"]])
    Xtr, X = red.transform(a["X"][a["train"][:3000]]), red.transform(a["X"][a["test"][:300]])
    from fairleak.train import TrainConfig, train_ensemble

    cfg = TrainConfig(hidden=(4, 4), activation="square", epochs=2, lr=1e-3)
    ens = train_ensemble(Xtr.astype(np.float32), a["y"][a["train"][:3000]], np.ones((1, 3000), bool),
                         config=cfg, seed=0)  # fmt: skip
    poly = PolynomialModel.from_ensemble(ens)
    params = ckks_parameters(poly.depth)
    assert (poly.depth, params.poly_modulus_degree) == (4, 16384)
    _, enc = _score(ens, X, params)
    np.testing.assert_allclose(enc, _plain_margin(ens, X), rtol=0, atol=1e-3)


def test_dp_trained_model_on_reduced_inputs(adult):
    a = adult
    red = PublicReduction(8, method="f_classif").fit(a["X"][a["pub"]], a["y"][a["pub"]])
    rows = a["train"][:5000]
    ens = train_fhe_model(red.transform(a["X"][rows]), a["y"][rows], model="mlp",
                          hidden=8, epochs=1, dp_epsilon=4.0)  # fmt: skip
    assert ens.epsilon is not None and ens.epsilon[0] <= 4.0 + 1e-6
    X = red.transform(a["X"][a["test"][:500]])
    _, enc = _score(ens, X)
    np.testing.assert_allclose(enc, _plain_margin(ens, X), rtol=0, atol=1e-3)


def test_server_holds_no_secret_key_and_cannot_decrypt(adult, lr_model):
    import tenseal as ts

    poly = PolynomialModel.from_ensemble(lr_model)
    client = FHEClient(ckks_parameters(1))
    server = FHEServer(poly, client.public_context())
    assert not server.context.has_secret_key() and server.context.is_public()
    batch = client.encrypt(adult["X"][adult["test"][:10]])
    scores = server.score(batch)
    on_server = ts.ckks_vector_from(server.context, scores.chunks[0])
    with pytest.raises(ValueError, match="secret_key"):
        on_server.decrypt()
    column = ts.ckks_vector_from(server.context, batch.chunks[0][0])
    with pytest.raises(ValueError, match="secret_key"):
        column.decrypt()
    # the client's own (private) context is refused by the server
    private = client._context.serialize(save_secret_key=True)
    with pytest.raises(ParameterError, match="holds the secret key"):
        FHEServer(poly, private)


def test_wrong_inputs_and_parameters_get_clear_messages(adult, lr_model, mlp_model):
    X = adult["X"][adult["test"][:5]]
    lr_poly, mlp_poly = (
        PolynomialModel.from_ensemble(lr_model),
        PolynomialModel.from_ensemble(mlp_model),
    )
    shallow = FHEClient(ckks_parameters(1))
    with pytest.raises(
        ParameterError,
        match=r"depth 2 but the client's CKKS parameters allow 1.*ckks_parameters\(depth=2\)",
    ):
        FHEServer(mlp_poly, shallow.public_context())
    deep = FHEClient(ckks_parameters(2))
    with pytest.raises(ParameterError, match="relinearisation keys"):
        FHEServer(mlp_poly, deep.public_context(relin_keys=False))
    server = FHEServer(lr_poly, shallow.public_context())
    with pytest.raises(DataValidationError, match=r"has 79 feature columns but the model takes 80"):
        server.score(shallow.encrypt(X[:, :79]))
    with pytest.raises(DataValidationError, match="NaN or infinite"):
        shallow.encrypt(np.full((2, 80), np.nan))
    with pytest.raises(DataValidationError, match="not a serialised TenSEAL context"):
        FHEServer(lr_poly, b"not a context")
    other = FHEClient(ckks_parameters(1))  # another key: its scores do not decrypt here
    other_scores = FHEServer(lr_poly, other.public_context()).score(other.encrypt(X))
    wrong = shallow.decrypt(other_scores)
    assert np.abs(wrong - lr_poly.margin(X)).max() > 1.0  # garbage, not the scores


def test_fhe_demo_cli_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from fairleak.cli import app

    out = tmp_path / "fhe.json"
    runner = CliRunner()
    args = ["fhe-demo", "--reduce", "8", "--max-rows", "1000", "--epochs", "2", "--out", str(out)]
    res = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output[-2000:]
    assert "Encrypted inference: adult" in res.output and "128-bit security" in res.output
    d = json.loads(out.read_text())
    assert d["n_rows"] == 1000 and d["n_inputs"] == 8 and d["n_features"] == 80
    assert d["decision_agreement"] >= 0.999 and d["max_abs_error"] < 1e-3
    assert abs(d["encrypted_accuracy"] - d["plaintext_accuracy"]) <= 1e-3
    assert (
        d["parameters"]["poly_modulus_degree"] == 8192
        and d["reduction"]["fitted_on"] == "public rows"
    )
    res = runner.invoke(app, ["fhe-demo", "--model", "svm"])
    assert res.exit_code == 2 and "'model' parameter" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # no traceback
