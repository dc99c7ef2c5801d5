"""What compiling takes, without NumPy or a converter: the formats, the compiled file's name, the tolerance.

``pack_model`` imports these to check its arguments; the library's other modules (record, verification,
samples, onnx_export) need NumPy and the ``compile`` extra, and load only when a model is compiled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

COMPILED_FILENAME: Final = "model.onnx"
COMPILE_FORMATS: Final = ("onnx",)


@dataclass(frozen=True)
class Tolerance:
    """How far ONNX outputs may stray from the native ones: ``np.allclose``'s rtol and atol.

    Labels are never allowed to differ; the tolerance applies to probabilities and regression outputs.
    """

    rtol: float = 1e-5
    """Relative tolerance. Default: 1e-5."""
    atol: float = 1e-6
    """Absolute tolerance. Default: 1e-6."""

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def as_record(self) -> dict[str, float]:
        return {"rtol": float(self.rtol), "atol": float(self.atol)}
