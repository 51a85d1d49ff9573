"""Model servers: endpoint discovery, the embedded CPU server, the vLLM launcher and its profiles.

Importing this package starts nothing and touches no network.
"""

from serving._endpoint import (
    Endpoint,
    entry_capabilities,
    list_model_entries,
    list_models,
    open_endpoint,
    resolve_model_id,
    server_down,
)
from serving._errors import EndpointError
from serving._profiles import ModelInfoLookup, model_info_for
from serving._wire import CAPABILITIES, Capability

__all__ = [
    "CAPABILITIES",
    "Capability",
    "Endpoint",
    "EndpointError",
    "ModelInfoLookup",
    "entry_capabilities",
    "list_model_entries",
    "list_models",
    "model_info_for",
    "open_endpoint",
    "resolve_model_id",
    "server_down",
]
