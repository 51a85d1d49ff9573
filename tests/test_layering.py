"""The package layering of DESIGN.md: imports point only down, and importing starts nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["agentteams", "serving", "tools", "mcp_servers", "agents", "teams", "scenarios", "gateway"]
ALLOWED = {
    "agentteams": set(),
    "serving": {"agentteams"},
    "tools": {"agentteams"},
    "mcp_servers": {
        "agentteams",
        "serving",
    },  # the search server finds its embedding endpoint as scenarios do
    "agents": {"agentteams", "serving", "tools", "mcp_servers"},
    "teams": {"agentteams", "serving", "tools", "mcp_servers", "agents"},
    "scenarios": {"agentteams", "serving", "tools", "mcp_servers", "agents", "teams"},
    "gateway": {"agentteams", "serving", "tools", "mcp_servers", "agents", "teams", "scenarios"},
}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def test_imports_point_only_down_the_layers() -> None:
    wrong = []
    for package in PACKAGES:
        for module in (ROOT / package).rglob("*.py"):
            if module.name == "testing.py":  # the scripted server is a test helper users import
                continue
            for target in _imported_packages(module) - ALLOWED[package] - {package}:
                wrong.append(f"{module.relative_to(ROOT)} imports {target}")
    assert wrong == []


def _module_graph() -> dict[str, set[str]]:
    """Every project module and the project modules it imports (anywhere in it, lazily too)."""
    files: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                # `from package import submodule` imports the submodule
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = _module_graph()
    assert len(graph) > 60 and graph["serving._endpoint"] >= {"serving._errors", "serving._auto"}
    assert _cycles(graph) == []
    # the check finds a circle where there is one
    assert _cycles({**graph, "serving._errors": {"serving._endpoint"}}) != []


def test_importing_every_package_starts_no_thread_and_connects_nowhere() -> None:
    code = (
        "import socket, threading\n"
        "opened = []\n"
        "def spy(self, address):\n"
        "    opened.append(address)\n"
        "socket.socket.connect = spy\n"
        f"import {', '.join(PACKAGES)}\n"
        "print(threading.active_count(), len(opened))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "0"]
