"""The error type of the serving package's own operations (start, assemble, launch)."""

from __future__ import annotations

from serving._endpoint import EndpointError


class ServingError(EndpointError):
    """A bundled server could not be prepared or started; `str()` is one line saying what to do.

    It is an EndpointError so that an `auto` endpoint failing to start surfaces as one type.
    """

    def __init__(self, message: str, *, url: str = "auto") -> None:
        super().__init__(message, url=url)
