"""On-disk, content-addressed cache of API requests and their responses.

The key is the sha256 of the canonical request JSON: the endpoint, the provider's name (`openai` unless
configured otherwise) and the whole request (model id, messages and every parameter, the seed included).
The base URL is not part of it: a proxy or another URL of the same provider reaches the same account and
the same models, so its answers are the same entries. The API key is never part of it either. One file per
entry, written to a temporary sibling and renamed into place (`sgtr_em.io.atomic_path`), so parallel jobs
sharing the directory never see half an entry and a rerun of anything already asked sends no request.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .io import dumps_json, sha256_json, write_json

log = logging.getLogger(__name__)

DEFAULT_PROVIDER = "openai"


def request_key(endpoint: str, provider: str, request: dict[str, Any]) -> str:
    """Content address of one request: same endpoint, provider and parameters, same key."""
    return sha256_json({"endpoint": endpoint, "provider": provider, "request": request})


def legacy_request_key(endpoint: str, base_url: str, request: dict[str, Any]) -> str:
    """The key entries were stored under before keys left out the base URL (read, never written)."""
    return sha256_json({"endpoint": endpoint, "base_url": base_url, "request": request})


class ApiCache:
    """`root/<2 hex>/<64 hex>.json` holding {"key", "endpoint", "request", "response"}; `root=None` disables."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root else None

    def path(self, key: str) -> Path:
        if self.root is None:
            raise ValueError("the cache is disabled")
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached response, or None (a missing or unreadable entry is a miss, never an error)."""
        if self.root is None:
            return None
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as err:
            log.warning("ignoring unreadable cache entry %s (%s)", path, err)
            return None
        return entry.get("response")

    def put(self, key: str, endpoint: str, request: dict[str, Any], response: dict[str, Any]) -> None:
        if self.root is None:
            return
        # Validate serialisability before touching the disk.
        dumps_json(response)
        write_json(self.path(key), {"key": key, "endpoint": endpoint, "request": request, "response": response})


class InFlight:
    """Identical requests asked at the same time are sent once: the first caller of a key computes it,
    every concurrent caller of the same key waits for and shares that result (or its error)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}

    def run(self, key: str, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """(result, shared): shared is True when another caller's request answered this one."""
        with self._lock:
            pending = self._pending.get(key)
            leader = pending is None
            if pending is None:
                pending = self._pending[key] = _Pending()
        if not leader:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return pending.result, True
        try:
            pending.result = compute()
        except BaseException as error:
            pending.error = error
            raise
        finally:
            with self._lock:
                del self._pending[key]
            pending.done.set()
        return pending.result, False


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
