"""tools/check-prerequisites.sh: one line that says what to install, or silence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def fake_java(directory: Path, version: str) -> Path:
    java = directory / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(0o755)
    return directory


def check(
    project_root: Path, python: str, java_home: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(project_root / "tools" / "check-prerequisites.sh"), python, *options],
        env={**os.environ, "JAVA_HOME": str(java_home)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_complete_machine_passes_silently(project_root: Path, tmp_path: Path) -> None:
    result = check(project_root, sys.executable, fake_java(tmp_path, "17.0.15"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_an_old_jdk_is_named_with_what_to_install(project_root: Path, tmp_path: Path) -> None:
    result = check(project_root, sys.executable, fake_java(tmp_path, "11.0.2"))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "JDK 17" in result.stderr
    assert "found: 11" in result.stderr


def test_python_only_ignores_the_jdk(project_root: Path, tmp_path: Path) -> None:
    result = check(project_root, sys.executable, fake_java(tmp_path, "11.0.2"), "--python-only")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false"])
@pytest.mark.parametrize("options", [(), ("--python-only",)])
def test_a_missing_python_is_named(
    project_root: Path, tmp_path: Path, python: str, options: tuple[str, ...]
) -> None:
    result = check(project_root, python, fake_java(tmp_path, "17"), *options)
    assert result.returncode == 1
    assert "Python 3.11 or newer" in result.stderr
