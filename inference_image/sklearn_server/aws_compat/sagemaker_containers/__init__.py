"""A stand-in for AWS's ``sagemaker_containers`` (see ``sklearn_server.aws_compat``)."""
