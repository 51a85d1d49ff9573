"""The package layering of DESIGN.md: imports point only down, and importing starts nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["serving", "tools", "mcp_servers", "agents", "teams", "scenarios", "gateway"]
ALLOWED = {
    "serving": set(),
    "tools": set(),
    "mcp_servers": {"serving"},  # the search server finds its embedding endpoint as scenarios do
    "agents": {"serving", "tools", "mcp_servers"},
    "teams": {"serving", "tools", "mcp_servers", "agents"},
    "scenarios": {"serving", "tools", "mcp_servers", "agents", "teams"},
    "gateway": {"serving", "tools", "mcp_servers", "agents", "teams", "scenarios"},
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
