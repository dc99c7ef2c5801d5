"""ml-inference-cdk: deploy one scikit-learn inference container to SageMaker, ECS Fargate and EKS.

The package is deliberately not called ``constructs``: a top-level package of that name shadows the
``constructs`` library that aws-cdk-lib imports, and ``import aws_cdk`` then fails (aws/aws-cdk#19301).
The public names are listed once, in ``ml_inference_cdk.constructs``, and re-exported here.
"""

from ml_inference_cdk import constructs as _constructs
from ml_inference_cdk.constructs import *  # noqa: F403

__version__ = "0.1.0"

__all__ = [*_constructs.__all__, "__version__"]
