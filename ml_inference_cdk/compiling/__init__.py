"""Pack-time compilation: convert a fitted model to ONNX and prove it predicts what the native model does.

``compile_model`` converts (``onnx_export``) and verifies (``verification``) on a sample, and returns the
record ``pack_model`` writes into model-metadata.json (``record``). The converters and ONNX Runtime come
with the ``compile`` extra: ``pip install 'ml-inference-cdk[compile]'``.
"""

from ml_inference_cdk.compiling.record import (
    COMPILE_FORMATS,
    COMPILED_FILENAME,
    CompiledModel,
    compile_model,
    describe,
)
from ml_inference_cdk.compiling.verification import Tolerance

__all__ = ["COMPILED_FILENAME", "COMPILE_FORMATS", "CompiledModel", "Tolerance", "compile_model", "describe"]
