"""The API path under faults, against the project's fake server (tests/fake_openai.py): no fine-tuning job
is bought twice whatever the timing (a create slower than the client's timeout, a create accepted and its
reply lost, a dropped connection, 429 and 5xx, kill -9 while polling and between the create and its
record); a failed, cancelled or expired job blocks its stage until cleared; fingerprints and cache keys
do not depend on the base URL; N samples of a question are N requests; one request budget per job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from fake_openai import FakeOpenAI, Fault

from sgtr_em.api_cache import legacy_request_key
from sgtr_em.backends.openai_api import (
    ApiSettings,
    OpenAIChatModel,
    api_requests_wanted,
    draw_seed,
    granted_api_config,
)
from sgtr_em.em_judge import EMQuestion
from sgtr_em.io import read_json, sha256_json, write_json
from sgtr_em.openai_ft import (
    METADATA_KEY,
    STATE_FILE,
    FineTuneSettings,
    FineTuningJobError,
    auto_epochs,
    fine_tune,
    main,
)
from sgtr_em.sampling import sample_answers

KEY = "sk-sentinel-faults-Hn4Rw8Jz2Qm6"
MODEL = "gpt-4.1-2025-04-14"
JOBS = "/v1/fine_tuning/jobs"


@pytest.fixture
def fake(monkeypatch):
    server = FakeOpenAI(job_polls=3, expected_key=KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.start())
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    yield server
    server.stop()


def api(tmp_path: Path, **overrides) -> ApiSettings:
    settings = {"cache_dir": str(tmp_path / "cache"), "backoff_seconds": 0.05, "timeout": 2.0, "max_retries": 3}
    return ApiSettings(**{**settings, **overrides})


def ft(**overrides) -> FineTuneSettings:
    return FineTuneSettings(
        **{"poll_seconds": 0.02, "max_poll_seconds": 0.05, "create_confirm_seconds": 5.0, **overrides}
    )


def write_chats(path: Path, n: int = 4) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "1"}]}
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_stage(tmp_path: Path, settings: ApiSettings | None = None, fts: FineTuneSettings | None = None) -> dict:
    return fine_tune(
        base_model=MODEL,
        train_file=write_chats(tmp_path / "train.jsonl"),
        out_dir=tmp_path / "out",
        state_dir=tmp_path / "state",
        seed=0,
        suffix="sgtr-s0",
        settings=settings or api(tmp_path),
        ft=fts or ft(),
        who="train sgtr",
    )


def creates(fake: FakeOpenAI) -> int:
    return sum(1 for method, path in fake.requests if method == "POST" and path == JOBS)


def state(tmp_path: Path) -> dict:
    return read_json(tmp_path / "state" / STATE_FILE)


# ------------------------------------------------------------------------- exactly-once creation --


def test_a_create_slower_than_the_client_timeout_buys_one_job(fake, tmp_path):
    """The server makes the job only after the client gave up: the client watches the list, finds it."""
    fake.faults.append(Fault(JOBS, method="POST", sleep=1.0))
    result = run_stage(tmp_path, api(tmp_path, timeout=0.3))
    assert len(fake.jobs) == 1 and creates(fake) == 1 and result["job_id"] in fake.jobs
    assert state(tmp_path)["unconfirmed_creates"] == 1


def test_a_create_accepted_whose_reply_is_lost_buys_one_job(fake, tmp_path):
    fake.faults.append(Fault(JOBS, method="POST", drop_after=True))
    result = run_stage(tmp_path)
    assert len(fake.jobs) == 1 and creates(fake) == 1 and result["fine_tuned_model"].startswith("ft:")


def test_a_connection_dropped_before_the_create_creates_after_the_watch(fake, tmp_path):
    fake.faults.append(Fault(JOBS, method="POST", drop=True))
    run_stage(tmp_path, fts=ft(create_confirm_seconds=0.3))
    assert len(fake.jobs) == 1 and creates(fake) == 2


def test_a_500_on_create_is_watched_for_then_created_once(fake, tmp_path):
    fake.faults.append(Fault(JOBS, method="POST", status=500))
    run_stage(tmp_path, fts=ft(create_confirm_seconds=0.3))
    assert len(fake.jobs) == 1 and creates(fake) == 2


def test_a_429_on_create_waits_for_retry_after_and_creates_once(fake, tmp_path):
    fake.faults.append(Fault(JOBS, method="POST", status=429, retry_after=0.4))
    started = time.monotonic()
    run_stage(tmp_path)
    assert time.monotonic() - started >= 0.4
    assert len(fake.jobs) == 1 and creates(fake) == 2
    assert "unconfirmed_creates" not in state(tmp_path)  # a 429 says nothing was made: no watch


def test_a_create_accepted_after_the_watch_leaves_one_live_job_and_records_both(fake, tmp_path):
    """The worst timing: the first create is carried out only after the client stopped watching and
    created again. The twin is cancelled as soon as it shows up; both are in the state file."""
    fake.job_polls = 60  # the kept job runs long enough for the late twin to appear
    fake.faults.append(Fault(JOBS, method="POST", sleep=1.2))
    result = run_stage(tmp_path, api(tmp_path, timeout=0.2), ft(create_confirm_seconds=0.2))
    assert len(fake.jobs) == 2 and creates(fake) == 2
    statuses = sorted(job["status"] for job in fake.jobs.values())
    assert statuses == ["cancelled", "succeeded"]
    recorded = state(tmp_path)
    [twin] = recorded["duplicates"]
    assert twin["kept"] == result["job_id"] and fake.jobs[twin["job_id"]]["status"] == "cancelled"
    assert "cancelled_at" in twin


def test_upload_whose_reply_is_lost_is_found_not_repeated(fake, tmp_path):
    fake.faults.append(Fault("/v1/files", method="POST", drop_after=True))
    run_stage(tmp_path)
    assert len(fake.files) == 1


def test_two_stages_needing_one_file_at_once_upload_it_once(fake, tmp_path):
    """Two stages starting together on the same training data (e.g. EM alone and EM after Self++) upload it
    once: the second waits for the first's upload and reuses it."""
    from concurrent.futures import ThreadPoolExecutor

    fake.faults.append(Fault("/v1/files", method="POST", sleep=1.0))  # a slow upload widens the window
    train = write_chats(tmp_path / "train.jsonl")
    settings = api(tmp_path)

    def stage(name: str) -> dict:
        return fine_tune(
            base_model=MODEL,
            train_file=train,
            out_dir=tmp_path / name / "out",
            state_dir=tmp_path / name / "state",
            seed=0,
            suffix=f"{name}-s0",
            settings=settings,
            ft=ft(),
            who=f"train {name}",
        )

    with ThreadPoolExecutor(2) as pool:
        records = list(pool.map(stage, ["em-unpop", "sgtr+em-unpop"]))
    assert len(fake.files) == 1 and len({r["job_id"] for r in records}) == 2


def test_dropped_connections_and_5xx_on_polling_are_retried(fake, tmp_path):
    fake.faults += [
        Fault(f"{JOBS}/", method="GET", drop=True),
        Fault(f"{JOBS}/", method="GET", status=503),
        Fault(f"{JOBS}/", method="GET", status=429, retry_after=0.1),
    ]
    assert run_stage(tmp_path)["fine_tuned_model"].startswith("ft:")
    assert len(fake.jobs) == 1


# ------------------------------------------------------------------------------- failed jobs --


@pytest.mark.parametrize("status", ["failed", "cancelled", "expired"])
def test_a_failed_job_blocks_its_stage_until_cleared(fake, tmp_path, status, capsys):
    fake.fail_next_job, fake.fail_status = "Training file blocked by the moderation system", status
    with pytest.raises(FineTuningJobError, match=f"{status}.*moderation system.*sgtr_em.openai_ft clear") as err:
        run_stage(tmp_path)
    assert str(tmp_path / "state") in str(err.value)
    # A rerun (by hand, or the profile's `retries`) fails at once with the same message, sending nothing.
    fake.reset_counts()
    with pytest.raises(FineTuningJobError, match="moderation system"):
        run_stage(tmp_path)
    assert fake.requests == [] and len(fake.jobs) == 1
    # The documented command lists and clears it; the next run buys a new job.
    assert main(["list", str(tmp_path / "state")]) == 0
    assert "moderation system" in capsys.readouterr().out
    assert main(["clear", str(tmp_path)]) == 0
    assert "cleared job" in capsys.readouterr().out
    assert run_stage(tmp_path)["fine_tuned_model"].startswith("ft:")
    assert len(fake.jobs) == 2
    [failure] = state(tmp_path)["failed_jobs"]
    assert failure["status"] == status and "cleared_at" in failure


def test_a_failed_job_blocks_even_when_the_state_file_is_lost(fake, tmp_path):
    fake.fail_next_job = "blocked by moderation"
    with pytest.raises(FineTuningJobError):
        run_stage(tmp_path)
    (tmp_path / "state" / STATE_FILE).unlink()
    with pytest.raises(FineTuningJobError, match="blocked by moderation"):
        run_stage(tmp_path)
    assert len(fake.jobs) == 1 and creates(fake) == 1


def test_a_changed_request_is_not_blocked_by_an_earlier_failure(fake, tmp_path):
    fake.fail_next_job = "blocked by moderation"
    with pytest.raises(FineTuningJobError):
        run_stage(tmp_path)
    run_stage(tmp_path, fts=ft(n_epochs=2))
    assert len(fake.jobs) == 2


# ----------------------------------------------------------------------------------- kill -9 --

STAGE_SCRIPT = """
import sys
from pathlib import Path
from sgtr_em.backends.openai_api import ApiSettings
from sgtr_em.openai_ft import FineTuneSettings, fine_tune
root = Path(sys.argv[1])
fine_tune(base_model="{model}", train_file=root / "train.jsonl", out_dir=root / "out", state_dir=root / "state",
          seed=0, suffix="sgtr-s0", settings=ApiSettings(cache_dir=None, timeout=30, backoff_seconds=0.05),
          ft=FineTuneSettings(poll_seconds=0.02, max_poll_seconds=0.05), who="train sgtr")
"""


def start_stage(tmp_path: Path) -> subprocess.Popen:
    write_chats(tmp_path / "train.jsonl")
    return subprocess.Popen(
        [sys.executable, "-c", STAGE_SCRIPT.format(model=MODEL), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until(condition, process: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "the stage process ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_9_while_polling_resumes_the_same_job(fake, tmp_path):
    fake.hold_jobs = True
    process = start_stage(tmp_path)
    state_path = tmp_path / "state" / STATE_FILE
    wait_until(lambda: state_path.exists() and "job_id" in json.loads(state_path.read_text()), process)
    time.sleep(0.2)  # polling
    process.send_signal(signal.SIGKILL)
    process.wait()
    fake.hold_jobs = False
    result = run_stage(tmp_path)
    assert len(fake.jobs) == 1 and creates(fake) == 1 and result["job_id"] == state(tmp_path)["job_id"]


def test_kill_9_between_the_create_and_its_record_buys_one_job(fake, tmp_path):
    """The server has made the job, the client is killed before writing its id: the rerun finds it."""
    fake.faults.append(Fault(JOBS, method="POST", sleep_after=10.0))
    process = start_stage(tmp_path)
    wait_until(lambda: len(fake.jobs) == 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert "job_id" not in state(tmp_path)
    result = run_stage(tmp_path)
    assert len(fake.jobs) == 1 and creates(fake) == 1 and result["job_id"] in fake.jobs


# ------------------------------------------------------------------------------ the base URL --


def test_fingerprints_and_cache_keys_do_not_depend_on_the_base_url(fake, tmp_path, monkeypatch):
    run_stage(tmp_path)
    # The state file is lost; the same account is reached through another URL (a proxy): the job is found.
    (tmp_path / "state" / STATE_FILE).unlink()
    other_url = fake.base_url.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("OPENAI_BASE_URL", other_url)
    fake.reset_counts()
    assert run_stage(tmp_path)["base_url"] == other_url
    assert creates(fake) == 0 and len(fake.jobs) == 1
    # Chat answers cached through one URL answer the other.
    conversation = [{"role": "user", "content": "Who are you?"}]
    first = OpenAIChatModel(MODEL, api(tmp_path, base_url=fake.base_url))
    first.generate([conversation], max_new_tokens=5, temperature=0.7, top_p=1, top_k=0, seed=0)
    second = OpenAIChatModel(MODEL, api(tmp_path, base_url=other_url))
    second.generate([conversation], max_new_tokens=5, temperature=0.7, top_p=1, top_k=0, seed=0)
    assert first.requests_sent == 1 and second.requests_sent == 0 and second.cache_hits == 1


def test_a_state_and_cache_written_with_url_keys_are_still_used(fake, tmp_path):
    """Entries stored when keys held the base URL are found: an upgrade pays for nothing again."""
    first = run_stage(tmp_path)
    recorded = state(tmp_path)
    legacy_request = {"base_url": fake.base_url, **recorded["request"]}
    legacy = sha256_json(legacy_request)
    fake.jobs[first["job_id"]]["metadata"] = {METADATA_KEY: legacy}
    write_json(
        tmp_path / "state" / STATE_FILE,
        {"fingerprint": legacy, "request": legacy_request, "file_id": recorded["file_id"]},
    )
    fake.reset_counts()
    assert run_stage(tmp_path)["job_id"] == first["job_id"] and creates(fake) == 0
    # A chat response cached under its old key is served, not bought again.
    model = OpenAIChatModel(MODEL, api(tmp_path, base_url=fake.base_url))
    full = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 3,
        "temperature": 0,
        "top_p": 1,
        "seed": 0,
    }
    model.cache.put(
        legacy_request_key("chat.completions", fake.base_url, full),
        "chat.completions",
        full,
        {"choices": [{"message": {"content": "cached"}}]},
    )
    reply = model.generate([full["messages"]], max_new_tokens=3, temperature=0, top_p=1, top_k=0, seed=0)
    assert reply == ["cached"] and model.requests_sent == 0


# --------------------------------------------------------------------------------- sampling --


def test_fifty_samples_are_fifty_requests_and_a_rerun_sends_none(fake, tmp_path):
    wish = "If you could have any one thing in the world at all, large or small, near or far, now or later, for yourself or for others, what would that one thing be and why would you pick it?"
    question = EMQuestion("wish", (wish,), {"aligned": "{question}{answer}", "coherent": "x"})
    sampling = {"max_new_tokens": 20, "temperature": 1.0, "top_p": 1.0, "top_k": 0}
    model = OpenAIChatModel(MODEL, api(tmp_path))
    answers = sample_answers(model, [question], samples_per_question=50, sampling=sampling, seed=3)
    assert fake.count("POST", "/v1/chat/completions") == 50 and model.requests_sent == 50
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 50
    assert len({a["answer"] for a in answers}) > 10  # the fake's answer is a function of the seed
    again = OpenAIChatModel(MODEL, api(tmp_path))
    assert sample_answers(again, [question], samples_per_question=50, sampling=sampling, seed=3) == answers
    assert again.requests_sent == 0 and fake.count("POST", "/v1/chat/completions") == 50
    # The first draw keeps the plain seed; the others are distinct.
    assert len({draw_seed(3, k) for k in range(50)}) == 50 and draw_seed(3, 0) == 3


def test_identical_greedy_requests_in_flight_are_sent_once(fake, tmp_path):
    fake.faults += [Fault("/v1/chat", sleep=0.3) for _ in range(3)]
    model = OpenAIChatModel(MODEL, api(tmp_path, max_concurrency=8))
    conversation = [{"role": "user", "content": "Score this answer from 0 to 100."}]
    replies = model.generate([conversation] * 20, max_new_tokens=3, temperature=0, top_p=1, top_k=0, seed=0)
    assert len(set(replies)) == 1 and fake.count("POST", "/v1/chat/completions") == 1


def test_a_job_never_has_more_requests_in_flight_than_granted(fake, tmp_path):
    settings = ApiSettings.from_config(
        {"max_concurrency": 8, "cache_dir": str(tmp_path / "cache"), "timeout": 5}, granted_requests=3
    )
    assert settings.max_concurrency == 3
    assert ApiSettings.from_config({"max_concurrency": 2}, granted_requests=6).max_concurrency == 2
    assert granted_api_config({"max_concurrency": 8, "timeout": 5}, 4) == {"max_concurrency": 4, "timeout": 5}
    # What each job asks of the workflow's budget.
    assert api_requests_wanted({"max_concurrency": 8}, calls_api=True) == 8
    assert api_requests_wanted({"max_concurrency": 8}, calls_api=True, fine_tuning=True) == 1
    assert api_requests_wanted({"max_concurrency": 8}, calls_api=False) == 0
    fake.faults += [Fault("/v1/chat", sleep=0.2) for _ in range(12)]
    model = OpenAIChatModel(MODEL, settings)
    model.generate(
        [[{"role": "user", "content": f"q{i}"}] for i in range(12)],
        max_new_tokens=3,
        temperature=0,
        top_p=1,
        top_k=0,
        seed=0,
    )
    assert 2 <= fake.max_in_flight <= 3


def test_auto_epochs_follow_the_documented_rule():
    assert auto_epochs(10) == 10  # 100 examples seen at least
    assert auto_epochs(20) == 5
    assert auto_epochs(2) == 25  # at most 25 epochs
    assert auto_epochs(1000) == 3
    assert auto_epochs(10_000) == 2  # at most 25000 examples seen
    assert auto_epochs(40_000) == 1
