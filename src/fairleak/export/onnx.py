"""ONNX export of a chosen model together with its preprocessing, for deployment.

One graph: the fitted :class:`~fairleak.data.TabularPreprocessor` (its ``column_transformer_``
converted by skl2onnx: one input per raw column, strings for categoricals, doubles for
numerics; unseen categories encode as zeros, as in fairleak), a cast to float32, then the model:

- a fairleak MLP (``FairleakClassifier`` or one member of an ``Ensemble``): Gemm + activation
  layers and a final Softmax, written directly with ``onnx.helper`` (exact, and independent of
  torch's exporter, whose default path needs ``onnxscript``);
- a :class:`~fairleak.train.fairboost.FairBoostClassifier` with decision-tree weak learners:
  one ``TreeEnsembleRegressor`` summing ``alpha_t * (+-1)`` over the first ``theta_`` trees
  (the margin F), then ``[sigmoid(-F), sigmoid(F)]``.

Output ``probabilities``: float32 [N, 2], columns in the model's ``classes_`` order. Spec:
``ALGORITHMS-2.md`` section 8.2. Needs the optional extra: ``pip install 'fairleak[export]'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairleak.errors import DataValidationError, ParameterError

__all__ = ["ONNX_OPSET", "onnx_feed", "onnx_predict_proba", "save_onnx", "to_onnx"]

ONNX_OPSET = 17  # default opset of the main domain (Softmax on one axis needs >= 13)
_ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleRegressor v3 (deprecated only from v5)
_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "elu": "Elu"}


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"ONNX export needs '{module}', which is not installed: "
            "pip install 'fairleak[export]' (skl2onnx, onnx, onnxruntime)."
        ) from exc


# ---------------------------------------------------------------- the model part
def _mlp_nodes(ensemble: Any, member: int, x: str, out: str, helper: Any, numpy_helper: Any):
    """Nodes and initialisers of one MLP member: Gemm (+ activation) per layer, Softmax."""
    activation = ensemble.config.activation
    nodes, inits = [], []
    h = x
    n_layers = len(ensemble.weights)
    for i, (w, b) in enumerate(zip(ensemble.weights, ensemble.biases, strict=True)):
        W = w[member].detach().cpu().numpy().astype(np.float32)
        B = b[member].detach().cpu().numpy().astype(np.float32)
        inits += [numpy_helper.from_array(W, f"fl_W{i}"), numpy_helper.from_array(B, f"fl_b{i}")]
        z = f"fl_z{i}" if i < n_layers - 1 else "fl_logits"
        nodes.append(helper.make_node("Gemm", [h, f"fl_W{i}", f"fl_b{i}"], [z]))
        if i < n_layers - 1:
            h = f"fl_h{i}"
            if activation == "square":  # CryptoNets' polynomial activation
                nodes.append(helper.make_node("Mul", [z, z], [h]))
            elif activation == "elu":
                nodes.append(helper.make_node("Elu", [z], [h], alpha=1.0))
            else:
                nodes.append(helper.make_node(_ACTIVATIONS[activation], [z], [h]))
    nodes.append(helper.make_node("Softmax", ["fl_logits"], [out], axis=-1))
    return nodes, inits


def _float32_floor(t: float) -> float:
    """Largest float32 <= t: for a float32 input x, ``x <= t`` (the tree's test in double)
    holds exactly when ``x <= _float32_floor(t)`` (ONNX compares in float32)."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(f)


def _boost_nodes(model: Any, x: str, out: str, helper: Any):
    """One TreeEnsembleRegressor for the margin F of the first ``theta_`` rounds, then
    ``[sigmoid(-F), sigmoid(F)]``."""
    attrs: dict[str, list] = {k: [] for k in (
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
        "nodes_truenodeids", "nodes_falsenodeids", "target_treeids", "target_nodeids",
        "target_ids", "target_weights")}  # fmt: skip
    for t in range(model.theta_):
        est, alpha = model.estimators_[t], float(model.estimator_weights_[t])
        tree = getattr(est, "tree_", None)
        if tree is None or list(getattr(est, "classes_", [])) != [0, 1]:
            raise ParameterError(
                "ONNX export of FairBoostClassifier needs decision-tree weak learners "
                f"(DecisionTreeClassifier); round {t + 1} has {type(est).__name__}."
            )
        left, right = tree.children_left, tree.children_right
        for node in range(tree.node_count):
            leaf = left[node] == -1
            attrs["nodes_treeids"].append(t)
            attrs["nodes_nodeids"].append(node)
            attrs["nodes_featureids"].append(0 if leaf else int(tree.feature[node]))
            attrs["nodes_values"].append(0.0 if leaf else _float32_floor(tree.threshold[node]))
            attrs["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            attrs["nodes_truenodeids"].append(0 if leaf else int(left[node]))
            attrs["nodes_falsenodeids"].append(0 if leaf else int(right[node]))
            if leaf:  # the tree predicts argmax of the leaf's class weights (ties: class 0)
                vote = 1.0 if int(np.argmax(tree.value[node][0])) == 1 else -1.0
                attrs["target_treeids"].append(t)
                attrs["target_nodeids"].append(node)
                attrs["target_ids"].append(0)
                attrs["target_weights"].append(alpha * vote)
    nodes = [
        helper.make_node(
            "TreeEnsembleRegressor", [x], ["fl_margin"], domain="ai.onnx.ml", n_targets=1,
            aggregate_function="SUM", post_transform="NONE", base_values=[0.0], **attrs,
        ),
        helper.make_node("Neg", ["fl_margin"], ["fl_neg_margin"]),
        helper.make_node("Sigmoid", ["fl_neg_margin"], ["fl_p0"]),
        helper.make_node("Sigmoid", ["fl_margin"], ["fl_p1"]),
        helper.make_node("Concat", ["fl_p0", "fl_p1"], [out], axis=1),
    ]  # fmt: skip
    return nodes, []


def _model_nodes(model: Any, member: int | None, x: str, out: str, onnx: Any):
    from fairleak.train.estimator import FairleakClassifier
    from fairleak.train.fairboost import FairBoostClassifier
    from fairleak.train.model import Ensemble

    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    if isinstance(model, FairBoostClassifier):
        if not hasattr(model, "theta_"):
            raise ParameterError("The FairBoostClassifier is not fitted; call fit first.")
        return _boost_nodes(model, x, out, helper), model.n_features_in_, model.classes_
    if isinstance(model, FairleakClassifier):
        if not hasattr(model, "ensemble_"):
            raise ParameterError("The FairleakClassifier is not fitted; call fit first.")
        model, member, classes = model.ensemble_, 0, model.classes_
    elif isinstance(model, Ensemble):
        classes = np.array([0, 1])
        if member is None:
            if model.n_models != 1:
                raise ParameterError(
                    f"The Ensemble holds {model.n_models} models; pass member= the index of the "
                    "one to export (ONNX holds one model per graph)."
                )
            member = 0
        if not 0 <= member < model.n_models:
            raise ParameterError(f"member must be in [0, {model.n_models - 1}]; got {member}.")
    else:
        raise ParameterError(
            "to_onnx exports FairleakClassifier, a fairleak Ensemble or FairBoostClassifier; "
            f"got {type(model).__name__}."
        )
    if model.config.activation not in (*_ACTIVATIONS, "square"):
        raise ParameterError(f"Unknown activation {model.config.activation!r}.")
    return _mlp_nodes(model, member, x, out, helper, numpy_helper), model.n_features, classes


# ---------------------------------------------------------------- public API
def to_onnx(
    model: Any,
    *,
    preprocessor: Any = None,
    member: int | None = None,
    opset: int = ONNX_OPSET,
    name: str = "fairleak_model",
) -> Any:
    """ONNX ``ModelProto`` of ``model`` with its ``preprocessor`` in front.

    Args:
        model: a fitted ``FairleakClassifier``, ``Ensemble`` (``member`` picks one model when
            it holds several) or ``FairBoostClassifier`` with decision-tree weak learners.
        preprocessor: the fitted ``TabularPreprocessor`` whose output the model was trained
            on; inputs are then one [N, 1] tensor per raw column (see :func:`onnx_feed`).
            Without it, the single input ``X`` is the float32 [N, D] feature matrix.
        opset: opset of the main ONNX domain (>= 13).

    Output ``probabilities`` float32 [N, 2]; the model's classes are in the metadata.
    """
    onnx = _require("onnx")
    helper = onnx.helper
    if not isinstance(opset, int) or opset < 13:
        raise ParameterError(f"opset must be an int >= 13 (Softmax on one axis); got {opset!r}.")
    (nodes, inits), n_features, classes = _model_nodes(
        model, member, "fl_features", "probabilities", onnx
    )
    if preprocessor is None:
        graph = helper.make_graph(
            [helper.make_node("Identity", ["X"], ["fl_features"]), *nodes], name,
            [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [None, n_features])],
            [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 2])],
            initializer=inits,
        )  # fmt: skip
        proto = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset),
                           helper.make_opsetid("ai.onnx.ml", _ML_OPSET)],
        )  # fmt: skip
    else:
        proto = _preprocessor_model(preprocessor, opset)
        width = len(preprocessor.get_feature_names_out())
        if width != n_features:
            raise DataValidationError(
                f"The preprocessor outputs {width} features but the model takes {n_features}; "
                "pass the preprocessor the model was trained on."
            )
        g = proto.graph
        pre_out = g.output[0].name
        g.node.append(
            helper.make_node("Cast", [pre_out], ["fl_features"], to=onnx.TensorProto.FLOAT)
        )
        g.node.extend(nodes)
        g.initializer.extend(inits)
        del g.output[:]
        g.output.append(
            helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 2])
        )
        g.name = name
        domains = {o.domain: o for o in proto.opset_import}
        if "ai.onnx.ml" not in domains:
            proto.opset_import.append(helper.make_opsetid("ai.onnx.ml", _ML_OPSET))
        elif domains["ai.onnx.ml"].version < _ML_OPSET:
            domains["ai.onnx.ml"].version = _ML_OPSET
    proto.producer_name = "fairleak"
    helper.set_model_props(
        proto,
        {"fairleak_model": type(model).__name__,
         "classes": json.dumps([c.item() if hasattr(c, "item") else c for c in classes]),
         **({"theta": str(model.theta_)} if hasattr(model, "theta_") else {})},
    )  # fmt: skip
    onnx.checker.check_model(proto)
    return proto


def _preprocessor_model(preprocessor: Any, opset: int) -> Any:
    skl2onnx = _require("skl2onnx")
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    if not hasattr(preprocessor, "column_transformer_"):
        raise ParameterError(
            "preprocessor must be a fitted TabularPreprocessor (with column_transformer_); got "
            f"{type(preprocessor).__name__}."
        )
    numeric = set(preprocessor.numeric_)
    inputs = [
        (str(c), DoubleTensorType([None, 1]) if c in numeric else StringTensorType([None, 1]))
        for c in preprocessor.feature_names_in_
    ]
    # Numerics enter as doubles: the scaler then computes in float64 as scikit-learn does, and
    # the cast to float32 afterwards rounds exactly as TabularPreprocessor.transform does.
    return skl2onnx.convert_sklearn(
        preprocessor.column_transformer_, initial_types=inputs,
        target_opset={"": opset, "ai.onnx.ml": _ML_OPSET},
    )  # fmt: skip


def save_onnx(model: Any, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`to_onnx` of ``model`` to ``path`` (keyword arguments as there)."""
    proto = to_onnx(model, **kwargs)
    path = Path(path)
    path.write_bytes(proto.SerializeToString())
    return path


def _load(model: Any) -> Any:
    onnx = _require("onnx")
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, bytes):
        return onnx.load_from_string(model)
    return onnx.load(str(model))


def onnx_feed(model: Any, data: Any) -> dict[str, np.ndarray]:
    """The input dict for onnxruntime: one [N, 1] array per raw column of the DataFrame
    ``data`` (strings for categoricals, float64 for numerics), or ``{"X": float32 [N, D]}``
    for a model exported without preprocessor."""
    onnx = _require("onnx")
    proto = _load(model)
    inputs = list(proto.graph.input)
    if len(inputs) == 1 and inputs[0].name == "X":
        return {"X": np.ascontiguousarray(np.asarray(data, dtype=np.float32))}
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data)
    missing = [i.name for i in inputs if i.name not in data.columns]
    if missing:
        raise DataValidationError(
            f"The data lacks column(s) {missing} that the exported model takes as input."
        )
    feed = {}
    for i in inputs:
        col = data[i.name]
        if i.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            feed[i.name] = col.astype(str).to_numpy(dtype=object).reshape(-1, 1)
        else:
            feed[i.name] = col.to_numpy(dtype=np.float64).reshape(-1, 1)
    return feed


def onnx_predict_proba(model: Any, data: Any) -> np.ndarray:
    """Probabilities [N, 2] of an exported model (``ModelProto``, bytes or a path) on ``data``
    (a DataFrame of raw columns, or the feature matrix for a model without preprocessor),
    computed by onnxruntime."""
    ort = _require("onnxruntime")
    proto = _load(model)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], onnx_feed(proto, data))[0]
