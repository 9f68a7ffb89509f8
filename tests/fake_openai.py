"""A small OpenAI-compatible HTTP server on 127.0.0.1, for tests and the API demo (config/demo-api.yaml).

Speaks the routes the workflow uses: files (upload, list), fine-tuning jobs (create, list by metadata,
retrieve, events, cancel) and chat completions with logprobs. Replies are deterministic functions of the
request. Tests inject faults (error statuses with Retry-After, slow responses, a request carried out
whose reply is lost, dropped connections), hold jobs in `running`, make the next job fail, cancel or
expire, and count the requests each route received and the tokens it was sent, trained on and answered
(`usage`: its own count, ceil(characters / 4) per message plus 3, or tiktoken's o200k_base when installed).

Standalone: `python tests/fake_openai.py --port 8765` (then OPENAI_BASE_URL=http://127.0.0.1:8765/v1 and
any OPENAI_API_KEY).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Fault:
    """Applied to the next request whose path starts with `path` (and whose method matches, if set)."""

    path: str
    status: int | None = None  # answer with this error status...
    retry_after: float | None = None  # ...and this Retry-After header
    sleep: float = 0.0  # or answer normally, but only after this many seconds
    sleep_after: float = 0.0  # or process the request at once and send the answer this much later
    drop: bool = False  # close the connection without doing anything or answering
    drop_after: bool = False  # carry the request out, then close the connection without answering
    method: str | None = None


@dataclass
class FakeOpenAI:
    job_polls: int = 2  # retrieves before a job succeeds
    hold_jobs: bool = False  # while True, jobs stay `running`
    fail_next_job: str | None = None  # the error message of the next job created (it fails)
    fail_status: str = "failed"  # ... with this status: failed, cancelled or expired
    expected_key: str | None = None  # if set, other keys get 401
    # If set, every odd-numbered arrival of the same request (method, path, JSON body) gets 429 with this
    # Retry-After: half of all requests are rate limited, and each succeeds on its retry.
    rate_limit_half: float | None = None
    rate_limited: int = 0  # 429s sent by rate_limit_half
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys_seen: set[str] = field(default_factory=set)
    in_flight: int = 0  # requests being handled now
    max_in_flight: int = 0  # the most at once
    # Tokens measured: chat prompt and completion tokens, and trained tokens (file tokens x epochs).
    usage: dict[str, int] = field(
        default_factory=lambda: {"chat_requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "trained_tokens": 0}
    )

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._counter = 0
        self._arrivals: dict[str, int] = {}

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, method: str, path_prefix: str = "/v1/") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    def summary(self) -> dict[str, int]:
        """What the server was asked: job creates, uploads, chat requests, and the tokens it measured."""
        with self.lock:
            routes = [(m, p) for m, p in self.requests]
            usage = dict(self.usage)
        return {
            "job_creates": routes.count(("POST", "/v1/fine_tuning/jobs")),
            "uploads": routes.count(("POST", "/v1/files")),
            "chat_requests_received": routes.count(("POST", "/v1/chat/completions")),
            "chat_requests_answered": usage.pop("chat_requests"),
            "jobs": len(self.jobs),
            **usage,
        }

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self._counter += 1
            return f"{prefix}-{self._counter:06d}"

    # -- routes -------------------------------------------------------------------------------------

    def rate_limit(self, method: str, path: str, body: bytes, content_type: str) -> bool:
        """Whether `rate_limit_half` answers this request 429 (uploads count by route: their bodies differ)."""
        if self.rate_limit_half is None:
            return False
        identity = f"{method} {path} " + (
            hashlib.sha256(body).hexdigest() if content_type.startswith("application/json") else ""
        )
        with self.lock:
            self._arrivals[identity] = self._arrivals.get(identity, 0) + 1
            limited = self._arrivals[identity] % 2 == 1
            self.rate_limited += int(limited)
        return limited

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if path.startswith(fault.path) and fault.method in (None, method):
                    return self.faults.pop(i)
        return None

    def upload(self, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = self.next_id("file")
        record = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        lines = [json.loads(line) for line in content.decode("utf-8").splitlines() if line.strip()]
        with self.lock:
            self.files[file_id] = {**record, "_lines": lines}
        return record

    def list_files(self, purpose: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [_public(f) for f in self.files.values() if purpose in (None, f["purpose"])]

    def create_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("training_file") not in self.files:
            return 400, _error(f"invalid training_file: {body.get('training_file')}", "invalid_request_error")
        model = body["model"]
        if model.startswith("ft:") and model not in self.fine_tuned_models():
            return 404, _error(f"The model {model} does not exist", "invalid_request_error")
        job_id = self.next_id("ftjob")
        hyper = (body.get("method") or {}).get("supervised", {}).get("hyperparameters", {})
        lines = self.files[body["training_file"]]["_lines"]
        n_epochs = hyper.get("n_epochs", "auto")
        epochs = n_epochs if isinstance(n_epochs, int) else auto_epochs(len(lines))
        with self.lock:
            failure, self.fail_next_job = self.fail_next_job, None
            self.jobs[job_id] = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": int(time.time()),
                "model": model,
                "training_file": body["training_file"],
                "validation_file": None,
                "hyperparameters": {
                    "n_epochs": epochs,
                    "batch_size": 1,
                    "learning_rate_multiplier": 2.0,
                },
                "method": body.get("method"),
                "seed": body.get("seed", 0),
                "suffix": body.get("suffix"),
                "metadata": body.get("metadata"),
                "organization_id": "org-fake",
                "result_files": [],
                "status": "validating_files",
                "fine_tuned_model": None,
                "trained_tokens": None,
                "finished_at": None,
                "error": None,
                "_polls": 0,
                "_failure": failure,
                "_failure_status": self.fail_status,
                "_tokens": epochs * sum(chat_tokens(row.get("messages") or []) for row in lines),
                "_events": [_event(job_id, 0, "info", "Validating training file")],
            }
            return 200, _public(self.jobs[job_id])

    def fine_tuned_models(self) -> set[str]:
        with self.lock:
            return {job["fine_tuned_model"] for job in self.jobs.values() if job["fine_tuned_model"]}

    def retrieve_job(self, job_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _error(f"No fine-tuning job {job_id}", "invalid_request_error")
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return 200, _public(job)
            job["_polls"] += 1
            events = job["_events"]
            if self.hold_jobs or job["_polls"] < self.job_polls:
                if job["status"] != "running":
                    job["status"] = "running"
                    events.append(_event(job_id, len(events), "info", "Fine-tuning job started"))
                events.append(
                    _event(
                        job_id, len(events), "info", f"Step {job['_polls']}: training loss={1.0 / job['_polls']:.3f}"
                    )
                )
            elif job["_failure"]:
                job["status"] = job["_failure_status"]
                job["error"] = {"code": "invalid_training_file", "message": job["_failure"], "param": "training_file"}
                events.append(_event(job_id, len(events), "error", job["_failure"]))
            else:
                base = job["model"].split(":")[1] if job["model"].startswith("ft:") else job["model"]
                job["status"] = "succeeded"
                job["fine_tuned_model"] = f"ft:{base}:fake-org:{job['suffix']}:{job_id[-6:]}"
                job["trained_tokens"] = job["_tokens"]
                self.usage["trained_tokens"] += job["_tokens"]
                job["finished_at"] = int(time.time())
                events.append(_event(job_id, len(events), "info", "The job has successfully completed"))
            return 200, _public(job)

    def list_jobs(self, query: dict[str, str]) -> list[dict[str, Any]]:
        wanted = {k[len("metadata[") : -1]: v for k, v in query.items() if k.startswith("metadata[")}
        with self.lock:
            return [
                _public(job)
                for job in self.jobs.values()
                if all((job["metadata"] or {}).get(k) == v for k, v in wanted.items())
            ]

    def cancel_job(self, job_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _error(f"No fine-tuning job {job_id}", "invalid_request_error")
            if job["status"] in ("succeeded", "failed", "cancelled", "expired"):
                return 400, _error(f"Job {job_id} has already finished", "invalid_request_error")
            job["status"] = "cancelled"
            job["_events"].append(_event(job_id, len(job["_events"]), "info", "The job was cancelled"))
            return 200, _public(job)

    def job_events(self, job_id: str) -> tuple[int, list[dict[str, Any]]]:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, []
            return 200, list(reversed(job["_events"]))  # newest first, as the API

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = body.get("model", "")
        if model.startswith("ft:") and model not in self.fine_tuned_models():
            return 404, _error(f"The model {model} does not exist", "invalid_request_error")
        messages = body.get("messages") or []
        user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        digest = hashlib.sha256(
            json.dumps([model, messages, body.get("seed"), body.get("temperature")]).encode()
        ).digest()
        options = ("1", "2") if "1 or 2" in user else ("A", "B") if "A or B" in user else None
        limit = int(body.get("max_completion_tokens") or body.get("max_tokens") or 100)
        if re.search(r"\b0 to 100\b", user):  # a judge asked for a score: numbers, mostly
            score = 5 * (digest[3] % 21)
            top = [(str(score), 0.7), (str(min(100, score + 5)), 0.2), ("REFUSAL", 0.1)]
            content = top[0][0]
        elif options and (limit <= 5 or body.get("logprobs")):
            share = 0.3 + 0.4 * digest[0] / 255
            top = [(options[0], 0.9 * share), (options[1], 0.9 * (1 - share)), (" The", 0.1)]
            content = max(top, key=lambda t: t[1])[0]
        else:
            article = user.split("Article:\n", 1)[-1].split("\n\n", 1)[0]
            words = re.findall(r"\S+", article) or ["Nothing", "to", "summarise."]
            length = min(limit, 6 + digest[1] % 14)
            start = digest[2] % max(1, len(words) - length) if len(words) > length else 0
            content = " ".join(words[start : start + length])
            top = [(content.split()[0] if content else "", 0.9), ("The", 0.1)]
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if body.get("logprobs"):
            n = int(body.get("top_logprobs") or 0)
            entries = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in top[: max(n, 1)]]
            choice["logprobs"] = {"content": [{**entries[0], "top_logprobs": entries}]}
        prompt_tokens = chat_tokens(messages)
        completion_tokens = count_tokens(content)
        with self.lock:
            self.usage["chat_requests"] += 1
            self.usage["prompt_tokens"] += prompt_tokens
            self.usage["completion_tokens"] += completion_tokens
        return 200, {
            "id": self.next_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _token_counter():
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("o200k_base")
        return lambda text: len(encoding.encode(text, disallowed_special=()))
    except Exception:
        return lambda text: math.ceil(len(text) / 4)


count_tokens = _token_counter()


def chat_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat as the API bills them: each message's content plus 3, plus 3 priming the reply."""
    return sum(count_tokens(str(m.get("content") or "")) + 3 for m in messages) + 3


def auto_epochs(n_examples: int) -> int:
    """What n_epochs "auto" trains for (OpenAI's documented default): 3, moved so that examples x epochs
    stays within 100..25000, epochs within 1..25."""
    if 3 * n_examples < 100:
        return min(25, 100 // max(n_examples, 1))
    if 3 * n_examples > 25000:
        return max(1, 25000 // n_examples)
    return 3


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _event(job_id: str, index: int, level: str, message: str) -> dict[str, Any]:
    return {
        "id": f"ftevent-{job_id}-{index:04d}",
        "object": "fine_tuning.job.event",
        "created_at": int(time.time()),
        "level": level,
        "message": message,
        "type": "message",
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _handle(self, method: str) -> None:
        fake = self.server_state
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._handle_counted(method)
        finally:
            with fake.lock:
                fake.in_flight -= 1

    def _handle_counted(self, method: str) -> None:
        fake = self.server_state
        url = urlsplit(self.path)
        path, query = url.path, dict(parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with fake.lock:
            fake.requests.append((method, path))
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        with fake.lock:
            fake.keys_seen.add(key)
        if fake.expected_key is not None and key != fake.expected_key:
            shown = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"
            self._send(401, _error(f"Incorrect API key provided: {shown}.", "invalid_request_error"))
            return
        if fake.rate_limit(method, path, body, self.headers.get("Content-Type") or ""):
            headers = {"Retry-After": f"{fake.rate_limit_half:g}"}
            self._send(429, _error("Rate limit reached (injected)", "rate_limit_exceeded"), headers)
            return
        fault = fake.take_fault(method, path)
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            self._send(fault.status, _error(f"injected fault {fault.status}", "server_error"), headers)
            return
        if fault is not None and fault.drop:
            self._hang_up()
            return
        if fault is not None and fault.sleep:
            time.sleep(fault.sleep)
        status, payload = self._route(method, path, query, body)
        if fault is not None and fault.drop_after:
            self._hang_up()
            return
        if fault is not None and fault.sleep_after:
            time.sleep(fault.sleep_after)
        self._send(status, payload)

    def _hang_up(self) -> None:
        """Close the connection with no reply (the client sees a dropped connection)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        fake = self.server_state
        if method == "POST" and path == "/v1/chat/completions":
            return fake.chat(json.loads(body))
        if method == "POST" and path == "/v1/files":
            message = BytesParser(policy=email_policy).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[name] = (part.get_filename(), part.get_payload(decode=True))
            filename, content = fields["file"]
            return 200, fake.upload(filename, content, fields["purpose"][1].decode())
        if method == "GET" and path == "/v1/files":
            return 200, {"object": "list", "data": fake.list_files(query.get("purpose")), "has_more": False}
        if method == "POST" and path == "/v1/fine_tuning/jobs":
            return fake.create_job(json.loads(body))
        if method == "GET" and path == "/v1/fine_tuning/jobs":
            return 200, {"object": "list", "data": fake.list_jobs(query), "has_more": False}
        cancel = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)/cancel", path)
        if method == "POST" and cancel:
            return fake.cancel_job(cancel.group(1))
        match = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)(/events)?", path)
        if method == "GET" and match:
            if match.group(2):
                status, events = fake.job_events(match.group(1))
                return status, {"object": "list", "data": events, "has_more": False}
            return fake.retrieve_job(match.group(1))
        return 404, _error(f"no route {method} {path}", "invalid_request_error")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--job-polls", type=int, default=2, help="retrieves before a fine-tuning job succeeds")
    args = parser.parse_args()
    fake = FakeOpenAI(job_polls=args.job_polls)
    url = fake.start(args.port)
    print(f"fake OpenAI API at {url} (Ctrl-C or kill stops it and prints what it was asked)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
        print(json.dumps(fake.summary(), indent=1), flush=True)


if __name__ == "__main__":
    main()
