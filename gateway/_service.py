"""The gateway's process-wide state, shared by the HTTP handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request

from ._auth import Caller, ConcurrencyLimiter, KeyRing
from ._config import GatewayConfig
from ._errors import GatewayError
from ._execution import Execution
from ._runner import RunEvent, RunRequest, ScenarioRunner, ScenarioSummary, UpstreamError, describe_failure
from ._store import Store

if TYPE_CHECKING:
    from ._files import FileStore

__all__ = ["Gateway", "caller", "gateway", "upstream_error"]

_log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, config: GatewayConfig, runner: ScenarioRunner, store: Store) -> None:
        self.config = config
        self.runner = runner
        self.store = store
        self.keys = KeyRing(config.keys)
        self.limiter = ConcurrencyLimiter(config.max_concurrent_per_key)
        self.slots = asyncio.Semaphore(config.max_active_runs)
        self.executions: set[Execution] = set()
        self.thread_runs: dict[str, Execution] = {}
        self.files: FileStore | None = None  # set by the app once its file store is open

    def scenario(self, name: str) -> ScenarioSummary:
        """Look a scenario up by name (a name is never used as a path)."""
        for summary in self.runner.scenarios():
            if summary.name == name:
                return summary
        raise GatewayError(
            404, f"The model '{name}' does not exist (no such scenario)", "model_not_found", param="model"
        )

    def start(
        self,
        scenario: str,
        request: RunRequest,
        caller: Caller,
        *,
        kind: str,
        on_start: Callable[[Execution], Awaitable[None]] | None = None,
        on_event: Callable[[Execution, RunEvent], Awaitable[None]] | None = None,
        on_done: Callable[[Execution], Awaitable[None]] | None = None,
    ) -> Execution:
        """Start a run counted against the caller's key (429 beyond its limit)."""
        self.limiter.acquire(caller.key_id)

        async def done(execution: Execution) -> None:
            self.limiter.release(caller.key_id)
            self.executions.discard(execution)
            try:
                if on_done is not None:
                    await on_done(execution)
            finally:
                usage = execution.usage
                if execution.started_at is not None:
                    await self.store.record_usage(
                        key_id=caller.key_id,
                        user_id=caller.user_id,
                        scenario=scenario,
                        kind=kind,
                        status=execution.outcome or "failed",
                        prompt=usage.prompt_tokens,
                        completion=usage.completion_tokens,
                    )

        try:
            execution = Execution(
                self.runner,
                scenario,
                request,
                timeout_s=self.config.run_timeout_s,
                slots=self.slots,
                on_start=on_start,
                on_event=on_event,
                on_done=done,
            )
        except BaseException:
            self.limiter.release(caller.key_id)
            raise
        self.executions.add(execution)
        return execution

    async def shutdown(self) -> None:
        pending = list(self.executions)
        for execution in pending:
            execution.task.cancel()
        if pending:
            await asyncio.gather(*(e.done.wait() for e in pending))


def upstream_error(exc: BaseException) -> GatewayError:
    """The HTTP error for a run that failed with `exc`."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, UpstreamError):
        return GatewayError(502, str(exc), "model_server_unavailable")
    if isinstance(exc, TimeoutError):
        return GatewayError(504, str(exc) or "the run timed out", "run_timeout")
    return GatewayError(500, f"the team failed: {describe_failure(exc)}", "run_failed")


def gateway(request: Request) -> Gateway:
    gw = request.app.state.gateway
    assert isinstance(gw, Gateway)
    return gw


def caller(request: Request) -> Caller:
    gw = gateway(request)
    return gw.keys.authenticate(
        request.headers.get("authorization"),
        request.client.host if request.client else None,
        request.headers.get("x-user-id"),
    )
