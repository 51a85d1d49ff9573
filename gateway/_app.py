"""The FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from . import _chat, _conversations, _files, _responses, _threads, _usage
from ._config import GatewayConfig
from ._db import describe_url
from ._errors import install_error_handlers
from ._filestore import FileStore
from ._limits import BodyLimitMiddleware
from ._pool import ScenarioPool
from ._runner import ScenarioRunner
from ._service import Gateway
from ._store import Store

__all__ = ["create_app"]

_log = logging.getLogger("gateway")

_DEV_MODE_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!! NO API KEYS CONFIGURED: dev mode. Only clients on loopback (127.0.0.1/::1) are served.\n"
    "!! Set --keys-file FILE or GATEWAY_API_KEYS=key1,key2 before exposing the gateway.\n" + "!" * 78
)


async def _default_runner(config: GatewayConfig) -> ScenarioRunner:
    return ScenarioPool(
        config.scenario_dirs, base_url=config.base_url, model=config.model, api_key=config.api_key
    )


def create_app(config: GatewayConfig, runner: ScenarioRunner | None = None) -> FastAPI:
    """The gateway app. `runner` defaults to the scenarios found in `config.scenario_dirs`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active_runner = runner if runner is not None else await _default_runner(config)
        store = Store(config.resolved_db_url())
        recovered = await store.open()
        if recovered:
            _log.warning("marked %d run(s) failed that a previous gateway process left unfinished", recovered)
        files = FileStore(store.db, quota_bytes=config.file_quota_bytes)
        await files.open()
        gw = Gateway(config, active_runner, store)
        gw.files = gw.queue.files = app.state.files = files
        gw.queue.start()
        if gw.keys.dev_mode:
            _log.warning(_DEV_MODE_BANNER)
        _log.info(
            "gateway ready: %d scenario(s) [%s], database %s",
            len(active_runner.scenarios()),
            ", ".join(s.name for s in active_runner.scenarios()),
            describe_url(config.resolved_db_url()),
        )
        app.state.gateway = gw
        try:
            yield
        finally:
            await gw.shutdown()
            await active_runner.aclose()
            await files.close()
            await store.close()

    app = FastAPI(title="agentteams gateway", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    install_error_handlers(app)
    app.include_router(_responses.router)
    app.include_router(_conversations.router)
    app.include_router(_chat.router)
    app.include_router(_threads.router)
    app.include_router(_usage.router)
    app.include_router(_files.router)

    static = resources.files("gateway") / "static"
    index_html = (static / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground() -> str:
        return index_html

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=config.max_body_bytes, max_upload_bytes=config.max_file_bytes
    )
    return app
