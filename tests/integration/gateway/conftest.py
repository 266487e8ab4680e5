"""Fixtures for the tests that run this collection's modules and playbooks."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def collections_path(project_root: Path, tmp_path: Path) -> Path:
    """The working tree as the durable.eda collection, as ansible-playbook looks it up."""
    root = tmp_path / "collections"
    (root / "ansible_collections" / "durable").mkdir(parents=True)
    (root / "ansible_collections" / "durable" / "eda").symlink_to(project_root)
    return root
