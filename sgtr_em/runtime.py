"""Job-level plumbing shared by every script: logging into the rule's log file, provenance records."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from .io import sha256_json

PACKAGES = (
    "sgtr-em",
    "torch",
    "transformers",
    "tokenizers",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "openai",
    "snakemake",
)


def setup_logging(log_path: str | Path | None) -> None:
    """Send Python logging, warnings and the process's stdout/stderr (library progress bars included)
    into the rule's log file, so the terminal shows Snakemake's own progress only."""
    handlers: list[logging.Handler] = []
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives for the process
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        sys.stdout = sys.stderr = handle
        handlers.append(logging.StreamHandler(handle))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)
    warnings.filterwarnings("once")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def code_version() -> str:
    """git describe of the workflow checkout, or 'unknown' outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_sha256() -> str:
    """A hash of this package's Python source: what a kept result was computed by (a changed line of code makes
    a checkpointed evaluation step run again)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes() + b"\n")
    return digest.hexdigest()


def model_identity(name: str, source: dict[str, Any], model_input: Any = None) -> dict[str, Any]:
    """A model's identity for provenance: hub id and revision (the commit its snapshot record names, when
    the job's `model_input` is one; else the configured revision), API model id, configured path, or the
    spec a demo model is built from (its revision is then the hash of that spec)."""
    if "hf" in source:
        from . import hub

        if isinstance(model_input, str | Path) and hub.is_record(model_input):
            return {"name": name, "id": source["hf"], "revision": hub.read_record(model_input)["revision"]}
        return {"name": name, "id": source["hf"], "revision": source.get("revision")}
    if "openai" in source:
        return {"name": name, "id": source["openai"], "revision": None}
    if "path" in source:
        return {"name": name, "id": str(source["path"]), "revision": None}
    return {"name": name, "id": f"built:{name}", "revision": sha256_json(source)[:12], "source": source}


def provenance(
    rule: str,
    settings: dict[str, Any],
    *,
    model: dict[str, Any] | None = None,
    seeds: dict[str, int] | None = None,
    protocols: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What produced an output: rule, the config subset it used (and its hash), package versions, code
    version, the model (id and revision, see `model_identity`), the seeds and the scoring protocols.
    Nothing machine- or time-specific, so identical runs write identical records."""
    return {
        "rule": rule,
        "config": settings,
        "config_sha256": sha256_json(settings),
        "versions": versions(),
        "code_version": code_version(),
        "model": model,
        "seeds": seeds or {},
        "protocols": protocols or [],
        **extra,
    }


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or unknown
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Progress of a long loop in the job's log: `what: done/total (pct), rate items/s, elapsed, ETA`.

    Logs at most once every `every` seconds (and always at the end), so a loop of a million items
    writes a few lines a minute, not a million. Thread-safe (the API backend advances it from a pool).
    """

    def __init__(
        self,
        what: str,
        total: int,
        *,
        every: float = 30.0,
        unit: str = "items",
        logger: logging.Logger | None = None,
        clock=time.monotonic,
    ) -> None:
        self.what, self.total, self.every, self.unit = what, total, every, unit
        self.log = logger or logging.getLogger("sgtr_em.progress")
        self.clock = clock
        self.started = self.last = clock()
        self.done = 0
        self._lock = threading.Lock()

    def update(self, n: int = 1) -> None:
        """Count `n` more items done; log when `every` seconds have passed since the last line, or at the end."""
        with self._lock:
            self.done += n
            now = self.clock()
            if self.done >= self.total or now - self.last >= self.every:
                self.last = now
                self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.what}: {self.done}/{self.total} ({pct:.0f}%), {self.rate_eta(now)}"

    def rate_eta(self, now: float | None = None) -> str:
        """`rate unit/s, elapsed, ETA` so far."""
        elapsed = (self.clock() if now is None else now) - self.started
        rate = self.done / elapsed if elapsed > 0 else float("nan")
        eta = (self.total - self.done) / rate if rate == rate and rate > 0 else float("nan")
        return f"{rate:.2f} {self.unit}/s, elapsed {_duration(elapsed)}, ETA {_duration(eta if self.done < self.total else 0.0)}"
