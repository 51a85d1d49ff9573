"""HTTP gateway: serves scenarios to other programs over an OpenAI-compatible API, with
persistent threads and runs, bearer keys and a live web playground at `/`.

    python -m gateway --port 8000
    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="...")
    client.chat.completions.create(model="travel_planning", messages=[...])

Runs are described by `teams.events` (RunRequest in, RunEvent out); a ScenarioRunner runs them.
"""

from ._app import create_app
from ._config import GatewayConfig, default_db_path
from ._runner import RemoteRunError, ScenarioRunner

__all__ = ["GatewayConfig", "RemoteRunError", "ScenarioRunner", "create_app", "default_db_path"]
