"""What the installed package imports is what pyproject.toml declares, and the lock pins it.

`pip install .` installs only declared dependencies (and theirs): a module imported by
pipeline/ or workers/ that arrives only through a dev tool works in CI and fails for users.
The user-path stage of .ci/run proves the same by running the product without dev extras.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"pipeline", "workers"}


def project() -> dict[str, object]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def declared() -> set[str]:
    dependencies = project()["dependencies"]
    assert isinstance(dependencies, list)
    return {canonicalize_name(Requirement(d).name) for d in dependencies}


def imported_modules() -> dict[str, str]:
    """Top-level third-party module -> one file that imports it, over the shipped packages."""
    found: dict[str, str] = {}
    for package in sorted(FIRST_PARTY):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    owners = packages_distributions()
    wanted = declared()
    missing = {
        module: where
        for module, where in imported_modules().items()
        if not {canonicalize_name(d) for d in owners.get(module, [])} & wanted
    }
    assert not missing, f"imported but not declared in [project.dependencies]: {missing}"


def test_the_lock_pins_every_declared_dependency() -> None:
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    assert declared() <= pinned, f"not in constraints.txt: {declared() - pinned}"


def test_the_kombu_redis_transport_has_what_it_imports() -> None:
    """celery[redis]: kombu's Redis transport imports `packaging` (kombu 5.7)."""
    assert any(
        canonicalize_name(Requirement(d).name) == "celery" and "redis" in Requirement(d).extras
        for d in project()["dependencies"]  # type: ignore[attr-defined]
    )
