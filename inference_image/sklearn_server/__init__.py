"""A SageMaker bring-your-own-container server for scikit-learn models.

The request path is a pipeline of small stages, each in its own module:
``config`` (the environment, read once) -> ``model`` (load) -> ``codecs`` (decode) ->
``batching`` (predict, coalesced across concurrent requests) -> ``codecs`` (encode) -> ``app`` (HTTP).
``supervisor`` owns the processes: it binds the port, forks the workers and handles signals.
"""

__all__: list[str] = []
