"""HTTP gateway: serves scenarios to other programs over an OpenAI-compatible API, with
persistent threads and runs, bearer keys and a live web playground at `/`.

    python -m gateway --port 8000
    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="...")
    client.chat.completions.create(model="travel_planning", messages=[...])

Runs are described by `teams.events` (RunRequest in, RunEvent out); a ScenarioRunner runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from gateway._app import create_app
    from gateway._config import GatewayConfig, default_db_path
    from gateway._runner import ScenarioRunner

# name -> module: imported on first use, so that `import gateway.spec` (and the CLI's
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "create_app": "gateway._app",
    "GatewayConfig": "gateway._config",
    "default_db_path": "gateway._config",
    "ScenarioRunner": "gateway._runner",
}

__all__ = ["GatewayConfig", "ScenarioRunner", "create_app", "default_db_path"]


__getattr__ = lazy_exports(__name__, _EXPORTS)
