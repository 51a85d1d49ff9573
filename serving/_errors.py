"""The serving package's errors: an endpoint that cannot be used, a server that cannot start."""

from __future__ import annotations

from agentteams import ModelServerError


class EndpointError(ModelServerError):
    """The model server cannot be used; `str()` is one line naming the URL and what to do."""


class ServingError(EndpointError):
    """A bundled server could not be prepared or started; `str()` is one line saying what to do.

    It is an EndpointError so that an `auto` endpoint failing to start surfaces as one type.
    """

    def __init__(self, message: str, *, url: str = "auto") -> None:
        super().__init__(message, url=url)
