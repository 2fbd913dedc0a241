"""Every hostile-input target of tests/properties.py at hypothesis' default size: a typed
result or a feedpipe error, never another exception. `bench/fuzz.py` runs the same longer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.properties import TARGETS, Target


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_any_input_gives_a_typed_result_or_a_feedpipe_error(target: Target) -> None:
    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(target.strategy)
    def run(value: Any) -> None:
        target.check(value)

    run()
