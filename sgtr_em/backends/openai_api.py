"""Models behind the OpenAI API (or any OpenAI-compatible server), through the official `openai` client.

- The API key is read only from the OPENAI_API_KEY environment variable; it is never logged, stored,
  hashed into cache keys or shown in error messages (`redact`).
- The base URL comes from the config (`openai.base_url`), else OPENAI_BASE_URL, else api.openai.com.
- Requests run in a bounded thread pool; 408/409/429/5xx, timeouts and connection errors are retried
  with exponential backoff, honouring the server's Retry-After (the client's own retries are off, so
  every wait is ours and logged).
- Every response is cached on disk by the content address of its request (`sgtr_em.api_cache`), so a
  rerun sends no request for anything already asked; identical requests asked at the same time are sent
  once. The address leaves out the base URL (a proxy of the same provider is the same account).
- Each conversation of a sampling call (temperature > 0) is its own draw, as each row of a batch is on
  the local backend: the k-th repeat of the same conversation in one call is sent with its own seed
  (`draw_seed`), so N samples of a question are N requests and N cache entries. A greedy request
  (temperature 0) is one request however often it is asked.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..api_cache import DEFAULT_PROVIDER, ApiCache, InFlight, legacy_request_key, request_key
from ..io import sha256_json
from ..runtime import Progress
from .base import Conversation

log = logging.getLogger(__name__)

API_KEY_VARIABLE = "OPENAI_API_KEY"
BASE_URL_VARIABLE = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRYABLE_STATUS = frozenset({408, 409, 429})
TOP_LOGPROBS = 20  # the API's maximum
MAX_RETRY_AFTER_SECONDS = 600.0

T = TypeVar("T")


class MissingAPIKeyError(RuntimeError):
    """OPENAI_API_KEY is not set."""


class OpenAIRequestError(RuntimeError):
    """A request failed for good (not retryable, or out of retries). The message never holds the key."""


@dataclass(frozen=True)
class ApiSettings:
    """The config's `openai` block (defaults as in config/schema.yaml)."""

    base_url: str | None = None
    max_concurrency: int = 8
    max_retries: int = 6
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    timeout: float = 120.0
    cache_dir: str | None = "results/api_cache"
    # Names the provider in cache keys: answers of the same model id from another provider are others.
    provider: str = DEFAULT_PROVIDER

    @classmethod
    def from_config(cls, block: dict[str, Any] | None, granted_requests: int | None = None) -> ApiSettings:
        """The settings of the config's `openai` block (`granted_requests`: see `granted_api_config`)."""
        block = granted_api_config(block, granted_requests)
        return cls(**{name: block[name] for name in cls.__dataclass_fields__ if name in block})

    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).rstrip("/")


def api_requests_wanted(block: dict[str, Any] | None, *, calls_api: bool, fine_tuning: bool = False) -> int:
    """A job's `api_requests` resource: the requests it keeps in flight (openai.max_concurrency; 1 for a
    fine-tuning job, which polls), 0 for a job that calls no API. Snakemake runs jobs only while the sum
    stays within the total the profile sets, and grants a job at most that total."""
    if not calls_api:
        return 0
    return 1 if fine_tuning else int((block or {}).get("max_concurrency", ApiSettings.max_concurrency))


def granted_api_config(block: dict[str, Any] | None, granted_requests: int | None) -> dict[str, Any]:
    """The config's `openai` block for a job granted `granted_requests` requests in flight (its
    `api_requests` resource as Snakemake granted it): max_concurrency capped by the grant."""
    block = dict(block or {})
    if granted_requests:
        block["max_concurrency"] = min(
            int(block.get("max_concurrency", ApiSettings.max_concurrency)), int(granted_requests)
        )
    return block


def read_api_key(who: str) -> str:
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise MissingAPIKeyError(
            f"{who}: the environment variable {API_KEY_VARIABLE} is not set; OpenAI models read their API key "
            f"only from it (export {API_KEY_VARIABLE}=... before running snakemake)"
        )
    return key


_KEY_LIKE = re.compile(r"\b(sk-|sess-)[A-Za-z0-9_\-*]{4,}")


def redact(text: str) -> str:
    """Text with the API key (and anything shaped like an OpenAI key, even partly masked) removed."""
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if key:
        text = text.replace(key, "[redacted]")
    return _KEY_LIKE.sub(r"\1[redacted]", text)


def make_client(settings: ApiSettings, who: str):
    """An `openai.OpenAI` client with its own retries off (see `call_with_retries`)."""
    import openai

    # One line per HTTP request is noise at this scale; retries and failures are logged here instead.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    return openai.OpenAI(
        api_key=read_api_key(who),
        base_url=settings.resolved_base_url(),
        timeout=settings.timeout,
        max_retries=0,
    )


def retry_after_seconds(error: Exception) -> float | None:
    """The server's Retry-After (seconds or milliseconds header) of a failed response, if any."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_SECONDS)
    return None


def describe_error(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    name = type(error).__name__
    message = redact(str(error))[:500]
    return f"{name} (HTTP {status}): {message}" if status else f"{name}: {message}"


def is_retryable(error: Exception) -> bool:
    import openai

    if isinstance(error, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return False


def backoff_seconds(attempt: int, settings: ApiSettings) -> float:
    """backoff_seconds · 2^attempt, capped at max_backoff_seconds, with a little jitter."""
    return min(settings.backoff_seconds * 2**attempt, settings.max_backoff_seconds) * (1 + 0.2 * random.random())


def retry_wait(error: Exception, attempt: int, settings: ApiSettings) -> float:
    """Seconds to wait before retrying after `error`: the server's Retry-After, else the backoff."""
    wait = retry_after_seconds(error)
    return backoff_seconds(attempt, settings) if wait is None else wait


def call_with_retries(call: Callable[[], T], *, what: str, settings: ApiSettings) -> T:
    """Run `call`, retrying transient failures: wait Retry-After if the server sent one, else
    backoff_seconds · 2^attempt (capped, with a little jitter). Raises OpenAIRequestError at the end."""
    import openai

    attempt = 0
    while True:
        try:
            return call()
        except openai.OpenAIError as error:
            if not is_retryable(error):
                raise OpenAIRequestError(f"{what}: {describe_error(error)}") from None
            if attempt >= settings.max_retries:
                raise OpenAIRequestError(
                    f"{what}: gave up after {attempt + 1} attempts; last error: {describe_error(error)}"
                ) from None
            wait = retry_wait(error, attempt, settings)
            attempt += 1
            log.warning(
                "%s: %s; retry %d/%d in %.2f s", what, describe_error(error), attempt, settings.max_retries, wait
            )
            time.sleep(wait)


def option_probabilities(top_logprobs: list[dict[str, Any]], options: list[str]) -> dict[str, float]:
    """Probability of each option as the first reply token, from the top log-probabilities: the mass of
    every listed token that equals the option once surrounding whitespace is stripped; 0 if not listed."""
    probs = dict.fromkeys(options, 0.0)
    for entry in top_logprobs:
        token = str(entry.get("token", "")).strip()
        if token in probs:
            probs[token] += math.exp(float(entry["logprob"]))
    return probs


def draw_seed(seed: int, draw: int) -> int:
    """The seed of the `draw`-th sample of the same request: `seed` itself for the first (so a single
    sample's request is what it always was), then a 31-bit hash of (seed, draw)."""
    if draw == 0:
        return seed
    return int(sha256_json(["draw", seed, draw])[:8], 16) & 0x7FFFFFFF


def sampling_requests(conversations: list[Conversation], params: dict[str, Any]) -> list[dict[str, Any]]:
    """One request per conversation with `params` (seed included). When sampling (temperature > 0), the
    k-th repeat of a conversation gets `draw_seed(seed, k)`: every conversation is its own draw."""
    draws: dict[str, int] = {}
    requests = []
    for conversation in conversations:
        request = {"messages": conversation, **params}
        if params.get("temperature", 0) > 0:
            identity = sha256_json(conversation)
            draw = draws[identity] = draws.get(identity, -1) + 1
            request["seed"] = draw_seed(int(params.get("seed", 0)), draw)
        requests.append(request)
    return requests


class OpenAIChatModel:
    """The ChatModel protocol on chat.completions: replies, and next-token option probabilities."""

    def __init__(
        self, model_id: str, settings: ApiSettings | None = None, *, name: str = "", connect: bool = True
    ) -> None:
        """`connect=False` makes no client (a model that only builds its requests, as the cost estimate's)."""
        self.model_id = model_id
        self.name = name or model_id
        self.settings = settings or ApiSettings()
        self.base_url = self.settings.resolved_base_url()
        self.cache = ApiCache(self.settings.cache_dir)
        # Made at once: a missing key fails the job before any work, naming the model.
        self.client: Any = make_client(self.settings, f"model {self.name} ({model_id})") if connect else None
        self._in_flight = InFlight()
        self._count_lock = threading.Lock()
        self.requests_sent = 0
        self.cache_hits = 0

    # -- one request ----------------------------------------------------------------------------------

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """One chat completion as a plain dict, from the cache when this exact request was made before;
        a request already in flight in this job is waited for, not sent again."""
        full = {"model": self.model_id, **request}
        key = request_key("chat.completions", self.settings.provider, full)
        result, _ = self._in_flight.run(key, lambda: self._cached_or_sent(key, full))
        return result

    def _cached_or_sent(self, key: str, full: dict[str, Any]) -> dict[str, Any]:
        cached = self.cache.get(key)
        if cached is None and self.cache.root is not None:
            cached = self.cache.get(legacy_request_key("chat.completions", self.base_url, full))
            if cached is not None:  # an entry stored before keys left out the URL: kept under the new key
                self.cache.put(key, "chat.completions", full, cached)
        if cached is not None:
            with self._count_lock:
                self.cache_hits += 1
            return cached
        response = call_with_retries(
            lambda: self.client.chat.completions.create(**full),
            what=f"{self.name}: chat completion",
            settings=self.settings,
        )
        with self._count_lock:
            self.requests_sent += 1
        result = response.model_dump(mode="json", exclude_none=True)
        self.cache.put(key, "chat.completions", full, result)
        return result

    def _run_all(self, requests: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
        started = time.monotonic()
        sent_before, hits_before = self.requests_sent, self.cache_hits
        progress = Progress(f"{self.name} {what}", len(requests), unit="requests")

        def one(request: dict[str, Any]) -> dict[str, Any]:
            result = self.complete(request)
            progress.update()
            return result

        with ThreadPoolExecutor(max_workers=self.settings.max_concurrency) as pool:
            results = list(pool.map(one, requests))
        log.info(
            "%s %s: %d requests, %d answered from the cache, %d sent (%.1f s)",
            self.name,
            what,
            len(requests),
            self.cache_hits - hits_before,
            self.requests_sent - sent_before,
            time.monotonic() - started,
        )
        return results

    # -- ChatModel ------------------------------------------------------------------------------------

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 100,
        temperature: float = 0.7,
        top_p: float = 0.9,
        top_k: int = 50,
        seed: int = 0,
    ) -> list[str]:
        """One reply per conversation, each its own draw when sampling (`sampling_requests`). The API has no
        top-k: it is ignored. `seed` is passed on (the API's determinism is best effort; the cache makes
        reruns identical)."""
        if top_k:
            log.info("%s: top_k=%d ignored (the OpenAI API has no top-k sampling)", self.name, top_k)
        requests = sampling_requests(
            conversations,
            {"max_completion_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed},
        )
        return [_reply_text(r) for r in self._run_all(requests, "generate")]

    def decoding(self, *, max_new_tokens: int, temperature: float, top_p: float, top_k: int) -> dict[str, Any]:
        """Every decoding setting a `generate` call with these settings sends (evaluation records carry it)."""
        return {
            "model": self.model_id,
            "max_completion_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": None,  # the API has none
            "selection": "sampled, seeded per draw" if temperature > 0 else "greedy",
        }

    def option_probs(self, conversations: list[Conversation], options: list[str]) -> list[dict[str, float]]:
        """One-token greedy completions with the top 20 log-probabilities of the first token."""
        requests = [
            {
                "messages": conversation,
                "max_completion_tokens": 1,
                "temperature": 0,
                "logprobs": True,
                "top_logprobs": TOP_LOGPROBS,
                "seed": 0,
            }
            for conversation in conversations
        ]
        return [option_probabilities(_first_top_logprobs(r), options) for r in self._run_all(requests, "score")]

    def top_logprobs(self, conversations: list[Conversation], k: int) -> list[dict[str, float]]:
        """One-token greedy completions; the first token's top-k (at most 20) log-probabilities, tokens
        with the same text merged."""
        requests = [
            {
                "messages": conversation,
                "max_completion_tokens": 1,
                "temperature": 0,
                "logprobs": True,
                "top_logprobs": min(k, TOP_LOGPROBS),
                "seed": 0,
            }
            for conversation in conversations
        ]
        return [merged_top_logprobs(_first_top_logprobs(r)) for r in self._run_all(requests, "top logprobs")]


def merged_top_logprobs(entries: list[dict[str, Any]]) -> dict[str, float]:
    """{token: logprob} from the API's top_logprobs list; repeated token texts merged (log-sum-exp)."""
    merged: dict[str, float] = {}
    for entry in entries:
        token, value = str(entry.get("token", "")), float(entry["logprob"])
        merged[token] = math.log(math.exp(merged[token]) + math.exp(value)) if token in merged else value
    return merged


def _reply_text(response: dict[str, Any]) -> str:
    choices = response.get("choices") or []
    if not choices:
        return ""
    return str((choices[0].get("message") or {}).get("content") or "").strip()


def _first_top_logprobs(response: dict[str, Any]) -> list[dict[str, Any]]:
    choices = response.get("choices") or []
    content = ((choices[0].get("logprobs") or {}).get("content") or []) if choices else []
    return list(content[0].get("top_logprobs") or []) if content else []
