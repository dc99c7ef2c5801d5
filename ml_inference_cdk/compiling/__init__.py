"""Pack-time compilation: convert a fitted model to ONNX and prove it predicts what the native model does.

``compile_model`` converts (``onnx_export``) and verifies (``verification``) on a sample, and returns the
record ``pack_model`` writes into model-metadata.json (``record``). The converters and ONNX Runtime come
with the ``compile`` extra: ``pip install 'ml-inference-cdk[compile]'``; NumPy with scikit-learn. Only
``settings`` (formats, file name, ``Tolerance``) loads without them: the rest loads on first use, so that
importing the constructs needs neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ml_inference_cdk.compiling.settings import COMPILE_FORMATS, COMPILED_FILENAME, Tolerance

if TYPE_CHECKING:
    from ml_inference_cdk.compiling.record import CompiledModel, compile_model, describe

__all__ = ["COMPILED_FILENAME", "COMPILE_FORMATS", "CompiledModel", "Tolerance", "compile_model", "describe"]
_FROM_RECORD = frozenset({"CompiledModel", "compile_model", "describe"})

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name not in _FROM_RECORD:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module("ml_inference_cdk.compiling.record"), name)
        globals()[name] = value
        return value
