"""AWS Control Tower proactive controls, as cfn-guard rules, on synthesized templates.

The rules and the cfn-guard binary come from the pinned PyPI package cdklabs-cdk-validator-cfnguard: its wheel
holds the jsii tarball of the npm package, which carries ``rules/control-tower/cfn-guard/`` and
``bin/<platform>/<arch>/cfn-guard``. They are unpacked once per process into a temporary folder and run on
the templates as ``cfn-guard validate`` would run in a pipeline.

An exemption is written next to its resource (``ml_inference_cdk.constructs.control_tower.exempt``), in the
template's ``Metadata`` under ``cfn-guard``; ``failures()`` reports each failing (control, resource) pair
and ``unexplained()`` keeps the ones no exemption answers.
"""

from __future__ import annotations

import atexit
import functools
import json
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from ml_inference_cdk.constructs.control_tower import METADATA_KEY

PACKAGE = "cdklabs-cdk-validator-cfnguard"
_CONTROL = re.compile(r"\[(CT\.[A-Z0-9]+\.PR\.\d+)\]")
_RESOURCE = re.compile(r'"path": "/Resources/([^/"]+)')


@dataclass(frozen=True, order=True)
class Failure:
    control: str
    """The Control Tower control id, e.g. CT.S3.PR.2."""
    resource: str
    """The logical id of the failing resource."""


@functools.cache
def rule_set() -> tuple[Path, Path]:
    """(cfn-guard binary, the Control Tower rules folder), unpacked from the installed wheel."""
    tarballs = list((resources.files("cdklabs.cdk_validator_cfnguard") / "_jsii").iterdir())
    (tarball,) = [Path(str(entry)) for entry in tarballs if entry.name.endswith(".jsii.tgz")]
    target = Path(tempfile.mkdtemp(prefix="cfn-guard-"))
    atexit.register(shutil.rmtree, target, True)
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter="tar")
    system = {"linux": "ubuntu", "darwin": "macos"}[sys.platform]
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}[
        platform.machine().lower()
    ]
    binary = target / "package" / "bin" / system / machine / "cfn-guard"
    binary.chmod(0o755)
    return binary, target / "package" / "rules" / "control-tower" / "cfn-guard"


def version() -> str:
    return metadata.version(PACKAGE)


def failures(template_path: Path) -> set[Failure]:
    """Every (control, resource) pair of ``template_path`` that a Control Tower control rejects."""
    binary, rules = rule_set()
    completed = subprocess.run(
        [
            str(binary),
            "validate",
            "--data",
            str(template_path),
            "--rules",
            str(rules),
            "--output-format",
            "json",
            "--show-summary",
            "none",
            "--structured",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    # cfn-guard exits 19 when a rule fails, 0 when all pass; anything else is its own error.
    assert completed.returncode in (0, 19), completed.stderr
    found: set[Failure] = set()
    for report in json.loads(completed.stdout):
        for check in report["not_compliant"]:
            text = json.dumps(check)
            controls = set(_CONTROL.findall(text))
            for control in controls:
                found |= {Failure(control, resource) for resource in _RESOURCE.findall(text)}
    return found


def exemptions(template: dict[str, Any]) -> dict[Failure, str]:
    """Each exemption written on a resource of ``template``, with its reason."""
    found: dict[Failure, str] = {}
    for logical_id, resource in template["Resources"].items():
        for entry in resource.get("Metadata", {}).get(METADATA_KEY, {}).get("exemptions", []):
            found[Failure(entry["id"], logical_id)] = entry["reason"]
    return found


def unexplained(template_path: Path) -> list[Failure]:
    """The failures of ``template_path`` that no exemption on their resource answers."""
    template = json.loads(template_path.read_text())
    return sorted(failures(template_path) - exemptions(template).keys())
