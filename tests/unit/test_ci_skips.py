"""Under CI=true a skip fails with its reason (the hooks in tests/conftest.py); xfail stays.

Each case runs pytest in a subprocess on a small test file, with tests/conftest.py loaded as a
plugin (``-p tests.conftest``) and an empty ini so that the project's own options stay out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SKIPS = """
import pytest

@pytest.fixture
def needs_data():
    pytest.skip("data not found")

def test_passes():
    pass

def test_skip_call():
    pytest.skip("no shared dir")

@pytest.mark.skip(reason="marked off")
def test_skip_marker():
    pass

@pytest.mark.skipif(True, reason="condition true")
def test_skipif_marker():
    pass

def test_skipping_fixture(needs_data):
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail_marker():
    assert False

def test_xfail_call():
    pytest.xfail("later")
"""

MODULE_SKIP = """
import pytest

pytest.skip("module off", allow_module_level=True)

def test_never_collected():
    pass
"""


def run_pytest(tmp_path: Path, source: str, ci: str | None) -> tuple[int, str]:
    (tmp_path / "test_case.py").write_text(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # faster; the hooks need no plugin
    if ci is not None:
        env["CI"] = ci
    args = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini")]
    args += ["--rootdir", str(tmp_path), "--color=no", "-rA", str(tmp_path / "test_case.py")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        check=False,
        cwd=ROOT,  # so that `tests.conftest` imports
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout


def has_line(output: str, pattern: str) -> bool:
    return re.search(f"^{pattern}$", output, re.MULTILINE) is not None


@pytest.mark.parametrize("ci", [None, "false"])
def test_without_ci_skips_stay_skips(tmp_path: Path, ci: str | None) -> None:
    code, out = run_pytest(tmp_path, SKIPS, ci)
    assert code == 0, out
    for reason in ("no shared dir", "marked off", "condition true", "data not found"):
        assert has_line(out, rf"SKIPPED \[1\] \S+: {reason}"), out
    assert "CI=true" not in out
    assert has_line(out, r"=+ 1 passed, 4 skipped, 2 xfailed in .*"), out


def test_under_ci_skips_fail_with_their_reason(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, SKIPS, "true")
    assert code == 1, out
    # A skip in the test body fails the test; one in setup (marker, fixture) is a setup error.
    assert has_line(out, r"FAILED \S+::test_skip_call - skipped under CI=true: no shared dir")
    for test, reason in [
        ("test_skip_marker", "marked off"),
        ("test_skipif_marker", "condition true"),
        ("test_skipping_fixture", "data not found"),
    ]:
        assert has_line(out, rf"ERROR \S+::{test} - skipped under CI=true: {reason}"), out
    assert has_line(out, r"XFAIL \S+::test_xfail_marker - known bug"), out
    assert has_line(out, r"XFAIL \S+::test_xfail_call - later"), out
    assert "SKIPPED" not in out
    assert has_line(out, r"=+ 1 failed, 1 passed, 2 xfailed, 3 errors in .*"), out


def test_under_ci_a_module_level_skip_is_a_collection_error(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, MODULE_SKIP, "true")
    assert code == 2, out  # interrupted: errors during collection
    assert has_line(out, r"ERROR \S+test_case.py - skipped under CI=true: module off"), out
