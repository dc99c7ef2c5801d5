"""ml-inference-manifests: the YAML users `kubectl apply -f` to a cluster CDK does not own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ml_inference_cdk.constructs.contract import container_environment
from ml_inference_cdk.constructs.eks.manifests import InferenceManifests, Probes
from ml_inference_cdk.manifests_cli import main
from tests.support.cdk import VENV_BIN

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1.0.0"
MODEL = "s3://models-bucket/iris/model.tar.gz"
ARGS = ["--image-uri", IMAGE, "--model-s3-uri", MODEL, "--region", "eu-west-1"]


def expected(**options: object) -> list[dict[str, object]]:
    manifests = InferenceManifests(
        image_uri=IMAGE,
        model_bucket="models-bucket",
        model_key="iris/model.tar.gz",
        aws_region="eu-west-1",
        **options,  # type: ignore[arg-type]
    )
    return manifests.objects()


def read_all(path: Path) -> list[dict[str, object]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def test_writes_one_multi_document_file_that_round_trips_to_the_builders_objects(tmp_path: Path) -> None:
    assert main(["--output-dir", str(tmp_path), *ARGS]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-inference.yaml"]
    assert read_all(tmp_path / "ml-inference.yaml") == expected()


def test_split_writes_one_file_per_object_in_apply_order(tmp_path: Path) -> None:
    assert main(["--output-dir", str(tmp_path), "--split", *ARGS]) == 0
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == [
        "01-namespace-ml-inference.yaml",
        "02-serviceaccount-ml-inference.yaml",
        "03-networkpolicy-default-deny-ingress.yaml",
        "04-networkpolicy-ml-inference-ingress.yaml",
        "05-deployment-ml-inference.yaml",
        "06-service-ml-inference.yaml",
        "07-horizontalpodautoscaler-ml-inference.yaml",
        "08-poddisruptionbudget-ml-inference.yaml",
    ]
    assert [document for path in files for document in read_all(path)] == expected()


def test_options_reach_the_objects(tmp_path: Path) -> None:
    argv = [
        "--output-dir",
        str(tmp_path),
        *ARGS,
        "--replicas",
        "2",
        "--max-replicas",
        "6",
        "--namespace",
        "serving",
        "--exposure",
        "Ingress",
        "--load-balancer-source-cidr",
        "10.0.0.0/16",
        "--allowed-namespace",
        "clients",
        "--cpu",
        "2",
        "--memory",
        "4Gi",
        "--workers",
        "2",
        "--startup-timeout-seconds",
        "600",
    ]
    assert main(argv) == 0
    assert read_all(tmp_path / "ml-inference.yaml") == expected(
        replicas=2,
        max_replicas=6,
        namespace="serving",
        exposure="Ingress",
        load_balancer_source_cidrs=("10.0.0.0/16",),
        allowed_namespaces=("clients",),
        cpu="2",
        memory="4Gi",
        environment=container_environment(workers=2),
        probes=Probes(startup_timeout_seconds=600),
    )


def test_an_existing_namespace_and_service_account_annotations_are_supported(tmp_path: Path) -> None:
    annotation = "example.com/owner=team-ml"
    argv = [
        "--output-dir",
        str(tmp_path),
        *ARGS,
        "--no-namespace",
        "--service-account-annotation",
        annotation,
    ]
    assert main(argv) == 0
    documents = read_all(tmp_path / "ml-inference.yaml")
    assert documents[0]["kind"] == "ServiceAccount"
    assert documents[0]["metadata"]["annotations"] == {"example.com/owner": "team-ml"}  # type: ignore[index]


def test_without_image_and_model_the_yaml_holds_envsubst_placeholders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output-dir", str(tmp_path)]) == 0
    text = (tmp_path / "ml-inference.yaml").read_text()
    assert "image: ${IMAGE_URI}" in text
    assert "value: ${MODEL_S3_BUCKET}" in text
    assert "value: ${MODEL_S3_KEY}" in text
    assert "${IMAGE_URI}, ${MODEL_S3_BUCKET}, ${MODEL_S3_KEY} left as placeholders" in capsys.readouterr().err


def test_an_invalid_value_exits_with_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--output-dir", str(tmp_path), *ARGS, "--replicas", "3", "--max-replicas", "2"])
    assert exit_info.value.code == 2
    assert "max_replicas must be >= replicas (3)" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_malformed_model_uri_exits_with_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--output-dir", str(tmp_path), "--model-s3-uri", "models/model.tar.gz"])
    assert "model_s3_uri must look like s3://BUCKET/KEY" in capsys.readouterr().err


def test_a_malformed_key_value_pair_exits_with_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--output-dir", str(tmp_path), *ARGS, "--env", "NO_EQUALS_SIGN"])
    assert "--env takes KEY=VALUE, got 'NO_EQUALS_SIGN'" in capsys.readouterr().err


def test_the_multi_line_loader_script_is_written_as_a_readable_block(tmp_path: Path) -> None:
    main(["--output-dir", str(tmp_path), *ARGS])
    assert (
        "        - |-\n          from __future__ import annotations\n"
        in (tmp_path / "ml-inference.yaml").read_text()
    )


def test_the_console_script_writes_yaml_that_kubernetes_validate_accepts_strictly(tmp_path: Path) -> None:
    files: list[str] = []
    for exposure in ("ClusterIP", "LoadBalancer", "Ingress"):
        out = tmp_path / exposure
        command = [str(VENV_BIN / "ml-inference-manifests"), "--output-dir", str(out), "--split", *ARGS]
        if exposure != "ClusterIP":
            command += ["--load-balancer-source-cidr", "10.0.0.0/16", "--allowed-namespace", "clients"]
        subprocess.run([*command, "--exposure", exposure], check=True, capture_output=True, timeout=60)
        files += map(str, sorted(out.iterdir()))
    for version in ("1.35.0", kubernetes_validate.latest_version()):
        completed = subprocess.run(
            [str(VENV_BIN / "kubernetes-validate"), "--strict", "--kubernetes-version", version, *files],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert completed.stdout.count(" passed for resource ") == len(files), completed.stdout


def test_a_load_balancer_without_its_source_cidrs_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["--output-dir", str(tmp_path), *ARGS, "--exposure", "LoadBalancer"])
    assert "needs load_balancer_source_cidrs" in capsys.readouterr().err
