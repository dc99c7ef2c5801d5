"""SageMaker: the L2s (model, endpoint config, endpoint, inference component) and the endpoint pattern."""
