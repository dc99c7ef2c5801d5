"""One loader per model kind; ``MODEL_KINDS`` is the order ``model.find_model`` looks for their files in.

Each module names its files (``FILENAMES``) and exposes ``KIND``, a ``model.ModelKind``. A kind whose
library is missing from the image says so at start, naming the file that asked for it.
"""

from __future__ import annotations

from typing import Final

from sklearn_server.loaders import lightgbm, onnx, sklearn, xgboost
from sklearn_server.model import ModelKind

MODEL_KINDS: Final[tuple[ModelKind, ...]] = (sklearn.KIND, xgboost.KIND, lightgbm.KIND, onnx.KIND)
