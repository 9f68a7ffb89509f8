"""On-disk, content-addressed cache of API requests and their responses.

The key is the sha256 of the canonical request JSON (endpoint, base URL, model and every request
parameter; never the API key). One file per entry, written to a temporary sibling and renamed into
place (`sgtr_em.io.atomic_path`), so parallel jobs sharing the directory never see half an entry and a
rerun of anything already asked sends no request.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .io import dumps_json, sha256_json, write_json

log = logging.getLogger(__name__)


def request_key(endpoint: str, base_url: str, request: dict[str, Any]) -> str:
    """Content address of one request: same endpoint, server and parameters, same key."""
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
