"""Synthesize the real app and read what the checkers said about it (cdk-nag, cfn-lint)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

_HASH = re.compile(r"[0-9a-f]{64}")


def load_app_module() -> ModuleType:
    """Import the repository's app.py (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("ml_inference_app", ROOT / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class SynthesizedApp:
    outdir: Path

    def template(self, stack_name: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.outdir / f"{stack_name}.template.json").read_text())
        return result

    def template_paths(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))

    def nag_report(self) -> dict[str, Any]:
        """cdk-nag's AwsSolutions plugin report from cdk.out/validation-report.json."""
        report = json.loads((self.outdir / "validation-report.json").read_text())
        (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
        result: dict[str, Any] = plugin
        return result


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> SynthesizedApp:
    """Synthesize every stack of app.py into ``outdir`` with cdk-nag applied, as `cdk synth` does."""
    app = load_app_module().create_app(outdir=str(outdir), context=context or {})
    app.synth()
    return SynthesizedApp(outdir)


def cfn_lint(templates: list[Path]) -> list[dict[str, Any]]:
    """Run the real cfn-lint CLI; return every finding (errors, warnings and informational)."""
    completed = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), "--format", "json", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if not completed.stdout.strip():  # no findings, or cfn-lint itself failed
        assert completed.returncode == 0, completed.stderr
        return []
    findings: list[dict[str, Any]] = json.loads(completed.stdout)
    return findings


def normalized(template: dict[str, Any]) -> Any:
    """The template with asset hashes replaced, so snapshots change only when the infrastructure does."""
    return json.loads(_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True)))


def synth_example(example: Path, venv: Path, outdir: Path, env: Mapping[str, str] | None = None) -> Path:
    """``cdk synth`` of an example app run by ``venv``'s python3 (the installed wheel), as a user's app runs.

    Node (24) and the pinned CDK CLI come from this repository's tooling; PYTHONPATH and VIRTUAL_ENV are
    dropped so nothing but the wheel is importable. Returns ``outdir``.
    """
    environment = {
        **os.environ,
        **(env or {}),
        "PATH": os.pathsep.join([str(venv / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]),
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    environment.pop("PYTHONPATH", None)
    environment.pop("VIRTUAL_ENV", None)
    from tests.support.commands import run

    run(
        [str(ROOT / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--output", str(outdir)],
        cwd=example,
        env=environment,
    )
    return outdir
