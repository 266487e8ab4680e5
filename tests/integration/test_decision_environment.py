"""The decision environment definition: `ansible-builder create` makes a complete context.

No container engine is needed for `create`; it validates the definition against
ansible-builder's v3 schema and writes the Containerfile and the files it copies. The
definition reads the collection tarball from ../build/, so the test lays out a copy of the
definition next to a freshly built tarball, as `make decision-environment` does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

VENV_BIN = Path(sys.executable).parent


def _requirements(text: str) -> list[str]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("-")]


@pytest.fixture(scope="module")
def context(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("decision-environment")
    shutil.copytree(project_root / "decision-environment", work / "decision-environment")
    subprocess.run(
        [VENV_BIN / "ansible-galaxy", "collection", "build", "--output-path", work / "build"],
        cwd=project_root,
        check=True,
        capture_output=True,
    )
    created = subprocess.run(
        [
            VENV_BIN / "ansible-builder",
            "create",
            "--file",
            work / "decision-environment" / "decision-environment.yml",
            "--context",
            work / "context",
            "--output-filename",
            "Containerfile",
        ],
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    return work / "context"


def _collection_version(project_root: Path) -> str:
    return str(yaml.safe_load((project_root / "galaxy.yml").read_text())["version"])


def test_the_context_carries_the_collection(context: Path, project_root: Path) -> None:
    name = f"durable-eda-{_collection_version(project_root)}.tar.gz"
    tarball = context / "_build" / "collections" / name
    with tarfile.open(tarball) as collection:
        names = set(collection.getnames())
        collection_requirements = collection.extractfile("requirements.txt")
        assert collection_requirements is not None
        inside = collection_requirements.read().decode()
    assert "extensions/eda/plugins/event_source/aws_sqs_queue.py" in names
    assert "extensions/eda/rulebooks/remediate_failures_controller.yml" in names
    assert "extensions/eda/plugins/event_source/credential_types/aws-sqs/injectors.yml" in names
    # ansible-builder's introspection installs a collection's requirements.txt as well.
    assert any(line.startswith("aiobotocore") for line in _requirements(inside))


def test_galaxy_installs_the_tarball_the_context_holds(context: Path) -> None:
    """The galaxy stage copies _build/ to /build and installs requirements.yml from there."""
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    (collection,) = requirements["collections"]
    assert collection["type"] == "file"
    assert (context / "_build" / Path(collection["name"]).relative_to("/build")).is_file()


def test_python_requirements_carry_aiobotocore_and_ansible_rulebook(
    context: Path, project_root: Path
) -> None:
    built = _requirements((context / "_build" / "requirements.txt").read_text())
    for line in _requirements((project_root / "requirements.txt").read_text()):
        assert line in built
    tested = [
        line
        for line in _requirements((project_root / "requirements-test.txt").read_text())
        if line.startswith("ansible-rulebook==")
    ]
    assert tested
    assert tested[0] in built


def test_the_image_runs_python_311_with_a_jdk(context: Path) -> None:
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "java-17-openjdk" in (context / "_build" / "bindep.txt").read_text()


def test_sigterm_reaches_ansible_rulebook(context: Path) -> None:
    """README: without -Xrs the JVM ends the process on SIGTERM before the source releases."""
    assert "ENV JAVA_TOOL_OPTIONS=-Xrs" in (context / "Containerfile").read_text()
