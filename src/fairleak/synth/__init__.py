"""Synthetic data: FLIP-lite (fair and private tabular VAE) and oversampling for imbalance."""

from fairleak.synth.flip import FlipConfig, FlipLiteSynthesizer
from fairleak.synth.schema import ColumnSpec, TableEncoder, TableSchema, bundled_schema
from fairleak.synth.vae import TabularVAE

__all__ = [
    "ColumnSpec",
    "FlipConfig",
    "FlipLiteSynthesizer",
    "TableEncoder",
    "TableSchema",
    "TabularVAE",
    "bundled_schema",
]
