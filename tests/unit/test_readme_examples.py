"""Every ```python block in README.md and docs/*.md runs as written (from the repository root)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.cdk import ROOT

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples() -> list[Any]:
    params = []
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not document.is_file():
            continue
        text = document.read_text()
        for number, match in enumerate(_BLOCK.finditer(text), start=1):
            line = text.count("\n", 0, match.start()) + 2
            params.append(pytest.param(match.group(1), id=f"{document.relative_to(ROOT)}:{line}#{number}"))
    return params


EXAMPLES = _examples()


def test_the_documentation_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("source", EXAMPLES)
def test_documentation_example_runs(
    source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, demo_model_artifact: Path
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(source, "<example>", "exec"), namespace)  # noqa: S102 - the example is ours, from this repository
    app = namespace.get("app")
    if app is not None and hasattr(app, "synth"):
        app.synth()
