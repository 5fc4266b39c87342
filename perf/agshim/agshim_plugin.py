"""pytest plugin for perf/autograd_shim.py: fails a test whose recorded
checks failed (autograd.test_util records them instead of raising) and
writes one JSON line per test: outcome, checks run and failed, real and
complex apart, and the first line of every error."""
import json
import os

import pytest

from autograd import test_util

_OUT = os.environ.get("AGSHIM_RECORD")


def _line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    test_util.RECORDS.clear()
    outcome = yield
    item._agshim = list(test_util.RECORDS)
    failed = [r["error"] for r in test_util.RECORDS if r["error"] is not None]
    if failed and outcome.excinfo is None:
        outcome.force_exception(failed[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not _OUT or call.when != "call" and not (rep.failed or rep.skipped):
        return
    recs = getattr(item, "_agshim", [])
    row = {"nodeid": item.nodeid, "when": call.when, "outcome": rep.outcome,
           "real_checks": sum(not r["complex"] for r in recs),
           "complex_checks": sum(r["complex"] for r in recs),
           "real_errors": [_line(r["error"]) for r in recs if r["error"] is not None and not r["complex"]],
           "complex_errors": [_line(r["error"]) for r in recs if r["error"] is not None and r["complex"]]}
    exc = call.excinfo
    recorded = {id(r["error"]) for r in recs if r["error"] is not None}
    if exc is not None and id(exc.value) not in recorded:
        row["other_error"] = _line(exc.value)      # raised outside check_grads
    with open(_OUT, "a") as fh:
        fh.write(json.dumps(row) + "\n")
