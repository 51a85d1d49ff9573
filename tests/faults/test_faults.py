"""Every fault of `python -m bench faults`, run for real: how the run ends, and that nothing
else pays for it (the process stays up, no message is lost, a concurrent run is unharmed,
the failure arrives within its timeout + 2 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import CASES, FaultCase, run_case

# the one-line reason each failing or stopped run must give, as a user sees it
REASONS = {
    "model 500 (every attempt)": "InternalServerError: Error code: 500 - scripted fault: HTTP 500",
    "model never answers": "APITimeoutError: Request timed out.",
    "model drops the connection mid-SSE": "APIConnectionError: Connection error.",
    "model never says TERMINATE": "Maximum number of turns 6 reached.",
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault(case: FaultCase, tmp_path: Path) -> None:
    outcome = await run_case(case, tmp_path)
    shown = str(outcome)  # a str, so pytest shows all of it (an object's repr is cut at 240)
    assert outcome.ended == case.expect, shown
    assert outcome.process_up, shown
    assert outcome.lost == 0, shown
    assert outcome.seconds <= case.budget, shown
    if case.mcp_args == ["--exit-at-start"]:
        assert outcome.reason.endswith(
            ":10:33: MCP server 'flaky': could not start `python -m mcp_servers.testing --exit-at-start` "
            "(exited with status 1); stderr: testing server: refusing to start (--exit-at-start)"
        ), outcome.reason
        assert outcome.control == "none (scenario did not open)"
    else:
        assert outcome.control.startswith("ok in "), shown
    if case.name in REASONS:
        assert outcome.reason == REASONS[case.name]
    elif case.expect == "recovered":
        assert outcome.reason == "Text 'TERMINATE' mentioned"
    assert outcome.ok, shown


@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")
def test_gateway_sigkill_with_runs_in_flight_then_restart() -> None:
    from bench._faults_gateway import RUNS, gateway_sigkill

    outcome = gateway_sigkill()
    assert outcome.ended == "failed"
    assert outcome.reason.startswith("the gateway stopped while this run was in_progress"), outcome.reason
    assert outcome.detail == {"messages_seen": 2 * RUNS, "runs_failed": RUNS}  # task + planner, each
    assert (outcome.process_up, outcome.lost) == (True, 0)
    assert " rerun completed in " in outcome.control
    assert outcome.ok, outcome
