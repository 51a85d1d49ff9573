"""The states of a gateway run, as the Assistants API names them (and as the database stores them)."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["ACTIVE_STATUSES", "ActiveStatus", "LastErrorCode", "Outcome", "RunKind", "RunStatus"]

ActiveStatus = Literal["queued", "in_progress", "cancelling"]
Outcome = Literal["completed", "failed", "cancelled", "expired"]  # how a run ended
RunStatus = ActiveStatus | Outcome  # queued -> in_progress [-> cancelling] -> an outcome
LastErrorCode = Literal["server_error", "rate_limit_exceeded", "invalid_prompt"]
RunKind = Literal["chat.completion", "thread.run", "response"]  # what a usage record was spent on

ACTIVE_STATUSES: tuple[ActiveStatus, ...] = get_args(ActiveStatus)
