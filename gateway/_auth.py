"""Bearer keys, caller identity and the per-key concurrency limit."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._config import KEYS_ENV
from ._errors import GatewayError

__all__ = ["Caller", "ConcurrencyLimiter", "KeyRing", "load_keys"]

_log = logging.getLogger(__name__)

DEV_KEY_ID = "dev"
_MAX_USER_ID = 128


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path | None = None, env: str | None = None) -> list[str]:
    """Keys from a file (one per line, `#` comments) and/or a comma-separated env var."""
    keys: list[str] = []
    if path is not None:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.append(line)
    raw = os.environ.get(KEYS_ENV, "") if env is None else env
    keys.extend(k.strip() for k in raw.split(",") if k.strip())
    return keys


@dataclass(frozen=True)
class Caller:
    key_id: str  # never the key itself: a short hash, safe to store and log
    user_id: str


class KeyRing:
    """Checks bearer keys. With no keys it is in dev mode: loopback clients only."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._ids = {_digest(k): "key_" + _digest(k)[:10] for k in keys}

    @property
    def dev_mode(self) -> bool:
        return not self._ids

    def authenticate(self, authorization: str | None, client_host: str | None, user_id: str | None) -> Caller:
        user = _clean_user(user_id)
        if self.dev_mode:
            if not _is_loopback(client_host):
                raise GatewayError(
                    401,
                    "no API keys are configured, so this gateway only accepts clients on loopback;"
                    " configure keys (--keys-file or GATEWAY_API_KEYS) to serve other hosts",
                    "invalid_api_key",
                )
            return Caller(DEV_KEY_ID, user)
        if not authorization:
            raise GatewayError(
                401,
                "missing API key: send 'Authorization: Bearer <key>'",
                "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, token = authorization.partition(" ")
        key_id = self._ids.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if key_id is None:
            raise GatewayError(
                401, "invalid API key", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
            )
        return Caller(key_id, user)


def _clean_user(user_id: str | None) -> str:
    if user_id is None or not user_id.strip():
        return "anonymous"
    user = user_id.strip()
    if len(user) > _MAX_USER_ID or not user.isprintable():
        raise GatewayError(
            400, f"x-user-id must be at most {_MAX_USER_ID} printable characters", "invalid_user_id"
        )
    return user


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host in ("localhost", "testclient"):  # testclient: Starlette's in-process test transport
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConcurrencyLimiter:
    """At most `limit` active runs (streaming, waiting or queued) per key; beyond it, 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: Counter[str] = Counter()

    def acquire(self, key_id: str) -> None:
        if self._active[key_id] >= self.limit:
            raise GatewayError(
                429,
                f"too many concurrent runs for this key (limit {self.limit}); retry when one finishes",
                "concurrency_limit_exceeded",
                headers={"retry-after": "1"},
            )
        self._active[key_id] += 1

    def release(self, key_id: str) -> None:
        self._active[key_id] -= 1
        if self._active[key_id] <= 0:
            del self._active[key_id]

    def active(self, key_id: str) -> int:
        return self._active[key_id]
