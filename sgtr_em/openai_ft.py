"""Fine-tuning through the OpenAI API: every job bought exactly once, and a failed one never bought again
without a human decision.

One training stage = one supervised fine-tuning job on the parent model (the base model id, or the
previous stage's `ft:` id). Its progress is kept in a state file outside the declared output (a failed
rule's outputs are deleted), written the moment each remote object exists:

    1. the training file (only `messages` kept) is uploaded once per content hash, named
       `sgtr-em-<sha256>.jsonl`: an upload of that name already on the account is reused;
    2. the job carries the request's fingerprint as metadata. Before any create, the account's jobs with
       that fingerprint are listed, and a live one is resumed (a lost state file, or a kill -9 between
       the create and its record, buys nothing). A create (or upload) whose reply never came - a timeout,
       a dropped connection, a 5xx - may have been accepted: the list is watched, with backoff, for up to
       `create_confirm_seconds` before any new create. If two live jobs of one fingerprint ever exist
       (a create accepted later than that), one is kept - a succeeded one, else the first created - and
       the others are cancelled; all are recorded in the state file (`duplicates`);
    3. the job is polled with growing intervals, its status changes and events logged;
    4. the final model id is recorded; a rerun with the same request then sends no request at all.

A failed, cancelled or expired job stops the rule with the job's own message and blocks the stage: no
rerun, by hand or by a profile's `retries`, buys another job for the same request (it fails at once,
sending nothing) until a person clears the failure:

    python -m sgtr_em.openai_ft list results/checkpoints       # every blocked stage and its message
    python -m sgtr_em.openai_ft clear results/checkpoints/<model>/<chain>/seed<seed>

A changed request (other training data or hyperparameters) is another request, not blocked.

The fingerprint is the sha256 of the request: base model id, training file sha256, hyperparameters,
seed and suffix. Not the base URL (a proxy of the same provider reaches the same account and its jobs)
and never the API key.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from .backends.openai_api import (
    ApiSettings,
    OpenAIRequestError,
    backoff_seconds,
    call_with_retries,
    describe_error,
    is_retryable,
    make_client,
    redact,
    retry_wait,
)
from .backends.openai_state import OUTPUT_FILE
from .data import validate_chat_rows
from .io import InputError, read_json, read_jsonl, sha256_file, sha256_json, write_json, write_jsonl

log = logging.getLogger(__name__)

STATE_FILE = "openai_job.json"
UPLOAD_FILE = "openai_training.jsonl"
SUFFIX_MAX = 64
METADATA_KEY = "sgtr_em_request"
FAILED = ("failed", "cancelled", "expired")
CLEAR_COMMAND = "python -m sgtr_em.openai_ft clear"

# n_epochs "auto": OpenAI's documented default (openai-cookbook, examples/Chat_finetuning_data_prep.ipynb):
# 3 epochs, moved so that examples x epochs stays within [100, 25000], and epochs within [1, 25].
AUTO_TARGET_EPOCHS = 3
AUTO_MIN_TRAINED_EXAMPLES = 100
AUTO_MAX_TRAINED_EXAMPLES = 25_000
AUTO_EPOCHS_RANGE = (1, 25)


class FineTuningJobError(RuntimeError):
    """The fine-tuning job failed, was cancelled or expired; the message is the job's own."""


def auto_epochs(n_examples: int) -> int:
    """Epochs the API trains for with n_epochs "auto" on `n_examples` training examples."""
    low, high = AUTO_EPOCHS_RANGE
    if n_examples * AUTO_TARGET_EPOCHS < AUTO_MIN_TRAINED_EXAMPLES:
        return min(high, AUTO_MIN_TRAINED_EXAMPLES // max(n_examples, 1))
    if n_examples * AUTO_TARGET_EPOCHS > AUTO_MAX_TRAINED_EXAMPLES:
        return max(low, AUTO_MAX_TRAINED_EXAMPLES // n_examples)
    return AUTO_TARGET_EPOCHS


def resolved_epochs(n_epochs: int | str, n_examples: int) -> int:
    """The configured epochs, or what "auto" means for this many examples."""
    if n_epochs == "auto":
        return auto_epochs(n_examples)
    if isinstance(n_epochs, int) and n_epochs >= 1:
        return n_epochs
    raise InputError(f"openai.fine_tuning.n_epochs: expected a positive integer or auto, got {n_epochs!r}")


@dataclass(frozen=True)
class FineTuneSettings:
    """`openai.fine_tuning` in the config. Only the hyperparameters are part of a job's identity."""

    n_epochs: int | str = 1
    batch_size: int | str = "auto"
    learning_rate_multiplier: float | str = "auto"
    poll_seconds: float = 30.0
    max_poll_seconds: float = 300.0
    # After a create whose reply never came: how long the job list is watched for the job before any
    # new create (the API lists a created job at once; minutes cover a slow or overloaded server).
    create_confirm_seconds: float = 300.0

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


def job_request(base_model: str, file_sha256: str, ft: FineTuneSettings, seed: int, suffix: str) -> dict[str, Any]:
    """What identifies a job: its fingerprint is the sha256 of this."""
    return {
        "model": base_model,
        "training_file_sha256": file_sha256,
        "hyperparameters": ft.hyperparameters(),
        "seed": seed,
        "suffix": suffix,
    }


def is_ambiguous(error: Exception) -> bool:
    """Whether the server may have carried out a request that failed: no reply (timeout, dropped
    connection), or a reply that does not say it refused (408, 409, 5xx)."""
    import openai

    if isinstance(error, openai.APIConnectionError):
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in (408, 409) or error.status_code >= 500
    return False


def blocked_message(who: str, state_dir: Path, failure: dict[str, Any]) -> str:
    code = f" [{failure['code']}]" if failure.get("code") else ""
    return (
        f"{who}: fine-tuning job {failure['job_id']} {failure['status']}{code}: {failure['message']} "
        f"-- not bought again: this stage stays failed until you decide; to start a new job for the same "
        f"request, run `{CLEAR_COMMAND} {state_dir}` (see docs/api.md)"
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Job:
    """One stage's fine-tuning, driven by its state file."""

    def __init__(self, state_dir: Path, settings: ApiSettings, ft: FineTuneSettings, who: str) -> None:
        self.state_dir = state_dir
        self.state_path = state_dir / STATE_FILE
        self.settings = settings
        self.ft = ft
        self.who = who
        self._client: Any = None
        self.state: dict[str, Any] = read_json(self.state_path) if self.state_path.exists() else {}

    @property
    def client(self) -> Any:
        if self._client is None:  # created only when a request is needed: a finished stage needs no key
            self._client = make_client(self.settings, self.who)
        return self._client

    def save(self) -> None:
        write_json(self.state_path, self.state)

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """An idempotent request (list, retrieve, cancel), retried on transient failures."""
        return call_with_retries(fn, what=f"{self.who}: {what}", settings=self.settings)

    # -- creating things exactly once --------------------------------------------------------------------

    def create_once(self, what: str, create: Callable[[], str], find: Callable[[], str | None]) -> str:
        """Run `create` (which makes one remote object and returns its id) so that the object exists once.

        A refusal the server states (4xx) is final; a 429 waits and creates again (nothing was made). A
        failure after which the server may have made it (`is_ambiguous`) is followed by watching `find`
        with backoff for `create_confirm_seconds`; only if the object never shows up is it created again.
        """
        import openai

        attempt = 0
        while True:
            try:
                return create()
            except openai.OpenAIError as error:
                if not is_retryable(error) and not is_ambiguous(error):
                    raise OpenAIRequestError(f"{self.who}: {what}: {describe_error(error)}") from None
                if attempt >= self.settings.max_retries:
                    raise OpenAIRequestError(
                        f"{self.who}: {what}: gave up after {attempt + 1} attempts; last error: {describe_error(error)}"
                    ) from None
                if is_ambiguous(error):
                    self.state["unconfirmed_creates"] = self.state.get("unconfirmed_creates", 0) + 1
                    self.save()
                    log.warning(
                        "%s: %s: %s; the server may have done it: watching for it up to %.0f s before trying again",
                        self.who,
                        what,
                        describe_error(error),
                        self.ft.create_confirm_seconds,
                    )
                    found = self.watch(find)
                    if found is not None:
                        log.info("%s: %s: found %s, made by the unanswered request", self.who, what, found)
                        return found
                    log.warning(
                        "%s: %s: nothing appeared in %.0f s; trying again (a twin appearing later is cancelled)",
                        self.who,
                        what,
                        self.ft.create_confirm_seconds,
                    )
                else:
                    wait = retry_wait(error, attempt, self.settings)
                    log.warning("%s: %s: %s; retry in %.2f s", self.who, what, describe_error(error), wait)
                    time.sleep(wait)
                attempt += 1

    def watch(self, find: Callable[[], str | None]) -> str | None:
        """`find()` until it finds something or `create_confirm_seconds` have passed (backoff between)."""
        deadline = time.monotonic() + self.ft.create_confirm_seconds
        attempt = 0
        while True:
            found = find()
            if found is not None:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(backoff_seconds(attempt, self.settings), remaining))
            attempt += 1

    # -- the training file -------------------------------------------------------------------------------

    def find_upload(self, name: str) -> str | None:
        for existing in self.call("list files", lambda: list(self.client.files.list(purpose="fine-tune"))):
            if existing.filename == name and existing.status not in ("error", "deleted"):
                return str(existing.id)
        return None

    def upload_lock_path(self, sha256: str) -> Path:
        """A lock per training-file content, shared by the workflow's fine-tuning jobs (beside the request
        cache, else beside the stages' state folders): two stages that need the same file at the same time
        upload it once."""
        folder = Path(self.settings.cache_dir) if self.settings.cache_dir else self.state_dir.parent
        return folder / "upload-locks" / f"{sha256}.lock"

    def find_or_upload(self, path: Path, sha256: str) -> str:
        name = f"sgtr-em-{sha256}.jsonl"
        lock_path = self.upload_lock_path(sha256)
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            found = self.find_upload(name)
            if found is not None:
                log.info("reusing upload %s (%s)", found, name)
                return found

            def upload() -> str:
                uploaded = self.client.files.create(file=(name, path.read_bytes()), purpose="fine-tune")
                log.info("uploaded %s as %s (%d bytes)", path, uploaded.id, path.stat().st_size)
                return str(uploaded.id)

            return self.create_once("upload", upload, lambda: self.find_upload(name))

    # -- the job ---------------------------------------------------------------------------------------

    def fingerprints(self) -> list[str]:
        return [self.state["fingerprint"], *self.state.get("legacy_fingerprints", [])]

    def _jobs_with(self, fingerprint: str) -> list[Any]:
        return list(self.client.fine_tuning.jobs.list(metadata={METADATA_KEY: fingerprint}))

    def _events_of(self, job_id: str) -> list[Any]:
        return list(self.client.fine_tuning.jobs.list_events(job_id, limit=50))

    def list_jobs(self) -> list[Any]:
        """The account's jobs carrying this request's fingerprint, oldest first."""
        jobs: dict[str, Any] = {}
        for fingerprint in self.fingerprints():
            listed = self.call("list jobs", partial(self._jobs_with, fingerprint))
            for job in listed:
                if (job.metadata or {}).get(METADATA_KEY) == fingerprint:
                    jobs[job.id] = job
        return sorted(jobs.values(), key=lambda job: (job.created_at, job.id))

    def known_ids(self) -> set[str]:
        """Jobs this stage already accounted for: cancelled twins and cleared failures."""
        return {d["job_id"] for d in self.state.get("duplicates", [])} | set(self.state.get("cleared_job_ids", []))

    def keep_one(self, jobs: list[Any]) -> Any | None:
        """The live job to keep among fingerprinted `jobs` (a succeeded one, else the first created); every
        other live one is a twin: cancelled and recorded in `duplicates`."""
        live = [job for job in jobs if job.status not in FAILED]
        if not live:
            return None
        kept = min(live, key=lambda job: (job.status != "succeeded", job.created_at, job.id))
        for twin in live:
            if twin.id == kept.id:
                continue
            record = {"job_id": twin.id, "created_at": twin.created_at, "status": twin.status, "kept": kept.id}
            log.warning("%s: two jobs for one request: keeping %s, cancelling %s", self.who, kept.id, twin.id)
            try:
                self.call(f"cancel twin {twin.id}", partial(self.client.fine_tuning.jobs.cancel, twin.id))
                record["cancelled_at"] = now_iso()
            except OpenAIRequestError as error:  # e.g. it finished meanwhile: recorded, not fatal
                record["cancel_error"] = str(error)
            self.state.setdefault("duplicates", []).append(record)
            self.save()
        return kept

    def find_live_job(self) -> str | None:
        kept = self.keep_one(self.list_jobs())
        return None if kept is None else str(kept.id)

    def create_job(self, request: dict[str, Any]) -> str:
        def create() -> str:
            job = self.client.fine_tuning.jobs.create(
                model=request["model"],
                training_file=self.state["file_id"],
                method={"type": "supervised", "supervised": {"hyperparameters": request["hyperparameters"]}},
                seed=request["seed"],
                suffix=request["suffix"],
                metadata={METADATA_KEY: self.state["fingerprint"]},
            )
            log.info("created fine-tuning job %s on %s", job.id, request["model"])
            return str(job.id)

        return self.create_once("create job", create, self.find_live_job)

    def start_or_resume(self, request: dict[str, Any]) -> None:
        """Record the stage's job: a live one of this request on the account, else a new one. A failed
        job of this request that nobody cleared blocks instead (`FineTuningJobError`)."""
        jobs = self.list_jobs()
        kept = self.keep_one(jobs)
        if kept is not None:
            log.info("%s: found job %s (%s) for this request", self.who, kept.id, kept.status)
            self.state["job_id"] = kept.id
            self.save()
            return
        known = self.known_ids()
        failures = [job for job in jobs if job.status in FAILED and job.id not in known]
        if failures:
            self.block(failures[-1])
        self.state["job_id"] = self.create_job(request)
        self.save()
        # A create of another process (or one accepted late) may have made a twin: keep one.
        kept = self.keep_one(self.list_jobs())
        if kept is not None and kept.id != self.state["job_id"]:
            self.state["job_id"] = kept.id
            self.save()

    def block(self, job: Any) -> None:
        """Record a failed job as blocking this stage and raise its message."""
        error = job.error
        failure = {
            "job_id": job.id,
            "status": job.status,
            "message": redact(error.message) if error and error.message else "no error message given",
            "code": error.code if error and error.code else None,
            "at": now_iso(),
        }
        failures = self.state.setdefault("failed_jobs", [])
        if job.id not in {f["job_id"] for f in failures}:
            failures.append(failure)
        self.state["blocked"] = failure
        self.state.pop("job_id", None)
        self.save()
        raise FineTuningJobError(blocked_message(self.who, self.state_dir, failure))

    def poll(self, job_id: str) -> Any:
        ft = self.ft
        interval, status, seen_events = ft.poll_seconds, None, set(self.state.get("seen_events", []))
        started = time.monotonic()
        while True:
            job = self.call(f"retrieve job {job_id}", partial(self.client.fine_tuning.jobs.retrieve, job_id))
            events = self.call(f"events of {job_id}", partial(self._events_of, job_id))
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
            # A twin is possible after an unanswered create; a job cancelled as a twin by another process
            # hands over to the job that process kept.
            if self.state.get("unconfirmed_creates") or job.status in FAILED:
                kept = self.keep_one(self.list_jobs())
                if kept is not None and kept.id != job_id:
                    log.info("%s: following job %s (kept) instead of %s", self.who, kept.id, job_id)
                    job_id = self.state["job_id"] = kept.id
                    status = None
                    self.save()
                    continue
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
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune `base_model` on `train_file` (resuming any job of the same request) and write
    `out_dir/openai_model.json`: the `ft:` model id, job id, trained tokens and what produced them
    (`provenance`, when given)."""
    state_dir = Path(state_dir)
    upload = state_dir / UPLOAD_FILE
    file_sha256 = write_upload_file(train_file, upload)
    request = job_request(base_model, file_sha256, ft, seed, suffix)
    fingerprint = sha256_json(request)
    job = _Job(state_dir, settings, ft, who)
    if job.state.get("fingerprint") != fingerprint:
        previous = job.state.get("request") or {}
        if {k: v for k, v in previous.items() if k != "base_url"} == request:
            # A state written when fingerprints held the base URL: the same request, kept.
            job.state["legacy_fingerprints"] = [job.state["fingerprint"], *job.state.get("legacy_fingerprints", [])]
            job.state["fingerprint"], job.state["request"] = fingerprint, request
        else:
            if job.state:
                log.info("%s: the request changed since job %s; a new request", who, job.state.get("job_id"))
            history: dict[str, Any] = {
                k: job.state[k] for k in ("failed_jobs", "cleared_job_ids", "duplicates") if k in job.state
            }
            job.state = {"fingerprint": fingerprint, "request": request, **history}
        job.save()
    if job.state.get("blocked"):
        raise FineTuningJobError(blocked_message(who, state_dir, job.state["blocked"]))
    if "result" not in job.state:
        if not job.state.get("file_id"):
            job.state["file_id"] = job.find_or_upload(upload, file_sha256)
            job.save()
        if not job.state.get("job_id"):
            job.start_or_resume(request)
        else:
            log.info("%s: resuming job %s", who, job.state["job_id"])
        finished = job.poll(job.state["job_id"])
        if finished.status in FAILED:
            job.block(finished)
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
        "base_url": settings.resolved_base_url(),
        **({"provenance": provenance} if provenance is not None else {}),
    }
    write_json(Path(out_dir) / OUTPUT_FILE, record)
    return record


# ------------------------------------------------------------------------- clearing a failed stage --


def state_files(paths: list[str | Path]) -> list[Path]:
    """The state files at or under each path (a stage's state directory or any folder above it)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.name == STATE_FILE:
            found.append(path)
        elif (path / STATE_FILE).is_file():
            found.append(path / STATE_FILE)
        elif path.is_dir():
            found += sorted(path.rglob(STATE_FILE))
        else:
            raise InputError(f"{path}: no such state directory or file")
    return found


def blocked_stages(paths: list[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    """(state file, failure) of every blocked stage at or under `paths`."""
    return [(path, state["blocked"]) for path in state_files(paths) if (state := read_json(path)).get("blocked")]


def clear_failed(state_path: str | Path) -> dict[str, Any] | None:
    """Unblock one stage: its failed job stays in `failed_jobs` (marked cleared) and is ignored from then
    on, so the next run creates a new job. Returns the cleared failure, or None if it was not blocked."""
    state_path = Path(state_path)
    state = read_json(state_path)
    failure = state.pop("blocked", None)
    if failure is None:
        return None
    cleared_at = now_iso()
    for entry in state.get("failed_jobs", []):
        if entry["job_id"] == failure["job_id"]:
            entry["cleared_at"] = cleared_at
    state.setdefault("cleared_job_ids", []).append(failure["job_id"])
    write_json(state_path, state)
    return {**failure, "cleared_at": cleared_at}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sgtr_em.openai_ft",
        description="Fine-tuning stages blocked by a failed, cancelled or expired job: list them, or clear "
        "them so that the next run buys a new job.",
    )
    parser.add_argument("action", choices=["list", "clear"])
    parser.add_argument(
        "paths", nargs="+", help="state directories (results/checkpoints/<model>/<chain>/seed<N>) or folders above them"
    )
    args = parser.parse_args(argv)
    blocked = blocked_stages(args.paths)
    if not blocked:
        print("no blocked fine-tuning stage")
        return 0
    for path, failure in blocked:
        where = path.parent
        if args.action == "list":
            print(f"{where}: job {failure['job_id']} {failure['status']}: {failure['message']}")
        else:
            clear_failed(path)
            print(f"{where}: cleared job {failure['job_id']} ({failure['status']}); the next run creates a new job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
