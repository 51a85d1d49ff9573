"""The one error of the knowledge code: a user-facing, one-line message."""

from __future__ import annotations

from agentteams import UserError


class KnowledgeError(UserError):
    """Indexing or searching cannot go on; `str()` is one line naming the path or model."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
