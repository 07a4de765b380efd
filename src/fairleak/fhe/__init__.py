"""Encrypted inference (CKKS with TenSEAL): the tabular analogue of DCT-CryptoNets.

A client encrypts preprocessed records (column-packed, see :mod:`fairleak.fhe.client`), a
server scores them with a plaintext FHE-friendly model holding only a context without the secret
key (:mod:`fairleak.fhe.server`), the client decrypts the margins. Models: logistic regression and
MLPs with CryptoNets' square activation, trained with fairleak's trainer (optionally DP);
parameters from the model's depth at 128-bit security (:mod:`fairleak.fhe.params`); fewer
encrypted inputs via a projection fitted on public rows (:mod:`fairleak.fhe.reduce`, after
DCT-CryptoNets, Roy & Roy 2024). Needs the optional extra: ``pip install 'fairleak[fhe]'``;
this package imports TenSEAL only when a client or server is created.
"""

from fairleak.fhe._tenseal import INSTALL_HINT, require_tenseal
from fairleak.fhe.client import FHEClient
from fairleak.fhe.demo import EncryptedInferenceResult, run_encrypted_inference, train_fhe_model
from fairleak.fhe.messages import EncryptedBatch, EncryptedScores
from fairleak.fhe.model import PolynomialModel
from fairleak.fhe.params import HE_STANDARD_MAX_BITS_128, CKKSParameters, ckks_parameters
from fairleak.fhe.reduce import PublicReduction
from fairleak.fhe.server import FHEServer

__all__ = [
    "HE_STANDARD_MAX_BITS_128",
    "INSTALL_HINT",
    "CKKSParameters",
    "EncryptedBatch",
    "EncryptedInferenceResult",
    "EncryptedScores",
    "FHEClient",
    "FHEServer",
    "PolynomialModel",
    "PublicReduction",
    "ckks_parameters",
    "require_tenseal",
    "run_encrypted_inference",
    "train_fhe_model",
]
