"""One error tree: every exception class the project defines derives from AgentTeamsError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import agentteams
from agentteams import AgentTeamsError, McpServerError, ModelServerError, ModelServerUnavailable, UserError

PACKAGES = ["agentteams", "serving", "tools", "mcp_servers", "agents", "teams", "scenarios", "gateway"]


def _project_exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
        for name in names:
            if name.endswith("__main__"):
                continue
            module = importlib.import_module(name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == name and issubclass(cls, BaseException):
                    found.append(cls)
    return found


def test_every_project_exception_derives_from_the_base() -> None:
    classes = _project_exception_classes()
    names = {f"{c.__module__}.{c.__qualname__}" for c in classes}
    # the walk really finds the project's errors, not an empty list
    assert {"scenarios._errors.ScenarioError", "serving._errors.EndpointError"} <= names
    assert (
        sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, AgentTeamsError))
        == []
    )


def test_the_branches_of_the_tree() -> None:
    from mcp_servers import McpStartError
    from scenarios import ScenarioError
    from scenarios._yaml import YamlProblem
    from serving import EndpointError
    from serving._errors import ServingError
    from tools import ToolImportError

    assert all(issubclass(c, UserError) for c in (ScenarioError, YamlProblem, ToolImportError))
    assert all(issubclass(c, ModelServerError) for c in (EndpointError, ServingError, ModelServerUnavailable))
    assert issubclass(McpStartError, McpServerError)
    assert agentteams.__all__ == [
        "AgentTeamsError",
        "McpServerError",
        "ModelServerError",
        "ModelServerUnavailable",
        "UserError",
    ]
