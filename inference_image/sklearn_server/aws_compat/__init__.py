"""Stand-ins for the AWS modules an ``inference.py`` written for AWS's scikit-learn container imports.

AWS's image ships ``sagemaker_containers`` (whose ``beta.framework`` module gives ``encoders``, ``worker``,
``content_types`` and ``errors``) and ``sagemaker_inference`` (``encoder``, ``decoder``, ``content_types``,
``errors``). Scripts import them for ``worker.Response`` and the encoders. The real packages pull in Flask,
gunicorn, boto3 and a C extension; these stand-ins hold only what a user script touches, with the same
names and behaviour.

This directory goes at the *end* of ``sys.path`` when user code is loaded, so the real packages win when
``code/requirements.txt`` installs them.
"""
