"""The retraining workflow, deployed by the real CDK CLI into a moto server with SageMakerStack.

moto creates the state machine from the template; it does not run SageMaker training jobs, so an execution is
not started here (the definition's states and their parameters are asserted in tests/unit/test_retraining.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.local_aws import LocalAws, bootstrap, deploy

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def outputs(
    local_aws: LocalAws, tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path
) -> dict[str, str]:
    workdir = tmp_path_factory.mktemp("retraining-deploy")
    local_aws.client("s3").create_bucket(Bucket="training-data")
    bootstrap(local_aws, workdir)
    deployed = deploy(
        local_aws,
        ["SageMakerStack"],
        workdir=workdir,
        context={
            "trainingDataS3Uri": "s3://training-data/iris/train/",
            "trainingHyperparameters": json.dumps({"estimator": "LogisticRegression", "target": "species"}),
        },
    )
    return deployed["SageMakerStack"]


@pytest.fixture(scope="module")
def state_machine(local_aws: LocalAws, outputs: dict[str, str]) -> dict[str, Any]:
    description: dict[str, Any] = local_aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=outputs["RetrainingStateMachineArn"]
    )
    return description


def test_the_retraining_state_machine_is_deployed_next_to_the_endpoint(
    local_aws: LocalAws, outputs: dict[str, str], state_machine: dict[str, Any]
) -> None:
    assert state_machine["status"] == "ACTIVE"
    endpoint = local_aws.client("sagemaker").describe_endpoint(EndpointName=outputs["EndpointName"])
    assert endpoint["EndpointStatus"] == "InService"


def test_the_deployed_definition_trains_on_the_context_prefix_and_updates_the_deployed_endpoint(
    outputs: dict[str, str], state_machine: dict[str, Any]
) -> None:
    states = json.loads(state_machine["definition"])["States"]
    source = states["Train"]["Parameters"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    # aws-stepfunctions-tasks writes the bucket's HTTPS URL, which the SageMaker API accepts as an S3Uri.
    assert source["S3Uri"] == "https://s3.us-east-1.amazonaws.com/training-data/iris/train/"
    assert source["S3DataType"] == "S3Prefix"
    assert states["Train"]["Parameters"]["HyperParameters"] == {
        "estimator": "LogisticRegression",
        "target": "species",
    }
    assert states["UpdateEndpoint"]["Parameters"]["EndpointName"] == outputs["EndpointName"]


def test_the_state_machine_role_exists_in_the_local_account(
    local_aws: LocalAws, state_machine: dict[str, Any]
) -> None:
    role_name = state_machine["roleArn"].rsplit("/", 1)[-1]
    role = local_aws.client("iam").get_role(RoleName=role_name)["Role"]
    assert "states.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])
