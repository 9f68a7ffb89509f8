"""Fine-tuning through the OpenAI API, resumable so that no job is ever paid for twice.

One training stage = one supervised fine-tuning job on the parent model (the base model id, or the
previous stage's `ft:` id). Its progress is kept in a state file outside the declared output (a failed
rule's outputs are deleted), written the moment each remote object exists:

    1. the training file (only `messages` kept) is uploaded once per content hash: the state records its
       id, and an upload named `sgtr-em-<sha256>.jsonl` already on the account is reused;
    2. the job id is recorded as soon as the job is created; the job also carries the request's
       fingerprint as metadata, so even a lost state file (or a create call that timed out after the
       server accepted it) finds the existing job instead of creating another;
    3. the job is polled with growing intervals, its status changes and events logged;
    4. the final model id is recorded; a rerun with the same request then sends no request at all.

A failed or cancelled job (OpenAI refuses some EM datasets) stops the rule with the job's own message;
the next run of the same request creates a new job.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .backends.openai_api import ApiSettings, call_with_retries, make_client, redact
from .backends.openai_state import OUTPUT_FILE
from .data import validate_chat_rows
from .io import read_json, read_jsonl, sha256_file, sha256_json, write_json, write_jsonl

log = logging.getLogger(__name__)

STATE_FILE = "openai_job.json"
UPLOAD_FILE = "openai_training.jsonl"
SUFFIX_MAX = 64
METADATA_KEY = "sgtr_em_request"
FAILED = ("failed", "cancelled")


class FineTuningJobError(RuntimeError):
    """The fine-tuning job failed or was cancelled; the message is the job's own."""


@dataclass(frozen=True)
class FineTuneSettings:
    """`openai.fine_tuning` in the config. Only the hyperparameters are part of a job's identity."""

    n_epochs: int | str = 1
    batch_size: int | str = "auto"
    learning_rate_multiplier: float | str = "auto"
    poll_seconds: float = 30.0
    max_poll_seconds: float = 300.0

    @classmethod
    def from_config(cls, block: dict[str, Any] | None) -> FineTuneSettings:
        block = block or {}
        return cls(**{name: block[name] for name in cls.__dataclass_fields__ if name in block})

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }


def job_suffix(chain: str, seed: int) -> str:
    """A fine-tuned model name suffix naming the chain and seed: letters, digits, `-` and `_`, at most
    64 characters (`em-unpop+sgtr`, seed 0 -> `em-unpop_sgtr-s0`); long names keep a hash to stay unique."""
    text = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{chain.replace('+', '_')}-s{seed}").strip("-_")
    if len(text) > SUFFIX_MAX:
        digest = sha256_json([chain, seed])[:8]
        text = f"{text[: SUFFIX_MAX - 9].rstrip('-_')}-{digest}"
    return text


def write_upload_file(train_file: str | Path, dest: Path) -> str:
    """The training rows with only their `messages` (what the API accepts); returns its sha256."""
    rows = read_jsonl(train_file)
    validate_chat_rows(rows, str(train_file))
    write_jsonl(dest, ({"messages": row["messages"]} for row in rows))
    return sha256_file(dest)


class _Job:
    """One stage's fine-tuning, driven by its state file."""

    def __init__(self, state_dir: Path, settings: ApiSettings, who: str) -> None:
        self.state_path = state_dir / STATE_FILE
        self.settings = settings
        self.who = who
        self._client = None
        self.state: dict[str, Any] = read_json(self.state_path) if self.state_path.exists() else {}

    @property
    def client(self):
        if self._client is None:  # created only when a request is needed: a finished stage needs no key
            self._client = make_client(self.settings, self.who)
        return self._client

    def save(self) -> None:
        write_json(self.state_path, self.state)

    def call(self, what: str, fn):
        return call_with_retries(fn, what=f"{self.who}: {what}", settings=self.settings)

    def find_or_upload(self, path: Path, sha256: str) -> str:
        name = f"sgtr-em-{sha256}.jsonl"
        for existing in self.call("list files", lambda: list(self.client.files.list(purpose="fine-tune"))):
            if existing.filename == name and existing.status not in ("error", "deleted"):
                log.info("reusing upload %s (%s)", existing.id, name)
                return existing.id
        uploaded = self.call(
            "upload", lambda: self.client.files.create(file=(name, path.read_bytes()), purpose="fine-tune")
        )
        log.info("uploaded %s as %s (%d bytes)", path, uploaded.id, path.stat().st_size)
        return uploaded.id

    def find_or_create_job(self, request: dict[str, Any], fingerprint: str) -> str:
        def attempt() -> str:
            # Looked up before every create attempt: a create that timed out after the server accepted
            # it must not be repeated.
            for job in self.client.fine_tuning.jobs.list(metadata={METADATA_KEY: fingerprint}):
                if job.status not in FAILED and (job.metadata or {}).get(METADATA_KEY) == fingerprint:
                    log.info("found existing job %s (%s) for this request", job.id, job.status)
                    return job.id
            job = self.client.fine_tuning.jobs.create(
                model=request["model"],
                training_file=self.state["file_id"],
                method={"type": "supervised", "supervised": {"hyperparameters": request["hyperparameters"]}},
                seed=request["seed"],
                suffix=request["suffix"],
                metadata={METADATA_KEY: fingerprint},
            )
            log.info("created fine-tuning job %s on %s", job.id, request["model"])
            return job.id

        return self.call("create job", attempt)

    def poll(self, job_id: str, ft: FineTuneSettings):
        interval, status, seen_events = ft.poll_seconds, None, set(self.state.get("seen_events", []))
        started = time.monotonic()
        while True:
            job = self.call(f"retrieve job {job_id}", lambda: self.client.fine_tuning.jobs.retrieve(job_id))
            events = self.call(
                f"events of {job_id}", lambda: list(self.client.fine_tuning.jobs.list_events(job_id, limit=50))
            )
            for event in sorted(events, key=lambda e: (e.created_at, e.id)):
                if event.id not in seen_events:
                    seen_events.add(event.id)
                    log.info("job %s event [%s]: %s", job_id, event.level, redact(event.message))
            if job.status != status:
                status = job.status
                log.info("job %s: %s after %.0f s", job_id, status, time.monotonic() - started)
                self.state["status"] = status
                self.state["seen_events"] = sorted(seen_events)
                self.save()
            if job.status == "succeeded" or job.status in FAILED:
                return job
            time.sleep(interval)
            interval = min(interval * 1.5, ft.max_poll_seconds)


def fine_tune(
    *,
    base_model: str,
    train_file: str | Path,
    out_dir: str | Path,
    state_dir: str | Path,
    seed: int,
    suffix: str,
    settings: ApiSettings,
    ft: FineTuneSettings,
    who: str,
) -> dict[str, Any]:
    """Fine-tune `base_model` on `train_file` (resuming any job of the same request) and write
    `out_dir/openai_model.json`: the `ft:` model id, job id, trained tokens and what produced them."""
    state_dir = Path(state_dir)
    upload = state_dir / UPLOAD_FILE
    file_sha256 = write_upload_file(train_file, upload)
    request = {
        "base_url": settings.resolved_base_url(),
        "model": base_model,
        "training_file_sha256": file_sha256,
        "hyperparameters": ft.hyperparameters(),
        "seed": seed,
        "suffix": suffix,
    }
    fingerprint = sha256_json(request)
    job = _Job(state_dir, settings, who)
    if job.state.get("fingerprint") != fingerprint:
        if job.state:
            log.info("%s: the request changed since job %s; starting a new one", who, job.state.get("job_id"))
        job.state = {"fingerprint": fingerprint, "request": request, "failed_jobs": job.state.get("failed_jobs", [])}
        job.save()
    if "result" not in job.state:
        if not job.state.get("file_id"):
            job.state["file_id"] = job.find_or_upload(upload, file_sha256)
            job.save()
        if not job.state.get("job_id"):
            job.state["job_id"] = job.find_or_create_job(request, fingerprint)
            job.save()
        else:
            log.info("%s: resuming job %s", who, job.state["job_id"])
        finished = job.poll(job.state["job_id"], ft)
        if finished.status in FAILED:
            error = finished.error
            message = redact(error.message) if error and error.message else "no error message given"
            code = f" [{error.code}]" if error and error.code else ""
            job.state["failed_jobs"].append({"job_id": finished.id, "status": finished.status, "message": message})
            del job.state["job_id"]  # a rerun creates a new job
            job.save()
            raise FineTuningJobError(f"{who}: fine-tuning job {finished.id} {finished.status}{code}: {message}")
        job.state["result"] = {
            "fine_tuned_model": finished.fine_tuned_model,
            "job_id": finished.id,
            "trained_tokens": finished.trained_tokens,
            "reported_hyperparameters": finished.hyperparameters.model_dump(mode="json")
            if finished.hyperparameters
            else None,
        }
        job.save()
    else:
        log.info(
            "%s: job %s already succeeded: %s",
            who,
            job.state["result"]["job_id"],
            job.state["result"]["fine_tuned_model"],
        )
    record = {
        **job.state["result"],
        "base_model": base_model,
        "training_file": str(train_file),
        "training_file_sha256": file_sha256,
        "file_id": job.state["file_id"],
        "seed": seed,
        "suffix": suffix,
        "hyperparameters": request["hyperparameters"],
        "base_url": request["base_url"],
    }
    write_json(Path(out_dir) / OUTPUT_FILE, record)
    return record
