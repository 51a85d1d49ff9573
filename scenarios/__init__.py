"""Scenarios: YAML files that declare models, MCP servers, tools, agents and a team.

from scenarios import load_scenario
async with load_scenario("travel_planning") as scenario:
    result = await scenario.run("Plan a 3 day trip to Nepal.")
"""

from scenarios._errors import ScenarioError
from scenarios._loader import ScenarioInfo, list_scenarios
from scenarios._runtime import Scenario, load_scenario
from scenarios.spec import ScenarioSpec, json_schema
from teams import RunEvent, RunResult, Turn, Usage

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
