"""Every module, event source and event filter says in which release it came (version_added)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from tools import generate_schemas

ROOT = generate_schemas.ROOT
DOCUMENTED = sorted((ROOT / "plugins" / "modules").glob("*.py")) + generate_schemas.plugin_files()
COLLECTION_VERSION = Version(yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"])


def version(value: Any, where: str) -> Version:
    assert isinstance(value, str), f"{where}: version_added must be a string such as 0.1.0"
    return Version(value)


@pytest.mark.parametrize("path", DOCUMENTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_version_added_is_set_and_released_by_this_version(path: Path) -> None:
    doc = generate_schemas.documentation(path)
    assert "version_added" in doc, f"{path.name}: DOCUMENTATION has no version_added"
    added = version(doc["version_added"], path.name)
    assert added <= COLLECTION_VERSION, f"{path.name}: version_added {added} is after galaxy.yml's"
    for name, option in (doc.get("options") or {}).items():
        if "version_added" in option:
            option_added = version(option["version_added"], f"{path.name} option {name}")
            assert added <= option_added <= COLLECTION_VERSION, (
                f"{path.name}: option {name} was added in {option_added}, outside "
                f"{added}..{COLLECTION_VERSION}"
            )
