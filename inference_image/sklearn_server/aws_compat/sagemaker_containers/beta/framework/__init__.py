"""``sagemaker_containers.beta.framework``: the modules user scripts import from it."""

from . import content_types, encoders, errors, worker

__all__ = ["content_types", "encoders", "errors", "worker"]
