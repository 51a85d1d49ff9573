"""Gateway settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["KEYS_ENV", "GatewayConfig", "configure_logging", "default_db_path"]

KEYS_ENV = "GATEWAY_API_KEYS"  # here, not in _auth: `--help` names it without importing FastAPI

APP_NAME = "agentteams"


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "gateway.sqlite3"


@dataclass(frozen=True)
class GatewayConfig:
    scenario_dirs: tuple[Path, ...] = ()
    db_path: Path | None = None  # None: default_db_path()
    db_url: str | None = None  # sqlite:///path or postgresql://...; wins over db_path
    keys: tuple[str, ...] = ()  # none: dev mode, loopback clients only
    # override the scenarios' model endpoint (else their YAML decides, e.g. LLM_BASE_URL / auto)
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    max_file_bytes: int = 32 << 20  # one upload to POST /v1/files
    file_quota_bytes: int = 512 << 20  # stored files per key, uploads and run outputs together
    max_messages: int = 256  # per chat request, per thread creation
    max_concurrent_per_key: int = 16
    max_active_runs: int = 256  # runs beyond it wait `queued`
    run_timeout_s: float = 600.0
    log_level: str = "info"

    def resolved_db_path(self) -> Path:
        return self.db_path if self.db_path is not None else default_db_path()

    def resolved_db_url(self) -> str:
        """The database every replica shares (a bare path is a SQLite file)."""
        return self.db_url if self.db_url is not None else str(self.resolved_db_path())


def configure_logging(level: str, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    if level != "debug":
        # AutoGen logs every message event at INFO; the HTTP clients log every request
        for noisy in ("autogen_core", "autogen_agentchat", "httpx", "httpx2", "mcp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.basicConfig(level=level.upper(), format=fmt)
