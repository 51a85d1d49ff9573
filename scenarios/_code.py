"""The code interpreter's sandbox for a scenario, checked when the scenario opens."""

from __future__ import annotations

import sys

from scenarios._loader import LoadedSpec
from tools import CODE_TOOL, Sandbox, SandboxUnavailable


def _where(loaded: LoadedSpec) -> tuple[str | int, ...]:
    """`code.sandbox` when the file has a `code:` section, else the first `tools: [python]` entry."""
    if ("code",) in loaded.doc.keys:
        return ("code", "sandbox")
    for i, agent in enumerate(loaded.spec.agents):
        if CODE_TOOL in agent.tools:
            return ("agents", i, "tools", agent.tools.index(CODE_TOOL))
    return ("code",)


async def open_sandbox(loaded: LoadedSpec) -> Sandbox:
    """The sandbox of the `code:` section; a ScenarioError at the YAML line when it cannot work."""
    spec = loaded.spec.code
    sandbox = Sandbox(spec)
    try:
        sandbox.check()
        missing = await sandbox.missing_packages(spec.packages)
    except SandboxUnavailable as exc:
        raise loaded.error_at(_where(loaded), str(exc)) from exc
    if missing:
        index = spec.packages.index(missing[0])
        raise loaded.error_at(
            ("code", "packages", index),
            f"package {missing[0]!r} is not importable by {sys.executable} (the sandbox's Python): "
            f"pip install {missing[0]}"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""),
        )
    return sandbox
