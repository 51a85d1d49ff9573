"""Model servers: endpoint discovery, the embedded CPU server, the vLLM launcher and its profiles.

Importing this package starts nothing and touches no network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentteams._lazy import lazy_exports

if TYPE_CHECKING:
    from serving._capabilities import CAPABILITIES, Capability
    from serving._endpoint import (
        Endpoint,
        entry_capabilities,
        list_model_entries,
        list_models,
        open_endpoint,
        resolve_model_id,
        server_down,
    )
    from serving._engine import detect_engine
    from serving._errors import EndpointError
    from serving._profiles import ModelInfoLookup, model_info_for

# name -> module: imported on first use, so that `python -m serving status` (and the other
# quick commands) need none of the heavy libraries the builders use
_EXPORTS = {
    "CAPABILITIES": "serving._capabilities",
    "Capability": "serving._capabilities",
    "detect_engine": "serving._engine",
    "Endpoint": "serving._endpoint",
    "entry_capabilities": "serving._endpoint",
    "list_model_entries": "serving._endpoint",
    "list_models": "serving._endpoint",
    "open_endpoint": "serving._endpoint",
    "resolve_model_id": "serving._endpoint",
    "server_down": "serving._endpoint",
    "EndpointError": "serving._errors",
    "ModelInfoLookup": "serving._profiles",
    "model_info_for": "serving._profiles",
}

__all__ = [
    "CAPABILITIES",
    "Capability",
    "Endpoint",
    "EndpointError",
    "ModelInfoLookup",
    "detect_engine",
    "entry_capabilities",
    "list_model_entries",
    "list_models",
    "model_info_for",
    "open_endpoint",
    "resolve_model_id",
    "server_down",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
