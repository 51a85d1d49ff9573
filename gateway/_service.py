"""The gateway's process-wide state, shared by the HTTP handlers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from agentteams import ModelServerError
from scenarios import ScenarioInfo
from teams import RunEvent, RunRequest

from ._auth import Caller, ConcurrencyLimiter, KeyRing
from ._config import GatewayConfig
from ._errors import GatewayError
from ._execution import Execution, RunObserver
from ._runner import ScenarioRunner, describe_failure
from ._states import RunKind
from ._store import Store

if TYPE_CHECKING:
    from ._filestore import FileStore

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

    def scenario(self, name: str) -> ScenarioInfo:
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
        kind: RunKind,
        observer: RunObserver | None = None,
    ) -> Execution:
        """Start a run counted against the caller's key (429 beyond its limit)."""
        self.limiter.acquire(caller.key_id)
        try:
            execution = Execution(
                self.runner,
                scenario,
                request,
                timeout_s=self.config.run_timeout_s,
                slots=self.slots,
                observer=_Bookkeeping(self, caller, scenario, kind, observer),
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


@dataclass(frozen=True)
class _Bookkeeping:
    """Frees the caller's slot when a run ends, then lets `inner` record it, then books its usage."""

    gw: Gateway
    caller: Caller
    scenario: str
    kind: RunKind
    inner: RunObserver | None

    async def started(self, execution: Execution) -> None:
        if self.inner is not None:
            await self.inner.started(execution)

    async def event(self, execution: Execution, event: RunEvent) -> None:
        if self.inner is not None:
            await self.inner.event(execution, event)

    async def done(self, execution: Execution) -> None:
        self.gw.limiter.release(self.caller.key_id)
        self.gw.executions.discard(execution)
        try:
            if self.inner is not None:
                await self.inner.done(execution)
        finally:
            if execution.started_at is not None:
                await self.gw.store.record_usage(
                    key_id=self.caller.key_id,
                    user_id=self.caller.user_id,
                    scenario=self.scenario,
                    kind=self.kind,
                    outcome=execution.outcome or "failed",
                    usage=execution.usage,
                )


def upstream_error(exc: BaseException) -> GatewayError:
    """The HTTP error for a run that failed with `exc`."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ModelServerError):
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
