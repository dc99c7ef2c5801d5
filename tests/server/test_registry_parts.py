"""Parts of the multi-model registry that HTTP does not reach: names, sizes, memory, the shared table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sklearn_server.errors import BadRequestError
from sklearn_server.registry import (
    MAX_NAME_CHARS,
    ModelTable,
    available_memory_bytes,
    check_model_name,
    directory_size,
)

MIB = 1024 * 1024


@pytest.mark.parametrize(
    "name", ["iris", "a1b2c3d4e5f60718293a4b5c6d7e8f90", "churn-v2.1_final", "x" * MAX_NAME_CHARS]
)
def test_a_model_name_is_any_visible_ascii_but_a_slash(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "with space", "tab\there", "é", "x" * (MAX_NAME_CHARS + 1)])
def test_a_name_that_cannot_be_a_path_segment_is_refused(name: str) -> None:
    with pytest.raises(BadRequestError, match=r"model_name .* is not a model name"):
        check_model_name(name)


def test_a_name_that_is_not_a_string_is_refused_naming_its_type() -> None:
    with pytest.raises(BadRequestError, match="model_name must be a string, got a number"):
        check_model_name(7)


def test_the_size_of_a_model_directory_counts_its_files_but_not_links(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "model.joblib").write_bytes(b"x" * 1000)
    (tmp_path / "code" / "inference.py").write_bytes(b"y" * 24)
    (tmp_path / "elsewhere").symlink_to("/etc/passwd")

    assert directory_size(tmp_path) == 1024


def test_the_memory_left_is_the_cgroup_limit_less_its_usage(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text(f"{100 * MIB}\n")
    (tmp_path / "memory.current").write_text(f"{30 * MIB}\n")

    assert available_memory_bytes(tmp_path) == 70 * MIB


def test_without_a_cgroup_limit_the_memory_left_is_what_the_host_has_available(tmp_path: Path) -> None:
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text(f"{30 * MIB}\n")
    host_available = next(
        int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemAvailable:")
    )

    left = available_memory_bytes(tmp_path)

    assert left is not None
    assert abs(left - host_available) < 256 * MIB  # read moments apart on a busy machine


def test_the_model_table_reads_back_what_was_written_last() -> None:
    table = ModelTable()
    table.write({"a": "/opt/ml/models/a/model"})
    table.write({"a": "/opt/ml/models/a/model", "b": "/opt/ml/models/b/model"})

    assert table.read() == {"a": "/opt/ml/models/a/model", "b": "/opt/ml/models/b/model"}


def test_a_table_too_big_to_keep_leaves_the_previous_one_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = ModelTable()
    table.write({"a": "/opt/ml/models/a/model"})
    huge = {f"model-{index}": "/opt/ml/models/" + "x" * 1000 for index in range(3000)}

    with caplog.at_level(logging.WARNING):
        table.write(huge)

    assert table.read() == {"a": "/opt/ml/models/a/model"}
    assert "too many to remember" in caplog.text
