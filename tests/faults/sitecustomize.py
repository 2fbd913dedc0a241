"""Fault injection for the crash-safety tests, loaded by worker subprocesses whose PYTHONPATH
starts with this directory and whose environment sets FEEDPIPE_TEST_FAULTS=1.

Everything stays real except one thing: trafilatura's extraction, on a page that carries
``<div id="feedpipe-fault">crash</div>``, kills its process at once (as a segfault or the OOM
killer would), and on one with ``hang`` it hangs, ignoring the soft time limit (as a C
extension stuck in a pathological document would). Other pages are extracted normally.
"""

from __future__ import annotations

import os

if os.environ.get("FEEDPIPE_TEST_FAULTS") == "1":
    import time
    from typing import Any

    import trafilatura

    _real_bare_extraction = trafilatura.bare_extraction

    def _faulty_bare_extraction(tree: Any, *args: Any, **kwargs: Any) -> Any:
        marker = (
            tree.get_element_by_id("feedpipe-fault", None)
            if hasattr(tree, "get_element_by_id")
            else None
        )
        fault = marker.text_content().strip() if marker is not None else ""
        if fault == "crash":
            os._exit(1)
        if fault == "hang":
            while True:
                try:
                    time.sleep(3600)
                except BaseException:  # noqa: BLE001  the soft time limit, ignored on purpose
                    continue
        return _real_bare_extraction(tree, *args, **kwargs)

    trafilatura.bare_extraction = _faulty_bare_extraction
