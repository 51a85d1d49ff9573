"""Scenarios: YAML files that declare models, MCP servers, tools, agents and a team.

from scenarios import load_scenario
async with load_scenario("travel_planning") as scenario:
    result = await scenario.run("Plan a 3 day trip to Nepal.")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from scenarios._errors import ScenarioError
    from scenarios._loader import ScenarioInfo, list_scenarios
    from scenarios._runtime import Scenario, load_scenario
    from scenarios.spec import ScenarioSpec, json_schema
    from teams import RunEvent, RunResult, Turn, Usage

# name -> module: imported on first use, so that `import scenarios.spec` (and the CLI's
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "ScenarioError": "scenarios._errors",
    "ScenarioInfo": "scenarios._loader",
    "list_scenarios": "scenarios._loader",
    "Scenario": "scenarios._runtime",
    "load_scenario": "scenarios._runtime",
    "ScenarioSpec": "scenarios.spec",
    "json_schema": "scenarios.spec",
    "RunEvent": "teams",
    "RunResult": "teams",
    "Turn": "teams",
    "Usage": "teams",
}

__all__ = [
    "RunEvent",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "ScenarioInfo",
    "ScenarioSpec",
    "Turn",
    "Usage",
    "json_schema",
    "list_scenarios",
    "load_scenario",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
