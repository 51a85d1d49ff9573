"""Model servers: endpoint discovery, the embedded CPU server, the vLLM launcher and its profiles.

Importing this package starts nothing and touches no network.
"""

from serving._endpoint import Endpoint, list_models, open_endpoint, server_down
from serving._errors import EndpointError
from serving._profiles import ModelInfoLookup, model_info_for

__all__ = [
    "Endpoint",
    "EndpointError",
    "ModelInfoLookup",
    "list_models",
    "model_info_for",
    "open_endpoint",
    "server_down",
]
