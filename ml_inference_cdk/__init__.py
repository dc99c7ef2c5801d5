"""ml-inference-cdk: deploy one scikit-learn inference container to SageMaker, ECS Fargate and EKS.

The package is deliberately not called ``constructs``: a top-level package of that name shadows the
``constructs`` library that aws-cdk-lib imports, and ``import aws_cdk`` then fails (aws/aws-cdk#19301).
The public names are listed once, in ``ml_inference_cdk.constructs``, and re-exported here on first use:
``python -m ml_inference_cdk.invoke`` imports this package too, and must not pay for aws_cdk (about 2 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml_inference_cdk.constructs import *  # noqa: F403

__version__ = "0.1.0"


if not TYPE_CHECKING:  # type checkers see the names above, and flag a misspelt one

    def __getattr__(name: str) -> Any:
        """``from ml_inference_cdk import SageMakerEndpoint`` (and ``import *``) load the constructs then."""
        constructs = importlib.import_module("ml_inference_cdk.constructs")
        if name == "__all__":
            return [*constructs.__all__, "__version__"]
        if name not in constructs.__all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(constructs, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__getattr__("__all__")})
