"""A stand-in for AWS's ``sagemaker_inference`` (see ``sklearn_server.aws_compat``)."""
