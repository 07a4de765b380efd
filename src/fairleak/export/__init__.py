"""Export of chosen models for deployment (ONNX; optional extra ``export``)."""

from fairleak.export.onnx import ONNX_OPSET, onnx_feed, onnx_predict_proba, save_onnx, to_onnx

__all__ = ["ONNX_OPSET", "onnx_feed", "onnx_predict_proba", "save_onnx", "to_onnx"]
